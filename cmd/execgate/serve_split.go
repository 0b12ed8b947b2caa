package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/gateway"
	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// This file is the root side of `execgate serve`: the sandbox, the
// executor and the privilege split that starts the unprivileged front.

// serveSplit is the root side: it checks everything that can be checked
// before the split (sandbox, policy, keys, front user), then runs the
// executor and re-executes this binary as the unprivileged front.
func serveSplit(ctx context.Context, cfg gateway.Config, args []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "execgate serve: %s\n", oneLine(err))
		return 1
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With(slog.String("process", "executor"))
	ring, err := gateway.LoadKeyring(cfg.JWT.Keys)
	if err != nil {
		return fail(err)
	}
	if _, err := gateway.NewVerifier(cfg.JWT, ring); err != nil {
		return fail(err)
	}
	load := policyLoader(cfg, false)
	set, err := load(ctx)
	if err != nil {
		return fail(fmt.Errorf("load policy: %w", err))
	}
	fu, err := executor.LookupFrontUser(cfg.User, cfg.Dev)
	if err != nil {
		return fail(err)
	}
	if err := frontOwns(cfg, args, fu); err != nil {
		return fail(err)
	}
	// The self-check comes before grantFront: a host the sandbox cannot
	// run on is refused before any file is created or handed over.
	sbCfg, checks, err := checkSandbox(cfg)
	if err != nil {
		return fail(err)
	}
	checksJSON, err := json.Marshal(checks)
	if err != nil {
		return fail(err)
	}
	if err := grantFront(cfg, fu); err != nil {
		return fail(err)
	}
	rt, err := newRunner(ctx, sbCfg, log)
	if err != nil {
		return fail(err)
	}
	defer rt.close()
	rt.local.SetPolicy(set)
	code, err := executor.Split(ctx, executor.SplitConfig{
		Local: rt.local, FrontUser: fu.Name, AllowNobody: cfg.Dev, Args: append([]string{"serve"}, args...), Log: log,
		FrontEnv: []string{sandboxChecksEnv + "=" + string(checksJSON)},
		Rotate:   func() error { return createAuditFile(cfg.AuditLogPath(), fu) },
		Reload: func(ctx context.Context) error {
			set, err := load(ctx)
			if err != nil {
				return err
			}
			rt.local.SetPolicy(set)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "execgate serve: %s\n", oneLine(err))
	}
	return code
}

// grantFront gives the front user what it must open itself: the audit log
// (created 0600 and owned by the front) and, in development mode, the
// generated key; their directories get search permission (no listing).
func grantFront(cfg gateway.Config, fu executor.FrontUser) error {
	audit := cfg.AuditLogPath()
	if err := os.MkdirAll(filepath.Dir(audit), 0o700); err != nil {
		return fmt.Errorf("audit log dir: %w", err)
	}
	fd, err := os.OpenFile(audit, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	_ = fd.Close()
	files := []string{audit}
	if cfg.Dev {
		files = append(files, filepath.Join(cfg.StateDir, devKeyName))
	}
	for _, f := range files {
		if err := os.Lchown(f, fu.UID, fu.GID); err != nil {
			return fmt.Errorf("give %s to %s: %w", f, fu.Name, err)
		}
		dir := filepath.Dir(f)
		if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("search permission on %s: %w", dir, err)
			}
		}
	}
	return nil
}

// createAuditFile creates the audit log for the front when a rotation
// moved it away (SIGUSR1): a new file, mode 0600, owned by the front user,
// never through a symbolic link; an existing file is left as it is. The
// path is the executor's own configuration, never the front's word.
func createAuditFile(path string, fu executor.FrontUser) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create audit log %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, fu.UID, fu.GID); err != nil {
		_ = unix.Unlink(path) // a root-owned file would stop the front's log
		return fmt.Errorf("give audit log %s to %s: %w", path, fu.Name, err)
	}
	return nil
}

// frontOwns checks that the front user can read the private files it opens
// itself (config, jwt keys, signing key, TLS key): they must be owned by it,
// since group and others may not read them. Development mode's key is
// handed over by grantFront.
func frontOwns(cfg gateway.Config, args []string, fu executor.FrontUser) error {
	var files []string
	if f, err := parseServeFlags(args, io.Discard); err == nil && f.config != "" {
		files = append(files, f.config)
	}
	if !cfg.Dev {
		for _, k := range cfg.JWT.Keys {
			files = append(files, k.File)
		}
	}
	files = append(files, cfg.Auth.SigningKey.File, cfg.TLS.KeyFile)
	for _, f := range files {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != fu.UID {
			return fmt.Errorf("%s is owned by uid %d: the front runs as %s and must own it (chown %s %s; chmod 600)", f, sys.Uid, fu.Name, fu.Name, f)
		}
	}
	return nil
}

// runtime is the sandbox side of serve: the Runner, how the policy reaches
// it, and cleanup. The front gets no self-check: the root side ran it
// (checkSandbox) before the split, and the front has no sandbox to check.
type runtime struct {
	keyConfigs func() ([]gateway.KeyConfig, error) // re-read on SIGHUP
	local      *executor.Local                     // root side only
	runner     executor.Runner
	setPolicy  func(*policy.Set)
	features   any
	close      func()
}

// sandboxConfig is the sandbox Manager's configuration from the gateway's.
// The free-space reserve also covers the audit log's file system and the
// state directory's (workspaces usually live there too): a user filling
// either gets disk_full before the audit log can no longer be written.
// The gateway's validation makes state_dir and audit_log absolute; a
// relative one here is an error, never a reserve left out.
func sandboxConfig(cfg gateway.Config) (sandbox.Config, error) {
	var reserve []string
	for _, d := range []string{cfg.StateDir, filepath.Dir(cfg.AuditLogPath())} {
		if !filepath.IsAbs(d) {
			return sandbox.Config{}, fmt.Errorf("sandbox reserve dir %q (state_dir or audit_log's directory): want an absolute path", d)
		}
		if d = filepath.Clean(d); !slices.Contains(reserve, d) {
			reserve = append(reserve, d)
		}
	}
	return sandbox.Config{
		Instance:            cfg.Instance,
		CgroupParent:        cfg.Sandbox.CgroupParent,
		MinFreeBytes:        cfg.Sandbox.MinFreeBytes,
		ReserveDirs:         reserve,
		WorkspaceImageRoot:  filepath.Join(cfg.StateDir, "images"),
		DisableCgroupWarmup: !cfg.Sandbox.CgroupWarmup,
	}, nil
}

// checkSandbox is the sandbox Manager's configuration of serve after the
// sandbox self-check passed on it. A missing piece is an error naming the
// failed check (*sandbox.SelfcheckError), never a weaker sandbox.
func checkSandbox(cfg gateway.Config) (sandbox.Config, []sandbox.Check, error) {
	sbCfg, err := sandboxConfig(cfg)
	if err != nil {
		return sbCfg, nil, err
	}
	// Selfcheck's errors say "sandbox selfcheck" or "sandbox config".
	checks, err := sandbox.Selfcheck(sbCfg)
	if err != nil {
		return sbCfg, nil, err
	}
	return sbCfg, checks, nil
}

// sandboxChecksEnv carries the root side's passed self-check (JSON) to the
// front, for GET /v1/health: the front has no sandbox to check.
const sandboxChecksEnv = "EXECGATE_SANDBOX_CHECKS"

// frontChecks is what the root side's self-check found, as the front got
// it (nil when absent or unreadable: the front reports none).
func frontChecks() []sandbox.Check {
	var checks []sandbox.Check
	if err := json.Unmarshal([]byte(os.Getenv(sandboxChecksEnv)), &checks); err != nil {
		return nil
	}
	return checks
}

// newRunner builds the root side's Runner: the sandbox manager (on a
// configuration checkSandbox passed) and the in-process executor the
// front's runs reach through executor.Split.
func newRunner(ctx context.Context, sbCfg sandbox.Config, log *slog.Logger) (*runtime, error) {
	mgr, err := sandbox.New(ctx, sbCfg, log)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	local := executor.NewLocal(mgr, nil, log)
	return &runtime{
		local: local,
		close: func() {
			local.KillAll()
			if err := mgr.Close(); err != nil {
				log.Error("sandbox close", slog.String("error", err.Error()))
			}
		},
	}, nil
}

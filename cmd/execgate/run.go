package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// Exit codes of `execgate run` besides the command's own (0-119 pass
// through; a command killed by signal N gives 128+N). docs/sandbox.md
// lists them.
const (
	runExitOutput  = 120 // the output cap ended the run
	runExitMemory  = 121 // OOM kill in the memory cgroup
	runExitPids    = 122 // the pids limit refused a fork and the command failed
	runExitCPU     = 123 // RLIMIT_CPU
	runExitTimeout = 124 // wall-clock timeout (as timeout(1))
	runExitFailure = 125 // execgate itself failed: usage, policy file, sandbox, disk_full
	runExitDenied  = 126 // the policy denied the request (reason code on stderr)
	runExitKilled  = 130 // execgate was interrupted (SIGINT/SIGTERM) and killed the run
)

func init() {
	register("run", "run one command through the policy and the sandbox (no server)", runRun)
}

type runFlags struct {
	policy, sub, roles, wsRoot, instance, stateRoot, cgroupParent string
	env                                                           multiFlag
	argv                                                          []string
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	fs := flag.NewFlagSet("execgate run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &runFlags{}
	fs.StringVar(&f.policy, "policy", "", "policy file or directory (required)")
	fs.StringVar(&f.sub, "sub", "", "subject the command runs for (required)")
	fs.StringVar(&f.roles, "roles", "", "comma-separated roles of the subject")
	fs.StringVar(&f.wsRoot, "workspace-root", "", "directory that replaces the one holding the per-subject workspaces")
	fs.StringVar(&f.instance, "instance", "", "sandbox instance name (default run-<pid>)")
	fs.StringVar(&f.stateRoot, "state-root", "", "sandbox state root (default /run/execgate/<instance>)")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", "", "absolute cgroup under which the run's cgroup is created (default /execgate/<instance>; on cgroup v2 inside your delegated subtree)")
	fs.Var(&f.env, "env", "KEY=VALUE a client may set (repeatable; the policy decides)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: execgate run --policy FILE --sub SUBJECT --roles R1,R2 [--workspace-root DIR] [--cgroup-parent CGROUP] [--env K=V] -- COMMAND ARGS...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.argv = fs.Args()
	switch {
	case f.policy == "":
		return nil, errors.New("--policy is required")
	case f.sub == "":
		return nil, errors.New("--sub is required")
	case len(f.argv) == 0:
		return nil, errors.New("no command given (after --)")
	}
	if f.cgroupParent != "" {
		if err := sandbox.ValidateCgroupParent(f.cgroupParent); err != nil {
			return nil, fmt.Errorf("--cgroup-parent: %w", err)
		}
	}
	return f, nil
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "execgate run:", err)
		}
		return runExitFailure
	}
	req, err := f.request()
	if err != nil {
		fmt.Fprintln(stderr, "execgate run:", err)
		return runExitFailure
	}
	set, err := policy.Load(ctx, []string{f.policy}, loadOptions(""))
	if err != nil {
		fmt.Fprintf(stderr, "execgate run: load policy: %v\n", err)
		return runExitFailure
	}
	dec := set.Decide(ctx, req)
	if !dec.Allowed {
		fmt.Fprintf(stderr, "execgate run: denied: %s: %s\n", dec.Reason, dec.Message)
		return runExitDenied
	}
	spec, err := specFromDecision(dec, f)
	if err != nil {
		fmt.Fprintln(stderr, "execgate run:", err)
		return runExitFailure
	}
	return runSandboxed(ctx, f, spec, stdout, stderr)
}

func (f *runFlags) request() (policy.Request, error) {
	req := policy.Request{Subject: f.sub, Command: f.argv[0], Args: f.argv[1:]}
	if f.roles != "" {
		req.Roles = strings.Split(f.roles, ",")
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return req, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	return req, nil
}

// specFromDecision builds the sandbox spec of an allowed decision.
func specFromDecision(dec *policy.Decision, f *runFlags) (sandbox.Spec, error) {
	if dec.Profile == nil {
		return sandbox.Spec{}, errors.New("allowed decision without a profile")
	}
	mounts := append([]policy.Mount(nil), dec.Mounts...)
	if f.wsRoot != "" {
		if !filepath.IsAbs(f.wsRoot) {
			return sandbox.Spec{}, fmt.Errorf("--workspace-root %q: want an absolute path", f.wsRoot)
		}
		for i := range mounts {
			if mounts[i].Workspace {
				mounts[i].Source = filepath.Join(f.wsRoot, filepath.Base(mounts[i].Source))
			}
		}
	}
	return sandbox.Spec{
		ID:      "run",
		Subject: f.sub,
		Argv:    dec.Argv,
		Env:     dec.Env,
		Cwd:     dec.Cwd,
		Mounts:  mounts,
		Profile: *dec.Profile,
	}, nil
}

func runSandboxed(ctx context.Context, f *runFlags, spec sandbox.Spec, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := sandbox.Config{Instance: f.instance, StateRoot: f.stateRoot, CgroupParent: f.cgroupParent}
	if cfg.Instance == "" {
		cfg.Instance = fmt.Sprintf("run-%d", os.Getpid())
		sweepDeadRunInstances(ctx, log, sandbox.DefaultStateRootBase)
	}
	m, err := sandbox.New(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "execgate run: sandbox:", err)
		return runExitFailure
	}
	// Stdin goes through an io.Pipe that is closed after the run, so the
	// sandbox's stdin copy ends even while our own read of os.Stdin blocks
	// (that goroutine ends with the process).
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, os.Stdin)
		pw.CloseWithError(err)
	}()
	spec.Stdin, spec.Stdout, spec.Stderr = pr, stdout, stderr
	res, runErr := m.Run(ctx, spec)
	pr.Close()
	if err := m.Close(); err != nil {
		fmt.Fprintln(stderr, "execgate run: close sandbox:", err)
	}
	if f.instance == "" && f.stateRoot == "" {
		_ = os.RemoveAll(m.Config().StateRoot)
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "execgate run:", runErr)
		if errors.Is(runErr, sandbox.ErrDiskFull) {
			fmt.Fprintln(stderr, "execgate run: refused: disk_full")
		}
		return runExitFailure
	}
	code := runExitCode(res)
	if res.EndedBy != sandbox.EndedExit {
		fmt.Fprintf(stderr, "execgate run: ended by %s (exit %d, signal %q)\n", res.EndedBy, res.ExitCode, res.Signal)
	}
	return code
}

// runExitCode maps a Result to the exit code of `execgate run`.
func runExitCode(res sandbox.Result) int {
	switch res.EndedBy {
	case sandbox.EndedTimeout:
		return runExitTimeout
	case sandbox.EndedMemory:
		return runExitMemory
	case sandbox.EndedPids:
		return runExitPids
	case sandbox.EndedOutput:
		return runExitOutput
	case sandbox.EndedCPU:
		return runExitCPU
	case sandbox.EndedKilled:
		return runExitKilled
	case sandbox.EndedDiskFull: // killed for the free-space reserve, as a refusal is
		return runExitFailure
	}
	if res.Signal != "" {
		if n := signalNumber(res.Signal); n > 0 {
			return 128 + n
		}
		return runExitFailure
	}
	return res.ExitCode
}

var runInstanceRE = regexp.MustCompile(`^run-[0-9]+$`)

// sweepDeadRunInstances cleans up after `execgate run` invocations that
// died without closing their sandbox (SIGKILL, OOM): each one used its own
// run-<pid> instance, so no later invocation would sweep it otherwise. An
// instance whose lock is still held belongs to a live invocation and is
// left alone.
func sweepDeadRunInstances(ctx context.Context, log *slog.Logger, base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !runInstanceRE.MatchString(e.Name()) {
			continue
		}
		cfg := sandbox.Config{Instance: e.Name(), StateRoot: filepath.Join(base, e.Name())}
		m, err := sandbox.New(ctx, cfg, log)
		if err != nil {
			continue // alive (locked) or not ours to touch
		}
		root := m.Config().StateRoot
		if err := m.Close(); err == nil {
			_ = os.RemoveAll(root)
			log.Info("removed the sandbox of a dead execgate run", "instance", e.Name())
		}
	}
}

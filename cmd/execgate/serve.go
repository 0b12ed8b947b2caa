package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/execgate/execgate/gateway"
	"github.com/execgate/execgate/policies"
	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox/executor"
)

// This file registers `execgate serve`: the gateway. Without --config and
// --jwt-key it runs in development mode: loopback only, the embedded default
// policy, a generated HS256 key and a printed one-hour dev token.

func init() {
	register("serve", "run the gateway (no arguments: development mode on 127.0.0.1:8080)", runServe)
}

// serveFlags are the flags that override the config file.
type serveFlags struct {
	config, listen, policy, jwtKey, signingKey, issuer, audience, stateDir, auditLog, metricsListen, instance string
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	fs := flag.NewFlagSet("execgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &serveFlags{}
	fs.StringVar(&f.config, "config", "", "config file (YAML; see deploy/execgate.example.yaml)")
	fs.StringVar(&f.listen, "listen", "", "listen address (host:port)")
	fs.StringVar(&f.policy, "policy", "", "policy file or directory")
	fs.StringVar(&f.jwtKey, "jwt-key", "", "token verification key: HMAC secret file or PEM public key")
	fs.StringVar(&f.signingKey, "signing-key", "", "the gateway's own signing key for /auth/token (default: --jwt-key when it is an HMAC secret)")
	fs.StringVar(&f.issuer, "jwt-issuer", "", "required token issuer")
	fs.StringVar(&f.audience, "jwt-audience", "", "required token audience")
	fs.StringVar(&f.stateDir, "state-dir", "", "state directory (workspaces, audit log, dev key)")
	fs.StringVar(&f.auditLog, "audit-log", "", "audit log file (default <state-dir>/audit.log)")
	fs.StringVar(&f.instance, "instance", "", "sandbox instance name (state root and cgroup parent; one per gateway on a host)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "metrics listener (host:port; \"off\" serves /metrics behind the admin permission; a non-loopback address needs network.metrics_allow)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(stderr, "execgate serve: %v\n", err)
		return nil, err
	}
	return f, nil
}

// dev reports whether the flags ask for development mode.
func (f *serveFlags) dev() bool { return f.config == "" && f.jwtKey == "" }

// buildConfig is the config file (or defaults) with the flags applied.
func (f *serveFlags) buildConfig() (gateway.Config, error) {
	cfg := gateway.Default()
	if f.config != "" {
		var err error
		if cfg, err = gateway.LoadConfig(f.config); err != nil {
			return cfg, err
		}
	}
	for dst, v := range map[*string]string{
		&cfg.Listen: f.listen, &cfg.Policy: f.policy, &cfg.JWT.Issuer: f.issuer, &cfg.JWT.Audience: f.audience,
		&cfg.StateDir: f.stateDir, &cfg.AuditLog: f.auditLog, &cfg.Auth.SigningKey.File: f.signingKey, &cfg.Instance: f.instance,
	} {
		if v != "" {
			*dst = v
		}
	}
	switch f.metricsListen {
	case "":
	case "off":
		cfg.MetricsListen = ""
	default:
		cfg.MetricsListen = f.metricsListen
	}
	if f.jwtKey != "" {
		cfg.JWT.Keys = []gateway.KeyConfig{{ID: "default", File: f.jwtKey}}
	}
	if f.dev() {
		cfg.Dev = true
		if f.policy == "" {
			cfg.Policy = policies.DefaultName
		}
		cfg.JWT.Issuer, cfg.JWT.Audience = "execgate-dev", "execgate-dev"
	}
	if !gateway.IsLoopbackListen(cfg.Listen) && (cfg.Dev || len(cfg.JWT.Keys) == 0) {
		return cfg, fmt.Errorf("listen %s is not loopback: configure jwt keys (--jwt-key or --config) first", cfg.Listen)
	}
	return cfg, cfg.Validate()
}

// devKeyName is the development key's file in the state directory.
const devKeyName = "dev-jwt.key"

// devKey creates (once) the development HMAC key in the state directory.
func devKey(stateDir string) (string, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(stateDir, devKeyName)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("dev key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev key: %w", err)
	}
	return path, nil
}

// policyLoader loads the configured policy (the embedded default in dev mode).
// The unprivileged front loads it withoutSecrets: it cannot read the
// root-owned secrets file and never runs anything with its copy (the
// executor decides again with the complete set).
func policyLoader(cfg gateway.Config, withoutSecrets bool) func(ctx context.Context) (*policy.Set, error) {
	// Both sides validate custom seccomp files (loadOptions), so a file the
	// executor would refuse is refused by the front too. The two still load
	// independently (the executor on SIGHUP or the front's request), so a
	// file that changes between their loads can leave them on different
	// sets for a while; the executor decides every run again with its own
	// set, so the front's copy never widens what runs.
	opts := loadOptions(cfg.StateDir)
	opts.WithoutSecrets = withoutSecrets
	if cfg.Policy == policies.DefaultName {
		return func(context.Context) (*policy.Set, error) {
			return policy.LoadBytes(policies.DefaultName, policies.Default, opts)
		}
	}
	return func(ctx context.Context) (*policy.Set, error) { return policy.Load(ctx, []string{cfg.Policy}, opts) }
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "execgate serve: %s\n", oneLine(err))
		return 1
	}
	f, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package (or parseServeFlags) said why
	}
	cfg, err := f.buildConfig()
	if err != nil {
		return fail(err)
	}
	if cfg.Dev {
		cfg.JWT.Keys = []gateway.KeyConfig{{ID: "dev", File: filepath.Join(cfg.StateDir, devKeyName)}}
	}
	if executor.IsFront() {
		return serveFront(ctx, cfg, args, stdout, stderr)
	}
	if os.Geteuid() != 0 {
		return fail(errors.New("the sandbox needs root: start as root; the network-facing process then drops to user " + cfg.User))
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fail(fmt.Errorf("state dir: %w", err))
	}
	if cfg.Dev {
		if _, err := devKey(cfg.StateDir); err != nil {
			return fail(err)
		}
	}
	return serveSplit(ctx, cfg, args, stderr)
}

// keyConfigs re-reads the config file and flags for the current jwt keys.
func keyConfigs(args []string) func() ([]gateway.KeyConfig, error) {
	return func() ([]gateway.KeyConfig, error) {
		f, err := parseServeFlags(args, io.Discard)
		if err != nil {
			return nil, err
		}
		cfg, err := f.buildConfig()
		if err != nil {
			return nil, err
		}
		if cfg.Dev {
			return []gateway.KeyConfig{{ID: "dev", File: filepath.Join(cfg.StateDir, devKeyName)}}, nil
		}
		return cfg.JWT.Keys, nil
	}
}

// serveFront is the unprivileged side: the gateway, with the executor
// socket as its Runner. It ends when the executor goes away.
func serveFront(ctx context.Context, cfg gateway.Config, args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With(slog.String("process", "front"))
	client, err := executor.FrontClient(ctx, log)
	if err != nil {
		fmt.Fprintf(stderr, "execgate serve: %s\n", oneLine(err))
		return 1
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		select {
		case <-client.Done():
			log.Error("executor gone: shutting down")
			cancel()
		case <-ctx.Done():
		}
	})
	rt := &runtime{
		keyConfigs: keyConfigs(args),
		runner:     client,
		setPolicy:  func(*policy.Set) { _ = client.RequestReload() },
		// The executor ran the sandbox self-check before the split.
		features: map[string]any{"privilege_split": true, "front_uid": os.Getuid(), "instance": cfg.Instance,
			"selfcheck": frontChecks()},
		close: func() {},
	}
	return serve(ctx, cfg, rt, log, stdout, stderr)
}

func serve(ctx context.Context, cfg gateway.Config, rt *runtime, log *slog.Logger, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "execgate serve: %s\n", oneLine(err))
		return 1
	}
	log.Info("garbage collector", slog.String("settings", gateway.TuneGC()))
	reg := gateway.NewMetricsRegistry()
	met := gateway.NewMetrics(reg)
	acfg, err := cfg.AuditConfig(log, met)
	if err != nil {
		return fail(err)
	}
	auditor, err := gateway.NewAuditor(acfg)
	if err != nil {
		return fail(err)
	}
	defer auditor.Close()
	srv, err := gateway.New(ctx, cfg, gateway.Deps{
		Runner: rt.runner, Audit: auditor, Metrics: met, Registry: reg, Logger: log,
		LoadPolicy: policyLoader(cfg, rt.local == nil), OnPolicy: rt.setPolicy,
		SandboxFeatures: rt.features, Version: version, KeyConfigs: rt.keyConfigs,
	})
	if err != nil {
		return fail(err)
	}
	if cfg.Dev {
		log.Warn("DEVELOPMENT MODE: embedded default policy, generated key; not for production")
		if err := printDev(stdout, cfg); err != nil {
			return fail(err)
		}
	}
	sigCtx, stopSignals := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1)
		defer signal.Stop(ch)
		handleSignals(sigCtx, ch, signalActions{reload: srv.Reload, reopen: auditor.Reopen, log: log})
	})
	err = srv.Serve(ctx)
	stopSignals()
	wg.Wait()
	if err != nil {
		return fail(err)
	}
	return 0
}

// printDev prints the development banner, the URL and a one-hour dev token.
func printDev(w io.Writer, cfg gateway.Config) error {
	k, err := gateway.LoadKey(cfg.JWT.Keys[0], true)
	if err != nil {
		return err
	}
	tok, _, err := gateway.NewSigner(k, cfg.JWT.Issuer, cfg.JWT.Audience).Sign("dev", []string{"operator"}, time.Hour)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	fmt.Fprintln(w, "*** DEVELOPMENT MODE: embedded default policy, generated key, loopback only. Not for production. ***")
	fmt.Fprintf(w, "URL:       %s://%s\n", scheme, cfg.Listen)
	fmt.Fprintf(w, "State dir: %s\n", cfg.StateDir)
	fmt.Fprintf(w, "Dev token (sub dev, role operator, 1 hour):\n%s\n", tok)
	fmt.Fprintf(w, "Try: curl -s -H 'Authorization: Bearer <token>' -H 'Content-Type: application/json' -d '{\"command\":\"echo\",\"args\":[\"hi\"]}' %s://%s/v1/exec\n", scheme, cfg.Listen)
	return nil
}

// oneLine joins a (possibly joined) error onto one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

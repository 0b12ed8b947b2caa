package main

// The privilege split of `execgate serve` (docs/executor-protocol.md).
// serve.go calls these helpers; the executor package does the work.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// executorOptions is what `serve` hands to runExecutor when started as
// root: everything the root side needs, loaded before any listener opens.
type executorOptions struct {
	Sandbox sandbox.Config
	// Policy is the loaded policy set (*policy.Set).
	Policy executor.Policy
	// LoadPolicy loads the policy again from the configured files (SIGHUP
	// and the front's reload requests); nil disables reloading.
	LoadPolicy func(ctx context.Context) (executor.Policy, error)
	// FrontUser is the configured front account ("" = "execgate");
	// AllowNobody is set in development mode only (serve without --config).
	FrontUser   string
	AllowNobody bool
	// Args re-executes the front: normally os.Args[1:].
	Args []string
	Log  *slog.Logger
}

// runExecutor is the root side of `serve`: it builds the sandbox (its
// self-check refuses a weaker one), starts the unprivileged front and
// serves its jobs until the front ends. It returns the exit code.
func runExecutor(ctx context.Context, o executorOptions, stderr io.Writer) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "execgate serve: the sandbox needs root (run: sudo execgate serve)")
		return 1
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	mgr, err := sandbox.New(ctx, o.Sandbox, log)
	if err != nil {
		fmt.Fprintf(stderr, "execgate serve: sandbox: %v\n", err)
		return 1
	}
	defer func() {
		if err := mgr.Close(); err != nil {
			log.Error("close sandbox manager", "error", err)
		}
	}()
	local := executor.NewLocal(mgr, o.Policy, log)
	cfg := executor.SplitConfig{Local: local, FrontUser: o.FrontUser, AllowNobody: o.AllowNobody, Args: o.Args, Log: log}
	if o.LoadPolicy != nil {
		cfg.Reload = func(ctx context.Context) error {
			p, err := o.LoadPolicy(ctx)
			if err != nil {
				return err
			}
			local.SetPolicy(p)
			return nil
		}
	}
	code, err := executor.Split(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "execgate serve: %v\n", err)
	}
	return code
}

// connectFront is the front side of `serve` (executor.IsFront() is true):
// it refuses to go on with any privilege left and returns the Client (the
// gateway's Runner and Sessions) and a context that ends with the
// executor. Call it before reading any configuration or key; close the
// Client on the way out.
func connectFront(ctx context.Context, log *slog.Logger) (*executor.Client, context.Context, context.CancelFunc, error) {
	client, err := executor.FrontClient(ctx, log)
	if err != nil {
		return nil, nil, nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-client.Done():
			if log != nil {
				log.Error("executor gone; the front stops", "error", client.Err())
			}
			cancel()
		case <-fctx.Done():
		}
	}()
	return client, fctx, cancel, nil
}

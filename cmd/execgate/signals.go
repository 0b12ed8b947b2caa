package main

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// signalActions are what serve does on its signals.
type signalActions struct {
	reload func(ctx context.Context) error // SIGHUP: keys and policy; logs and audits its own errors
	reopen func() error                    // SIGUSR1: the audit log (rotation)
	log    *slog.Logger
}

// reloadWait bounds how long handleSignals waits, when it ends, for a
// reload that is still running (blocked on a hung file system).
var reloadWait = 5 * time.Second

// handleSignals serves SIGHUP and SIGUSR1 from ch until ctx ends. Reloads
// run on their own goroutine, one at a time, and SIGHUPs that come during
// one coalesce into one more after it: a reload blocked on a hung file
// system never keeps SIGUSR1 (the audit log's rotation) waiting. When ctx
// ends it waits for a running reload at most reloadWait, then leaves it,
// logged (the process is exiting).
func handleSignals(ctx context.Context, ch <-chan os.Signal, act signalActions) {
	pending := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() { // owned by handleSignals, which waits for it below
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-pending:
				_ = act.reload(ctx)
			}
		}
	}()
	defer func() {
		t := time.NewTimer(reloadWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			act.log.Warn("reload still running at shutdown; not waited for", slog.Duration("waited", reloadWait))
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-ch:
			switch sig {
			case syscall.SIGHUP:
				select {
				case pending <- struct{}{}:
				default: // one is queued already: it will read the newest files
				}
			case syscall.SIGUSR1:
				if err := act.reopen(); err != nil {
					act.log.Error("audit reopen", slog.String("error", err.Error()))
				}
			}
		}
	}
}

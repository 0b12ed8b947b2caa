package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// closeGrace is how long a front that closed its socket cleanly gets to
// exit before it is killed.
const closeGrace = 5 * time.Second

// superviseFront serves the front's connection and follows the front's
// life: the two processes end together. Policy reloads run beside it
// (reloader), never on this loop.
func superviseFront(ctx context.Context, cfg SplitConfig, fu FrontUser, front *frontProc, conn *net.UnixConn) (int, error) {
	reloads := startReloader(ctx, cfg.Reload, cfg.Log)
	defer reloads.stop(min(cfg.ShutdownGrace, closeGrace))
	var rotations *reloader // SIGUSR1: cfg.Rotate, then the signal to the front
	if cfg.Rotate != nil {
		rotations = startWorker(ctx, workerNames{what: "audit log rotation", failed: "executor audit log rotation failed"}, func(context.Context) error {
			err := cfg.Rotate()
			_ = front.proc.Signal(syscall.SIGUSR1)
			return err
		}, cfg.Log)
		defer rotations.stop(min(cfg.ShutdownGrace, closeGrace))
	}
	srv, err := NewServer(ServerConfig{Local: cfg.Local, Peer: Peer{UID: fu.UID, PID: front.pid}, Log: cfg.Log, ReloadRequests: reloads.requests()})
	if err != nil {
		_ = front.proc.Kill()
		<-front.exited
		return 1, err
	}
	sctx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(sctx, conn) }()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	var grace <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case werr := <-front.exited:
			stopServe()
			n := cfg.Local.KillAll()
			if served != nil {
				<-served
			}
			code := frontExitCode(werr)
			cfg.Log.Info("front exited; executor stops", "code", code, "killed_jobs", n)
			if code != 0 {
				return code, fmt.Errorf("front exited: %v", werr)
			}
			return 0, nil
		case serr := <-served:
			served = nil
			cfg.Local.KillAll()
			if !errors.Is(serr, ErrProtocol) && !errors.Is(serr, ErrPeer) {
				// the front closed its end or died: it is on its way out
				if grace == nil {
					grace = time.After(min(cfg.ShutdownGrace, closeGrace))
				}
				continue
			}
			cfg.Log.Error("executor connection ended; killing the front", "error", serr)
			_ = front.proc.Kill()
			<-front.exited
			return 1, fmt.Errorf("executor connection: %w", serr)
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				reloads.request()
			case sig == syscall.SIGUSR1 && rotations != nil:
				rotations.request() // forwards it once Rotate is done
				continue
			}
			_ = front.proc.Signal(sig)
		case <-done:
			done = nil
			cfg.Log.Info("stopping: SIGTERM to the front", "grace", cfg.ShutdownGrace.String())
			_ = front.proc.Signal(syscall.SIGTERM)
			grace = time.After(cfg.ShutdownGrace)
		case <-grace:
			cfg.Log.Warn("front did not stop within the grace period; killing it")
			_ = front.proc.Kill()
		}
	}
}

// frontExitCode maps the front's wait result to this process's exit code.
func frontExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if c := ee.ExitCode(); c > 0 {
			return c
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
	}
	return 1
}

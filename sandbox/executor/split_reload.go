package executor

import (
	"context"
	"log/slog"
	"time"
)

// reloader runs the executor's policy reloads (SplitConfig.Reload) off the
// supervisor loop, one at a time in its own goroutine: a reload blocked on
// a hung file system (an NFS mount that stopped answering, a FIFO in the
// policy's place) must not keep the supervisor from following the front,
// forwarding signals and stopping. Requests made while a reload runs
// coalesce into one more reload after it.
type reloader struct {
	reload func(ctx context.Context) error // nil: requests are dropped
	what   string                          // for the log: "policy reload"
	failed string                          // the log message of a failure
	done1  string                          // of a success ("": none)
	log    *slog.Logger
	reqs   chan struct{} // the one pending request
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has ended
}

// startReloader starts the reload goroutine. Its reloads see ctx's values
// but not its end (a reload in progress when SIGTERM arrives completes);
// stop ends them.
func startReloader(ctx context.Context, reload func(ctx context.Context) error, log *slog.Logger) *reloader {
	return startWorker(ctx, workerNames{"policy reload", "executor policy reload failed; the old policy keeps serving", "executor policy reloaded"}, reload, log)
}

// workerNames are how a worker's runs are logged: what it does, the
// message of a failure and of a success ("": none).
type workerNames struct{ what, failed, succeeded string }

// startWorker is startReloader for any task run the same way (one at a
// time, requests coalescing, off the supervisor loop).
func startWorker(ctx context.Context, n workerNames, reload func(ctx context.Context) error, log *slog.Logger) *reloader {
	r := &reloader{reload: reload, what: n.what, failed: n.failed, done1: n.succeeded, log: log,
		reqs: make(chan struct{}, 1), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go r.loop()
	return r
}

// requests is where the front's reload requests go (ServerConfig.
// ReloadRequests sends to it without blocking).
func (r *reloader) requests() chan<- struct{} { return r.reqs }

// request asks for a reload without blocking: it is dropped when one is
// already pending.
func (r *reloader) request() {
	select {
	case r.reqs <- struct{}{}:
	default:
	}
}

func (r *reloader) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.reqs:
			if r.ctx.Err() != nil {
				return // stopped: a pending request is dropped
			}
			r.run()
		}
	}
}

// run performs one reload and logs its result.
func (r *reloader) run() {
	if r.reload == nil {
		return
	}
	if err := r.reload(r.ctx); err != nil {
		r.log.Error(r.failed, "error", err)
		return
	}
	if r.done1 != "" {
		r.log.Info(r.done1)
	}
}

// stop ends the goroutine: a pending request is dropped and the context
// of a reload in progress is cancelled. It waits up to wait for the
// goroutine to end and reports whether it did; a reload blocked in a
// system call that ignores its context (open on a hung mount) keeps the
// goroutine until the call returns, and the process may exit meanwhile.
func (r *reloader) stop(wait time.Duration) bool {
	r.cancel()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.done:
		return true
	case <-t.C:
		r.log.Warn("executor "+r.what+" still running at shutdown; not waiting for it", "waited", wait.String())
		return false
	}
}

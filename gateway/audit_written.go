package gateway

import (
	"context"
)

// AuditCommit waits for the fsync of lines that RecordAllWritten wrote:
// nil once they are durable, an error matching ErrAuditUnavailable when the
// sync failed, or ctx.Err().
type AuditCommit func(ctx context.Context) error

// RecordAllWritten is RecordAll in two steps, for /v1/exec: it returns as
// soon as the lines are written to the file (write(2) succeeded, so they
// are in the log, in order, and a crash of this process cannot lose them),
// and the returned AuditCommit waits for their group commit's fsync. The
// caller may start the command in between, so that the fsync overlaps the
// sandbox's start instead of adding to it; it must wait for the commit
// before answering, and stop the command when the commit fails. A write
// failure returns the error and no commit: nothing may run.
func (a *Auditor) RecordAllWritten(ctx context.Context, evs ...Event) (AuditCommit, error) {
	r := &auditReq{done: make(chan error, 1), written: make(chan struct{})}
	for _, ev := range evs {
		var err error
		if r.line, err = a.appendLine(r.line, ev); err != nil {
			return nil, err
		}
	}
	r.n = len(evs)
	if commit, err, ok := a.writeNow(ctx, r); ok {
		return commit, err
	}
	if err := a.enqueue(ctx, r); err != nil {
		return nil, err
	}
	select {
	case <-r.written:
	case err := <-r.done:
		select {
		case <-r.written: // written, then synced (or not) before we looked
			return func(context.Context) error { return err }, nil
		default: // the write failed: nothing was written
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return awaitSync(r), nil
}

// awaitSync is the AuditCommit of r, written and queued for its fsync.
func awaitSync(r *auditReq) AuditCommit {
	return func(ctx context.Context) error {
		select {
		case err := <-r.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeNow is RecordAllWritten's fast path: when no commit is under way,
// the caller writes r itself and queues only its fsync for the writer,
// which syncs it with its next batch. ok is false when a commit is under
// way, ctx is done or the log is closing. Holding wmu with closing unset
// while it queues the fsync means the writer's final drain, which sets
// closing under wmu first, still finds it.
func (a *Auditor) writeNow(ctx context.Context, r *auditReq) (commit AuditCommit, err error, ok bool) { //nolint:revive,staticcheck // ok says whether the others are the result
	if ctx.Err() != nil || !a.wmu.TryLock() {
		return nil, nil, false
	}
	defer a.wmu.Unlock()
	if !a.fastOK() {
		return nil, nil, false
	}
	if _, err := a.writeLines([]*auditReq{r}); err != nil {
		return nil, err, true
	}
	r.wrote, r.file = true, a.f
	select {
	case a.reqs <- r: // the writer is not waiting for wmu long: we hold it only for this
	default: // the queue is full: sync here
		r.done <- r.result(a.syncLines(r.n))
	}
	return awaitSync(r), nil, true
}

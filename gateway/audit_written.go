package gateway

import (
	"context"
	"sync"
)

// AuditCommit is a group commit whose lines are written to the audit log
// (write(2) succeeded) and whose fsync may still be running. Wait reports
// the fsync's outcome.
type AuditCommit struct {
	r    *auditReq
	once sync.Once
	err  error
}

// RecordAllWritten is RecordAll that returns as soon as the lines are
// written to the file, in order and in one write(2), without waiting for
// their fsync: an unwritable log (open or write failure, disk full) is
// reported here, as an error matching ErrAuditUnavailable, and the caller
// must not act on the lines. The fsync proceeds meanwhile; its outcome is
// AuditCommit.Wait. A later Record's commit comes after this one in the
// same ordered log: when that Record returns nil, this commit's Wait has
// its outcome already (the writer finishes one commit before it starts
// the next), so a caller that checks Wait and then a later Record pays no
// second wait.
func (a *Auditor) RecordAllWritten(ctx context.Context, evs ...Event) (*AuditCommit, error) {
	r, err := a.encodeAll(evs)
	if err != nil {
		return nil, err
	}
	r.early = true
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		auditReqPool.Put(r)
		return nil, ErrAuditClosed
	}
	select {
	case a.reqs <- r:
	case <-ctx.Done():
		a.mu.RUnlock()
		auditReqPool.Put(r)
		return nil, ctx.Err()
	}
	a.mu.RUnlock()
	select {
	case err := <-r.written:
		if err != nil {
			return nil, err // r is not reused: the writer still sends done
		}
		return &AuditCommit{r: r}, nil
	case <-ctx.Done():
		return nil, ctx.Err() // the writer still holds r: not reused
	}
}

// Wait returns once the commit's fsync is done: nil when its lines are
// durable, an error matching ErrAuditUnavailable when the fsync failed
// (the lines may be lost). The writer always answers (also on Close), so
// Wait does not block past one fsync. It may be called more than once.
func (c *AuditCommit) Wait() error {
	c.once.Do(func() {
		if c.r == nil { // a commit that needed no fsync (a sink without one)
			return
		}
		c.err = <-c.r.done
		if cap(c.r.line) <= 64<<10 {
			c.r.buf, c.r.line = c.r.line[:0], nil
			auditReqPool.Put(c.r)
		}
		c.r = nil
	})
	return c.err
}

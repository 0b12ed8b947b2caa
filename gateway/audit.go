// Audit log: how the rest of the gateway uses it.
//
//	aud, err := NewAuditor(AuditConfig{Path: cfg.AuditLog, Logger: log, Metrics: met, Redactor: red})
//	if err != nil { ... refuse to start ... }
//	defer aud.Close()                         // flushes and syncs; after it Record fails
//
//	// in a handler, BEFORE running anything and before answering:
//	err := aud.Record(ctx, Event{Type: EventDecision, RequestID: rid, DecisionID: did,
//		Subject: p.Subject, Roles: p.Roles, RemoteIP: ip, UserAgent: ua,
//		PolicyHash: dec.PolicyHash, Command: req.Command, Args: req.Args, EnvKeys: keys,
//		Allowed: AuditBool(dec.Allowed), Reason: string(dec.Reason), Rule: &dec.Rule})
//	if err != nil { // errors.Is(err, ErrAuditUnavailable), or ctx was cancelled
//		answer 503 audit_unavailable; do not run the command
//	}
//
//	// SIGUSR1 (log rotation): aud.Reopen()   // /readyz: aud.Writable()
//
// Record returns nil only once the line is written AND fsynced. Lines from
// concurrent callers are group-committed: one writer goroutine owned by the
// Auditor collects whatever lines are waiting, writes them with one write(2)
// and one fsync(2), and then releases every caller of that batch. A caller
// therefore waits for at most about two fsyncs however many requests are in
// flight, and durability does not cap throughput. When no commit is under
// way, the caller commits its own line (with any that wait) itself: on an
// idle machine each hand-over to the writer goroutine and back costs a CPU
// wake-up (about 0.1 ms in a VM), which /v1/exec would pay twice per line.
//
// Record redacts and bounds the event (see Redactor) before encoding it:
// arguments, argv, cmdline, environment, cwd, user agent, message, error,
// target and trace details. Other fields are written as given, so never put
// a token, password or key in them.
//
// Rotation: Reopen (SIGUSR1) moves to a new file at Path; independently, every
// group commit first checks that Path still names the open file and reopens
// it when it was renamed or deleted.
//
// Use a context that outlives the client for lines that must be written even
// when the client has gone (exec_end after a disconnect):
// context.WithoutCancel(ctx) plus a timeout. A cancelled ctx makes Record
// return ctx.Err() (the line may or may not have been written).
//
// Nothing here calls os.Exit or panics on I/O errors: a failing disk makes
// Record and Writable return errors matching ErrAuditUnavailable until a
// write succeeds again (the writer retries, and reopens the file after a
// failed fsync).

package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAuditMaxBatch is the most lines one write+fsync carries.
const DefaultAuditMaxBatch = 512

// AuditConfig configures an Auditor.
type AuditConfig struct {
	// Path of the audit log. It is opened for appending, created with mode
	// 0600 when missing, and must not be a symbolic link.
	Path string
	// Redactor redacts secrets and home directories; nil uses the defaults.
	Redactor *Redactor
	// Logger receives write failures and recoveries (never an event's
	// content); nil discards.
	Logger *slog.Logger
	// Metrics, when set, counts lines, fsyncs and failures.
	Metrics *Metrics
	// MaxBatch bounds the lines per group commit; 0 = DefaultAuditMaxBatch.
	MaxBatch int
}

// Auditor writes audit events as JSON lines, durably, with group commit.
// It is safe for concurrent use. Its writer goroutine lives until Close.
type Auditor struct {
	path     string
	red      *Redactor
	log      *slog.Logger
	met      *Metrics
	maxBatch int

	mu     sync.RWMutex // guards closed against sends on reqs and ctl
	closed bool
	reqs   chan *auditReq
	ctl    chan auditCtl
	quit   chan struct{}
	done   chan struct{}

	// wmu guards the writer state below. The writer goroutine holds it for
	// each group commit and control operation; a caller that finds it free
	// commits its own line (commitNow). Nothing else is held during I/O.
	wmu      sync.Mutex
	closing  bool // the writer's final drain began: no more fast paths
	f        *auditFile
	fi       os.FileInfo // f's identity when opened
	size     int64       // bytes known good in f (for truncating a partial write)
	needNL   bool        // a partial line may be at the end of f
	lastErr  error
	buf      []byte
	closeErr error

	lines   atomic.Int64
	syncs   atomic.Int64
	batches atomic.Int64
}

type auditReq struct {
	line []byte     // one or more whole lines
	n    int        // how many
	buf  []byte     // line's storage, kept for reuse
	done chan error // buffered: the writer never blocks on it
	// written, when set (RecordAllWritten), is closed once the batch's
	// write(2) succeeded, before its fsync.
	written chan struct{}
	// wrote: line is in file already (RecordAllWritten's writeNow wrote
	// it); its batch only syncs it.
	wrote bool
	file  *auditFile
}

// result is r's outcome of a commit whose fsync returned err: a line
// written to a file that a rotation has closed since is durable exactly
// when that file's final fsync succeeded.
func (r *auditReq) result(err error) error {
	if r.file != nil && r.file.closed {
		return r.file.syncErr
	}
	return err
}

type auditOp int

const (
	opReopen auditOp = iota
	opProbe
)

type auditCtl struct {
	op   auditOp
	done chan error
}

// AuditStats counts what an Auditor has durably written.
type AuditStats struct {
	Lines   int64 // lines written and synced
	Syncs   int64 // successful fsyncs (one per group commit)
	Batches int64 // group commits attempted
}

// NewAuditor opens the audit log and starts its writer goroutine. It fails
// when the file cannot be opened for appending.
func NewAuditor(cfg AuditConfig) (*Auditor, error) {
	a := &Auditor{
		path:     cfg.Path,
		red:      cfg.Redactor,
		log:      cfg.Logger,
		met:      cfg.Metrics,
		maxBatch: cfg.MaxBatch,
		ctl:      make(chan auditCtl),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if a.red == nil {
		a.red = DefaultRedactor()
	}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.maxBatch <= 0 {
		a.maxBatch = DefaultAuditMaxBatch
	}
	a.reqs = make(chan *auditReq, 2*a.maxBatch)
	if err := a.open(); err != nil {
		return nil, err
	}
	go a.run()
	return a, nil
}

// Path returns the audit log path.
func (a *Auditor) Path() string { return a.path }

// Stats returns counters of durable writes.
func (a *Auditor) Stats() AuditStats {
	return AuditStats{Lines: a.lines.Load(), Syncs: a.syncs.Load(), Batches: a.batches.Load()}
}

// Record redacts ev, encodes it as one JSON line and returns once the line
// is written and fsynced (nil), or the reason it is not (an error matching
// ErrAuditUnavailable, or ctx.Err()). A zero ev.Time is set to now.
func (a *Auditor) Record(ctx context.Context, ev Event) error {
	r := auditReqPool.Get().(*auditReq)
	line, err := a.appendLine(r.buf[:0], ev)
	if err != nil {
		auditReqPool.Put(r)
		return err
	}
	r.line, r.n = line, 1
	return a.submit(ctx, r)
}

// RecordAll is Record for several events that belong together (a decision
// and the exec_start of its run): their lines go to the file in one write,
// in one group commit, so they cost the request one fsync. It returns once
// every line is written and fsynced, or none is reported written.
func (a *Auditor) RecordAll(ctx context.Context, evs ...Event) error {
	r := auditReqPool.Get().(*auditReq)
	line := r.buf[:0]
	for _, ev := range evs {
		var err error
		if line, err = a.appendLine(line, ev); err != nil {
			r.buf = line[:0]
			auditReqPool.Put(r)
			return err
		}
	}
	r.line, r.n = line, len(evs)
	return a.submit(ctx, r)
}

// enqueue hands r to the writer; on an error the writer never saw it.
func (a *Auditor) enqueue(ctx context.Context, r *auditReq) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return ErrAuditClosed
	}
	select {
	case a.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// submit commits r itself when the writer is idle, or hands r to the
// writer and waits for its group commit.
func (a *Auditor) submit(ctx context.Context, r *auditReq) error {
	if err, ok := a.commitNow(ctx, r); ok {
		if cap(r.line) <= 64<<10 {
			r.buf, r.line = r.line[:0], nil
			auditReqPool.Put(r)
		}
		return err
	}
	if err := a.enqueue(ctx, r); err != nil {
		auditReqPool.Put(r)
		return err
	}
	select {
	case err := <-r.done:
		if cap(r.line) <= 64<<10 { // the writer is done with it: reuse
			r.buf, r.line = r.line[:0], nil
			auditReqPool.Put(r)
		}
		return err
	case <-ctx.Done():
		return ctx.Err() // the writer still holds r: not reused
	}
}

// fastOK says whether a caller holding wmu may commit by itself: not once
// the final drain began, and only to a regular file (a FIFO to a stalled
// log reader blocks its writer; then callers queue and keep their ctx).
func (a *Auditor) fastOK() bool {
	return !a.closing && a.fi != nil && a.fi.Mode().IsRegular()
}

// commitNow is submit's fast path: when no commit is under way, the
// caller writes and syncs r, with whatever lines wait, as the writer would.
// ok is false when a commit is under way, ctx is done or the log is
// closing (submit queues r then, and reports ctx or the close). The caller
// then waits for its own write and fsync: on a disk that hangs, it hangs
// with them (one caller: the others find wmu taken and queue, and give up
// with their ctx).
func (a *Auditor) commitNow(ctx context.Context, r *auditReq) (err error, ok bool) { //nolint:revive,staticcheck // ok says whether err is the result
	if ctx.Err() != nil || !a.wmu.TryLock() {
		return nil, false
	}
	if !a.fastOK() {
		a.wmu.Unlock()
		return nil, false
	}
	batch := a.collect(append(make([]*auditReq, 0, 4), r))
	err = a.writeBatch(batch)
	for _, o := range batch[1:] {
		o.done <- o.result(err) // under wmu: result reads file state
	}
	a.wmu.Unlock()
	return err, true
}

// auditReqPool recycles requests (line buffer and done channel) of
// Records that completed.
var auditReqPool = sync.Pool{New: func() any { return &auditReq{done: make(chan error, 1), buf: make([]byte, 0, 1024)} }}

// Reopen closes the audit log and opens Path again: after a rotation moved
// the file away, new lines go to a new file. Lines already accepted are
// written to the old file first.
func (a *Auditor) Reopen() error { return a.control(opReopen) }

// Writable reports whether the audit log can take lines (for /readyz). After
// a failure it probes the file again (reopen if needed, fsync, free space).
func (a *Auditor) Writable() error { return a.control(opProbe) }

// Close writes every line already accepted, syncs and closes the file and
// ends the writer goroutine. Record fails with ErrAuditClosed afterwards.
// Close is idempotent; it returns the error of the final sync or close.
func (a *Auditor) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return a.closeErr
	}
	a.closed = true
	a.mu.Unlock()
	close(a.quit)
	<-a.done
	return a.closeErr
}

func (a *Auditor) control(op auditOp) error {
	c := auditCtl{op: op, done: make(chan error, 1)}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return ErrAuditClosed
	}
	a.ctl <- c // unbuffered: once sent, the writer handles it before quitting
	a.mu.RUnlock()
	return <-c.done
}

func (a *Auditor) encode(ev Event) ([]byte, error) {
	return a.appendLine(nil, ev)
}

// appendLine redacts ev and appends its JSON line to b.
func (a *Auditor) appendLine(b []byte, ev Event) ([]byte, error) {
	if ev.Type == "" {
		return nil, &AuditError{Op: "encode", Path: a.path, Err: errors.New("event without a type")}
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	if y := ev.Time.Year(); y < 0 || y > 9999 { // what encoding/json refuses
		return nil, &AuditError{Op: "encode", Path: a.path, Err: fmt.Errorf("time %s out of range", ev.Time)}
	}
	ev = a.red.Event(ev)
	return appendEvent(b, &ev), nil
}

// run is the writer goroutine: it group-commits lines and serves Reopen and
// Writable until Close.
func (a *Auditor) run() {
	defer close(a.done)
	batch := make([]*auditReq, 0, a.maxBatch)
	for {
		select {
		case r := <-a.reqs:
			a.commit(append(batch[:0], r))
		case c := <-a.ctl:
			a.wmu.Lock()
			err := a.handle(c.op)
			a.wmu.Unlock()
			c.done <- err
		case <-a.quit:
			a.wmu.Lock()
			a.closing = true // after it, only queued lines: drain takes them all
			a.wmu.Unlock()
			a.drain(batch)
			a.wmu.Lock()
			a.closeErr = a.closeFile()
			a.wmu.Unlock()
			return
		}
	}
}

// collect adds every line already waiting, up to maxBatch.
func (a *Auditor) collect(batch []*auditReq) []*auditReq {
	for len(batch) < a.maxBatch {
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (a *Auditor) drain(batch []*auditReq) {
	for {
		batch = a.collect(batch[:0])
		if len(batch) == 0 {
			return
		}
		a.commit(batch)
	}
}

// commit group-commits batch and whatever else waits once the writer state
// is free, and releases every caller of it.
func (a *Auditor) commit(batch []*auditReq) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	batch = a.collect(batch)
	err := a.writeBatch(batch)
	for _, r := range batch {
		r.done <- r.result(err) // buffered; under wmu: result reads file state
	}
}

// writeBatch writes and syncs batch: one write(2), one fsync(2). The
// caller holds wmu.
func (a *Auditor) writeBatch(batch []*auditReq) error {
	lines, err := a.writeLines(batch)
	if err != nil {
		return err
	}
	return a.syncLines(lines)
}

// writeLines writes the lines of batch not written yet with one write(2),
// closes their written channels, and returns how many lines batch holds.
// The caller holds wmu.
func (a *Auditor) writeLines(batch []*auditReq) (int, error) {
	a.batches.Add(1)
	if err := a.ensureOpen(); err != nil {
		return 0, a.fail(err)
	}
	buf := a.buf[:0]
	if a.needNL {
		buf = append(buf, '\n') // end a partial line left by a failed write
	}
	lines := 0
	for _, r := range batch {
		if !r.wrote {
			buf = append(buf, r.line...)
		}
		lines += r.n
	}
	if cap(buf) <= 1<<20 {
		a.buf = buf
	}
	if len(buf) == 0 { // only lines writeNow wrote: nothing to write
		return lines, nil
	}
	n, err := a.f.Write(buf)
	if err != nil {
		a.dropPartial(n)
		return 0, a.fail(&AuditError{Op: "write", Path: a.path, Err: err})
	}
	a.size += int64(n)
	a.needNL = false // any partial line before is ended
	for _, r := range batch {
		if r.written != nil && !r.wrote {
			close(r.written)
		}
	}
	return lines, nil
}

// syncLines fsyncs the file after writeLines; lines are durable on nil.
// The caller holds wmu.
func (a *Auditor) syncLines(lines int) error {
	if err := a.f.Sync(); err != nil {
		// After a failed fsync the page cache cannot be trusted: start over
		// with a fresh descriptor on the next batch.
		serr := &AuditError{Op: "sync", Path: a.path, Err: err}
		_ = a.f.close(serr)
		a.f = nil
		return a.fail(serr)
	}
	a.needNL = false
	a.lines.Add(int64(lines))
	a.syncs.Add(1)
	a.met.auditCommitted(lines)
	a.recovered()
	return nil
}

func (a *Auditor) fail(err error) error {
	if a.lastErr == nil {
		a.log.Error("audit log unavailable", "path", a.path, "err", err)
	}
	a.lastErr = err
	var ae *AuditError
	op := "other"
	if errors.As(err, &ae) {
		op = ae.Op
	}
	a.met.auditFailed(op)
	return err
}

func (a *Auditor) recovered() {
	if a.lastErr != nil {
		a.log.Info("audit log writable again", "path", a.path)
		a.lastErr = nil
	}
}

func (a *Auditor) handle(op auditOp) error {
	switch op {
	case opReopen:
		if err := a.closeFile(); err != nil {
			a.log.Warn("audit log close before reopen", "path", a.path, "err", err)
		}
		if err := a.open(); err != nil {
			return a.fail(err)
		}
		a.log.Info("audit log reopened", "path", a.path)
		return nil
	case opProbe:
		return a.probe()
	}
	return nil
}

package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// start handles a start frame: checks it and runs the job in its own
// goroutine, owned by the connection.
func (sc *serverConn) start(ctx context.Context, f frame) error {
	var m startMsg
	if err := decodeStrict(f.Payload, &m); err != nil {
		return &ProtocolError{Frame: "start", Job: f.Job, Reason: "bad start message: " + err.Error()}
	}
	sc.mu.Lock()
	if f.Job <= sc.last {
		sc.mu.Unlock()
		return &ProtocolError{Frame: "start", Job: f.Job, Reason: "job numbers must increase"}
	}
	sc.last = f.Job
	if len(sc.jobs) >= sc.srv.cfg.MaxJobs {
		sc.mu.Unlock()
		msg := fmt.Sprintf("connection already runs %d jobs", sc.srv.cfg.MaxJobs)
		return sendJSON(sc.w, frameError, f.Job, errorMsg{Code: codeTooManyJobs, Message: msg})
	}
	jctx, cancel := context.WithCancel(ctx)
	j := &serverJob{
		num: f.Job, cancel: cancel, stdout: newCredit(), stderr: newCredit(),
		resize: make(chan sandbox.WindowSize, 1), signal: make(chan syscall.Signal, 4),
	}
	if m.Stdin {
		j.stdin = newInbox()
		j.stdin.addGrant(sc.srv.cfg.StdinWindow)
	}
	sc.jobs[f.Job] = j
	sc.wg.Add(1)
	sc.mu.Unlock()
	go func() {
		defer sc.wg.Done()
		defer cancel()
		sc.runJob(jctx, j, &m)
	}()
	return nil
}

// runJob runs one job through Local and sends its result or error frame,
// the last frame of the job.
func (sc *serverConn) runJob(ctx context.Context, j *serverJob, m *startMsg) {
	defer func() {
		sc.mu.Lock()
		delete(sc.jobs, j.num)
		sc.mu.Unlock()
		j.end()
	}()
	job, err := m.job()
	if err == nil && j.stdin != nil {
		job.Stdin = &stdinReader{ctx: ctx, in: j.stdin, w: sc.w, job: j.num}
		err = sc.w.send(grantFrame(j.num, streamStdin, sc.srv.cfg.StdinWindow))
	}
	if err != nil {
		sc.sendError(j.num, errMsgFor(err))
		return
	}
	stop := sc.attach(ctx, j, &job)
	d, res, err := sc.srv.cfg.Local.Run(ctx, job)
	stop()
	if d == nil || !d.Allowed {
		if err == nil {
			err = fmt.Errorf("job %s: no decision: %w", job.ID, ErrInternal)
		}
		sc.logRun(job, err)
		sc.sendError(j.num, errMsgFor(err))
		return
	}
	dec := *d
	dec.Env = nil
	msg := resultMsg{Decision: dec, Result: res}
	if err != nil {
		em := errMsgFor(err)
		msg.Err = &em
	}
	sc.logRun(job, err)
	p, perr := marshalResult(msg)
	if perr != nil {
		sc.sendError(j.num, errorMsg{Code: codeInternal, Message: perr.Error()})
		return
	}
	if err := sc.w.send(frame{Type: frameResult, Job: j.num, Payload: p}); err != nil {
		sc.srv.log.Debug("send result", "request_id", job.ID, "error", err)
	}
}

// attach connects the job's output, resize and signals to the wire. Output
// waits for the front's credit, but not past the job's wall-clock limit
// plus its kill grace plus OutputDrainGrace: a front that stops reading
// cannot hold a finished sandbox (its remaining output is dropped).
func (sc *serverConn) attach(ctx context.Context, j *serverJob, job *Job) (stop func()) {
	wctx, wcancel := context.WithCancel(ctx)
	var timer *time.Timer
	var mu sync.Mutex
	job.Stdout = &streamWriter{ctx: wctx, c: j.stdout, w: sc.w, job: j.num, stream: streamStdout}
	job.Stderr = &streamWriter{ctx: wctx, c: j.stderr, w: sc.w, job: j.num, stream: streamStderr}
	job.Resize = j.resize
	job.Signal = j.signal
	job.Started = func(d *policy.Decision) {
		if d.Profile != nil {
			mu.Lock()
			timer = time.AfterFunc(d.Profile.Timeout+d.Profile.KillGrace+sc.srv.cfg.OutputDrainGrace, wcancel)
			mu.Unlock()
		}
		sc.sendStarted(j.num, d)
	}
	job.Finished = func(d *policy.Decision, res sandbox.Result) { sc.sendFinished(j.num, d, res) }
	return func() {
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		wcancel()
	}
}

// sendStarted tells the front the job is allowed and starting.
func (sc *serverConn) sendStarted(num uint64, d *policy.Decision) {
	dec := *d
	dec.Env, dec.Trace = nil, nil
	if err := sendJSON(sc.w, frameStarted, num, &dec); err != nil {
		sc.srv.log.Debug("send started frame", "error", err)
	}
}

// sendFinished tells the front the command has ended: every data frame of
// the job was sent before this one. The result frame follows after the
// sandbox's teardown.
func (sc *serverConn) sendFinished(num uint64, d *policy.Decision, res sandbox.Result) {
	dec := *d
	dec.Env = nil
	p, err := marshalResult(resultMsg{Decision: dec, Result: res})
	if err == nil {
		err = sc.w.send(frame{Type: frameFinish, Job: num, Payload: p})
	}
	if err != nil {
		sc.srv.log.Debug("send finished frame", "error", err)
	}
}

func (sc *serverConn) logRun(job Job, err error) {
	if err != nil {
		sc.srv.log.Info("executor job failed", "request_id", job.ID, "subject", job.Request.Subject, "error", err)
	}
}

func (sc *serverConn) sendError(num uint64, m errorMsg) {
	if err := sendJSON(sc.w, frameError, num, m); err != nil {
		sc.srv.log.Debug("send error frame", "error", err)
	}
}

// sendJSON sends v as the JSON payload of a frame.
func sendJSON(w *connWriter, t frameType, num uint64, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", t, err)
	}
	if len(p) > MaxPayload {
		return fmt.Errorf("encode %s: %d bytes over the frame limit", t, len(p))
	}
	return w.send(frame{Type: t, Job: num, Payload: p})
}

// streamWriter sends a job's output as data frames, never more than the
// front granted: with no credit left, Write blocks, the sandbox's copier
// stops reading the pipe and the command blocks on its own write.
type streamWriter struct {
	ctx    context.Context // the job's; cancelling it fails pending writes
	c      *credit
	w      *connWriter
	job    uint64
	stream streamID
}

func (s *streamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := s.c.take(s.ctx, min(len(p), MaxData))
		if err != nil {
			return written, fmt.Errorf("wait for %s credit: %w", streamName(s.stream), err)
		}
		if err := s.w.send(frame{Type: frameData, Stream: s.stream, Job: s.job, Payload: p[:n]}); err != nil {
			return written, err
		}
		p, written = p[n:], written+n
	}
	return written, nil
}

// stdinReader hands the front's stdin to the sandbox and grants the front
// new credit for what was consumed.
type stdinReader struct {
	ctx context.Context
	in  *inbox
	w   *connWriter
	job uint64
}

func (r *stdinReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, done, err := r.in.read(r.ctx, p)
	if n > 0 {
		r.in.addGrant(n)
		if err := r.w.send(grantFrame(r.job, streamStdin, n)); err != nil {
			return n, err
		}
		return n, nil
	}
	if done && err == nil {
		return 0, io.EOF
	}
	return 0, err
}

func streamName(s streamID) string {
	switch s {
	case streamStdin:
		return "stdin"
	case streamStdout:
		return "stdout"
	case streamStderr:
		return "stderr"
	}
	return "none"
}

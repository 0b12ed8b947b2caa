package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// How /v1/exec runs an allowed command (docs/audit.md, "Durability"):
//
//  1. The decision and exec_start lines are written to the audit log
//     (write(2), one group commit); a failed write runs nothing.
//  2. The command starts while that commit's fsync completes; a failed
//     fsync kills it and the answer is 503 audit_unavailable.
//  3. When the command has ended and its output is complete (Job.Finished),
//     exec_end is written and synced, and the answer is sent. The sandbox's
//     teardown goes on after the answer; the session keeps its slots under
//     both caps until the teardown is over (sessionTable.finish, release).

// runInput is what run needs of the decided request.
type runInput struct {
	req   *execRequest
	stdin []byte
	d     *policy.Decision
	dev   Event // the decision line, written with exec_start
}

// runOutcome is what Runner.Run returned.
type runOutcome struct {
	d   *policy.Decision
	res sandbox.Result
	err error
}

// auditCommitWait bounds the wait for the fsync of a run's start lines.
const auditCommitWait = 10 * time.Second

// run audits the decision and the start, runs the job and answers. It owns
// sess: every path ends it, at once or after the sandbox's teardown.
func (s *Server) run(reqCtx, ctx context.Context, c *gin.Context, sess *session, in runInput) error {
	d := in.d
	start := s.event(c, EventExecStart)
	start.Command, start.Argv = d.Command, d.Argv
	commit, err := s.audit.RecordAllWritten(reqCtx, in.dev, start)
	if err != nil {
		s.sessions.release(sess)
		sess.cancel()
		return auditUnavailable(err)
	}
	out := ranOutput{stdout: &capBuffer{sess: sess}, stderr: &capBuffer{sess: sess}, t0: time.Now()}
	finished := make(chan sandbox.Result, 1)
	// The client leaving kills the command while it runs, not the teardown.
	stopKill := context.AfterFunc(reqCtx, sess.cancel)
	defer stopKill()
	ran := s.startRun(ctx, s.job(sess, in, start.Roles, out, finished))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditCommitWait)
	err = commit(cctx) // while the sandbox starts
	cancel()
	if err != nil {
		sess.cancel() // the lines may not be durable: stop the command
		return s.commitFailed(c, sess, d, ran, err)
	}
	if st := authState(c); st != nil && in.dev.AuthMethod != "" {
		st.written = true // the decision line is the auth record
	}
	select {
	case res := <-finished:
		stopKill()
		s.sessions.finish(sess)
		go s.awaitTeardown(sess, ran)
		return s.answer(c, d, res, nil, out)
	case o := <-ran:
		stopKill()
		s.endSession(sess)
		select {
		case res := <-finished: // it finished, then its teardown failed
			s.teardownFailed(sess.ID, o.err)
			return s.answer(c, d, res, nil, out)
		default:
		}
		return s.notRun(c, in.req, d, o, out)
	}
}

// job builds the executor job of an allowed request.
func (s *Server) job(sess *session, in runInput, roles []string, out ranOutput, finished chan<- sandbox.Result) executor.Job {
	timeout, maxOut := effective(in.d.Profile, in.req)
	// A buffered answer must be written before http.write_timeout.
	timeout = min(timeout, s.cfg.HTTP.WriteTimeout-writeMargin)
	out.stdout.max, out.stderr.max = maxOut, maxOut
	return executor.Job{ID: sess.ID, Request: in.req.policyRequest(Principal{Subject: sess.Subject, Roles: roles}),
		Timeout: timeout, MaxOutputBytes: maxOut, Stdin: bytes.NewReader(in.stdin), Stdout: out.stdout, Stderr: out.stderr,
		Finished: func(_ *policy.Decision, res sandbox.Result) {
			finished <- res
			// Let the handler answer now, on this CPU, rather than after
			// the teardown this goroutine goes on with (on an idle machine
			// a wake-up elsewhere costs about 0.3 ms).
			runtime.Gosched()
		}}
}

// startRun runs job on its own goroutine, which ends when Runner.Run
// returns (after the sandbox's teardown); its outcome comes on the channel.
func (s *Server) startRun(ctx context.Context, job executor.Job) <-chan runOutcome {
	s.metrics.SandboxActive(1)
	ran := make(chan runOutcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil { // a Runner bug must not take the gateway down
				s.log.Error("runner panicked", "request_id", job.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				ran <- runOutcome{err: fmt.Errorf("run %s: %v: %w", job.ID, p, ErrRunnerPanic)}
			}
		}()
		d, res, err := s.deps.Runner.Run(ctx, job) // the executor's decision matches d, or comes as a DeniedError
		ran <- runOutcome{d: d, res: res, err: err}
	}()
	return ran
}

// commitFailed ends a run whose start lines could not be synced: the
// command was killed; its end is recorded if the log takes it.
func (s *Server) commitFailed(c *gin.Context, sess *session, d *policy.Decision, ran <-chan runOutcome, cerr error) error {
	o := <-ran
	s.endSession(sess)
	end := s.endEvent(c, d, o.res, fmt.Errorf("audit log sync failed, command killed: %w", cerr))
	if err := s.audit.Record(context.WithoutCancel(c.Request.Context()), end); err != nil {
		s.log.Warn("exec_end after a failed audit sync not written", "request_id", requestID(c), "error", err)
	}
	s.metrics.ExecDone(d.Command, OutcomeError, time.Since(sess.Started), o.res.StdoutBytes, o.res.StderrBytes)
	return auditUnavailable(cerr)
}

// awaitTeardown ends sess once its run has returned (the sandbox is gone),
// logging a teardown that failed after the answer.
func (s *Server) awaitTeardown(sess *session, ran <-chan runOutcome) {
	o := <-ran
	s.teardownFailed(sess.ID, o.err)
	s.endSession(sess)
}

// teardownFailed logs and counts a teardown that failed after the command
// had finished (its result stands).
func (s *Server) teardownFailed(id string, err error) {
	if err == nil {
		return
	}
	s.metrics.TeardownFailed()
	s.log.Error("sandbox teardown failed", "request_id", id, "error", err)
}

// endSession releases a session whose sandbox is gone.
func (s *Server) endSession(sess *session) {
	s.metrics.SandboxActive(-1)
	s.sessions.release(sess)
	sess.cancel()
}

// ranOutput is the output a run collected, and when it started.
type ranOutput struct {
	stdout, stderr *capBuffer
	t0             time.Time
}

// notRun answers a run that returned without finishing: the executor
// denied it, refused it for capacity, or the sandbox could not run it.
func (s *Server) notRun(c *gin.Context, req *execRequest, d *policy.Decision, o runOutcome, out ranOutput) error {
	var de *executor.DeniedError
	if errors.As(o.err, &de) { // the executor decided again and denied
		s.metrics.ExecDone(d.Command, OutcomeDenied, 0, 0, 0)
		s.metrics.Denied(string(de.Decision.Reason))
		ev := s.decisionEvent(c, req, &de.Decision)
		ev.Error = "denied by the executor's own decision"
		if err := s.audit.Record(context.WithoutCancel(c.Request.Context()), ev); err != nil {
			return auditUnavailable(err)
		}
		return denied(de.Decision)
	}
	if errors.Is(o.err, executor.ErrTooManyJobs) {
		s.metrics.Limited("sessions")
		if err := s.audit.Record(context.WithoutCancel(c.Request.Context()), s.endEvent(c, d, o.res, o.err)); err != nil {
			return auditUnavailable(err)
		}
		return errTooManySessions(o.err)
	}
	return s.answer(c, d, o.res, o.err, out) // o.err nil: a Runner without Finished
}

// answer records exec_end (synced) and sends the result.
func (s *Server) answer(c *gin.Context, d *policy.Decision, res sandbox.Result, runErr error, out ranOutput) error {
	s.metrics.SandboxStarted(res.StartLatency)
	s.metrics.ExecDone(d.Command, ExecOutcome(string(res.EndedBy), res.ExitCode, runErr), time.Since(out.t0), res.StdoutBytes, res.StderrBytes)
	end := s.endEvent(c, d, res, runErr)
	if err := s.audit.Record(context.WithoutCancel(c.Request.Context()), end); err != nil {
		return auditUnavailable(err)
	}
	if errors.Is(runErr, sandbox.ErrDiskFull) { // nothing ran: a file system is below sandbox.min_free_bytes
		return httpErr(http.StatusInsufficientStorage, CodeDiskFull, "the gateway is short of disk space; nothing was run", fmt.Errorf("run %s: %w", requestID(c), runErr))
	}
	if runErr != nil {
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "the command could not be run", fmt.Errorf("run %s: %w", requestID(c), runErr))
	}
	resp := execResponse{RequestID: requestID(c), ExitCode: res.ExitCode, Signal: res.Signal,
		StdoutTruncated: res.StdoutTruncated || out.stdout.truncated, StderrTruncated: res.StderrTruncated || out.stderr.truncated,
		DurationMS: res.Duration.Milliseconds(), EndedBy: string(res.EndedBy)}
	resp.Stdout, resp.StdoutEncoding = encodeOutput(out.stdout.buf.Bytes())
	resp.Stderr, resp.StderrEncoding = encodeOutput(out.stderr.buf.Bytes())
	return writeAnswer(c, http.StatusOK, resp.appendJSON)
}

func (s *Server) endEvent(c *gin.Context, d *policy.Decision, res sandbox.Result, runErr error) Event {
	ev := s.event(c, EventExecEnd)
	ev.Command = d.Command
	ev.ExitCode, ev.Signal, ev.EndedBy = AuditInt(res.ExitCode), res.Signal, string(res.EndedBy)
	ev.DurationMS, ev.StartLatencyMS = res.Duration.Milliseconds(), res.StartLatency.Milliseconds()
	ev.StdoutBytes, ev.StderrBytes = res.StdoutBytes, res.StderrBytes
	ev.StdoutTruncated, ev.StderrTruncated = res.StdoutTruncated, res.StderrTruncated
	if runErr != nil {
		ev.Error = runErr.Error()
	}
	return ev
}

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// The ordering of one POST /v1/exec (docs/audit.md#durability):
//
//  1. decision + exec_start are written to the audit log in one write(2)
//     (an unwritable log fails the request here: nothing runs); their fsync
//     proceeds while the sandbox starts. If it fails, the run is killed and
//     the answer is 503 audit_unavailable.
//  2. The run's result arrives as soon as it is final (Job.Finished), before
//     the container's teardown; exec_end is written and synced (that commit
//     follows the first in the same ordered log, whose fsync outcome is
//     checked first), and the answer is sent while the teardown runs.
//  3. The handler returns only after the teardown: the session stays listed
//     and holds its concurrency slot until then, and a teardown error is
//     logged and counted.

// runOutcome is what Runner.Run returned.
type runOutcome struct {
	res sandbox.Result
	err error
}

// run audits the decision and the start, runs the job, audits the end and
// answers, overlapping the audit fsyncs with the sandbox's own work.
func (s *Server) run(ctx context.Context, c *gin.Context, sess *session, req *execRequest, stdin []byte, d *policy.Decision, dev Event) error {
	timeout, maxOut := effective(d.Profile, req)
	// A buffered answer must be written before http.write_timeout.
	timeout = min(timeout, s.cfg.HTTP.WriteTimeout-writeMargin)
	start := s.event(c, EventExecStart)
	start.Command, start.Argv = d.Command, d.Argv
	commit, err := s.audit.RecordAllWritten(ctx, dev, start)
	if err != nil {
		return auditUnavailable(err)
	}
	if st := authState(c); st != nil && dev.AuthMethod != "" {
		st.written = true // the decision line is the auth record
	}
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	synced := make(chan error, 1)
	go func() { // owned by run: joined below before any answer
		err := commit.Wait()
		if err != nil {
			stopRun(err) // the start is not durable: kill the run
		}
		synced <- err
	}()
	stdout, stderr := &capBuffer{max: maxOut, sess: sess}, &capBuffer{max: maxOut, sess: sess}
	finished := make(chan sandbox.Result, 1)
	job := executor.Job{ID: sess.ID, Request: req.policyRequest(Principal{Subject: sess.Subject, Roles: start.Roles}),
		Timeout: timeout, MaxOutputBytes: maxOut, Stdin: bytes.NewReader(stdin), Stdout: stdout, Stderr: stderr,
		Finished: func(res sandbox.Result) { finished <- res }}
	s.metrics.SandboxActive(1)
	t0 := time.Now()
	ran := make(chan runOutcome, 1)
	go func() { // owned by run: joined by waitTeardown or below
		_, res, err := s.deps.Runner.Run(runCtx, job) // the executor's decision matches d, or comes as a DeniedError
		ran <- runOutcome{res: res, err: err}
	}()
	var o runOutcome
	early := false
	select {
	case o.res = <-finished:
		early = true
		defer s.waitTeardown(c, sess, ran)
	case o = <-ran:
		s.metrics.SandboxActive(-1)
	}
	if err := <-synced; err != nil {
		s.recordEnd(ctx, c, d, o, err)
		return auditUnavailable(err)
	}
	return s.answer(ctx, c, sess, req, d, o, stdout, stderr, t0, early)
}

// waitTeardown waits for Runner.Run to return after the answer was sent
// from Job.Finished: the container is destroyed, and a teardown error is
// logged and counted (the client's answer and exec_end stand: the command's
// outcome was final).
func (s *Server) waitTeardown(c *gin.Context, sess *session, ran <-chan runOutcome) {
	o := <-ran
	s.metrics.SandboxActive(-1)
	if o.err != nil {
		s.metrics.TeardownFailed()
		s.log.Error("sandbox teardown failed", "request_id", requestID(c), "session_id", sess.ID, "error", o.err)
	}
}

// recordEnd writes exec_end for a run whose start could not be made
// durable (best effort: the answer is 503 audit_unavailable either way).
func (s *Server) recordEnd(ctx context.Context, c *gin.Context, d *policy.Decision, o runOutcome, syncErr error) {
	end := s.endEvent(c, d, o.res, errors.Join(o.err, fmt.Errorf("audit: %w", syncErr)))
	if err := s.audit.Record(context.WithoutCancel(ctx), end); err != nil {
		s.log.Warn("exec_end after a failed audit sync", "request_id", requestID(c), "error", err)
	}
}

// answer audits the end and sends the answer.
func (s *Server) answer(ctx context.Context, c *gin.Context, sess *session, req *execRequest, d *policy.Decision, o runOutcome,
	stdout, stderr *capBuffer, t0 time.Time, early bool) error {
	res, runErr := o.res, o.err
	s.metrics.SandboxStarted(res.StartLatency)
	var de *executor.DeniedError
	if errors.As(runErr, &de) { // the executor decided again and denied
		s.metrics.ExecDone(d.Command, OutcomeDenied, 0, 0, 0)
		s.metrics.Denied(string(de.Decision.Reason))
		ev := s.decisionEvent(c, req, &de.Decision)
		ev.Error = "denied by the executor's own decision"
		if err := s.audit.Record(context.WithoutCancel(ctx), ev); err != nil {
			return auditUnavailable(err)
		}
		return denied(de.Decision)
	}
	if errors.Is(runErr, executor.ErrTooManyJobs) {
		s.metrics.Limited("sessions")
		return errTooManySessions(runErr)
	}
	s.metrics.ExecDone(d.Command, ExecOutcome(string(res.EndedBy), res.ExitCode, runErr), time.Since(t0), res.StdoutBytes, res.StderrBytes)
	end := s.endEvent(c, d, res, runErr)
	if err := s.audit.Record(context.WithoutCancel(ctx), end); err != nil {
		return auditUnavailable(err)
	}
	if runErr != nil {
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "the command could not be run", fmt.Errorf("run %s: %w", sess.ID, runErr))
	}
	resp := execResponse{RequestID: requestID(c), ExitCode: res.ExitCode, Signal: res.Signal,
		StdoutTruncated: res.StdoutTruncated || stdout.truncated, StderrTruncated: res.StderrTruncated || stderr.truncated,
		DurationMS: res.Duration.Milliseconds(), EndedBy: string(res.EndedBy)}
	resp.Stdout, resp.StdoutEncoding = encodeOutput(stdout.buf.Bytes())
	resp.Stderr, resp.StderrEncoding = encodeOutput(stderr.buf.Bytes())
	if !early {
		c.JSON(http.StatusOK, resp)
		return nil
	}
	return sendNow(c, resp)
}

// sendNow writes a 200 JSON answer with its length and flushes it, so the
// client has it while the handler still waits for the teardown.
func sendNow(c *gin.Context, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.Status(http.StatusOK)
	if _, err := c.Writer.Write(body); err != nil {
		return nil // the client has gone; exec_end is written
	}
	c.Writer.Flush()
	return nil
}

package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/execgate/execgate/policy"
)

// execRequest is the body of POST /v1/exec and /v1/exec/check: command and
// args, or cmdline.
type execRequest struct {
	Command        string            `json:"command"`
	Args           []string          `json:"args"`
	Cmdline        string            `json:"cmdline"`
	Stdin          string            `json:"stdin"`
	StdinEncoding  string            `json:"stdin_encoding"`
	TimeoutMS      int64             `json:"timeout_ms"`
	MaxOutputBytes int64             `json:"max_output_bytes"`
	Env            map[string]string `json:"env"`
	Cwd            string            `json:"cwd"`
}

// writeMargin is kept between a run's timeout and http.write_timeout.
const writeMargin = 5 * time.Second

// maxTimeoutMS bounds timeout_ms before the profile clamps it (one day).
const maxTimeoutMS = 24 * 3600 * 1000

func (r *execRequest) validate() ([]byte, error) {
	if (r.Command == "") == (r.Cmdline == "") {
		return nil, errInvalid("command", "exactly one of command and cmdline is required", errors.New("command/cmdline"))
	}
	if r.Cmdline != "" && len(r.Args) > 0 {
		return nil, errInvalid("args", "args go with command, not with cmdline", errors.New("args with cmdline"))
	}
	if r.TimeoutMS < 0 || r.TimeoutMS > maxTimeoutMS {
		return nil, errInvalid("timeout_ms", "timeout_ms must be between 0 and 86400000", fmt.Errorf("timeout_ms %d", r.TimeoutMS))
	}
	if r.MaxOutputBytes < 0 {
		return nil, errInvalid("max_output_bytes", "max_output_bytes must not be negative", fmt.Errorf("max_output_bytes %d", r.MaxOutputBytes))
	}
	switch r.StdinEncoding {
	case "", "utf-8":
		return []byte(r.Stdin), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(r.Stdin)
		if err != nil {
			return nil, errInvalid("stdin", "stdin is not valid base64", err)
		}
		return b, nil
	}
	return nil, errInvalid("stdin_encoding", `stdin_encoding must be "utf-8" or "base64"`, fmt.Errorf("stdin_encoding %q", r.StdinEncoding))
}

func (r *execRequest) policyRequest(p Principal) policy.Request {
	return policy.Request{Subject: p.Subject, Roles: p.Roles, Command: r.Command, Args: r.Args, Cmdline: r.Cmdline, Env: r.Env, Cwd: r.Cwd}
}

// limitsView is the effective limits of a decision, after the client's asks.
type limitsView struct {
	TimeoutMS      int64   `json:"timeout_ms"`
	MaxOutputBytes int64   `json:"max_output_bytes"`
	MemoryBytes    int64   `json:"memory_bytes"`
	Pids           int64   `json:"pids"`
	CPUQuota       float64 `json:"cpu_quota"`
	Network        string  `json:"network"`
	Profile        string  `json:"profile"`
}

// effective clamps the client's asks to the profile: less, never more.
func effective(prof *policy.Profile, r *execRequest) (time.Duration, int64) {
	if prof == nil {
		return 0, 0
	}
	timeout, out := prof.Timeout, prof.MaxOutputBytes
	if ask := time.Duration(r.TimeoutMS) * time.Millisecond; ask > 0 && ask < timeout {
		timeout = ask
	}
	if r.MaxOutputBytes > 0 && r.MaxOutputBytes < out {
		out = r.MaxOutputBytes
	}
	return timeout, out
}

// checkResponse is the answer of POST /v1/exec/check.
type checkResponse struct {
	RequestID  string      `json:"request_id"`
	Allowed    bool        `json:"allowed"`
	Reason     string      `json:"reason"`
	Message    string      `json:"message,omitempty"`
	Command    string      `json:"command,omitempty"`
	Argv       []string    `json:"argv,omitempty"`
	EnvKeys    []string    `json:"env_keys,omitempty"`
	Cwd        string      `json:"cwd,omitempty"`
	Limits     *limitsView `json:"limits,omitempty"`
	PolicyHash string      `json:"policy_hash"`
}

// decide parses the body and asks the serving policy. It returns the
// decision's audit line (the request's auth record, withAuth) unwritten:
// /v1/exec/check writes it alone, /v1/exec together with exec_start.
func (s *Server) decide(c *gin.Context, dryRun bool) (*execRequest, []byte, policy.Decision, Event, error) {
	var req execRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, nil, policy.Decision{}, Event{}, err
	}
	stdin, err := req.validate()
	if err != nil {
		return nil, nil, policy.Decision{}, Event{}, err
	}
	set := s.currentPolicy()
	p, _ := principal(c)
	d := decideWith(c.Request.Context(), set, req.policyRequest(p))
	ev := s.decisionEvent(c, &req, &d)
	ev.DryRun = dryRun
	withAuth(c, &ev)
	return &req, stdin, d, ev, nil
}

// recordDecision writes a decision line on its own.
func (s *Server) recordDecision(c *gin.Context, ev Event, d *policy.Decision) error {
	if err := s.recordAuthed(c, ev); err != nil {
		return auditUnavailable(err)
	}
	if !d.Allowed {
		s.metrics.Denied(string(d.Reason))
	}
	return nil
}

func (s *Server) decisionEvent(c *gin.Context, req *execRequest, d *policy.Decision) Event {
	c.Set(ctxDecision, newID())
	ev := s.event(c, EventDecision)
	ev.Command, ev.Args, ev.Cmdline, ev.Env, ev.Cwd = req.Command, req.Args, req.Cmdline, req.Env, req.Cwd
	ev.Allowed = AuditBool(d.Allowed)
	ev.Reason, ev.Message = string(d.Reason), d.Message
	rule := d.Rule
	ev.Rule, ev.Trace, ev.Argv, ev.EnvKeys = &rule, d.Trace, d.Argv, d.EnvKeys
	if d.PolicyHash != "" {
		ev.PolicyHash = d.PolicyHash
	}
	return ev
}

func denied(d policy.Decision) error {
	msg := d.Message
	if msg == "" {
		msg = "the policy does not allow this request"
	}
	return errForbidden(string(d.Reason), msg, fmt.Errorf("denied: %s", d.Reason))
}

func (s *Server) handleCheck(c *gin.Context) error {
	req, _, d, ev, err := s.decide(c, true)
	if err != nil {
		return err
	}
	if err := s.recordDecision(c, ev, &d); err != nil {
		return err
	}
	resp := checkResponse{RequestID: requestID(c), Allowed: d.Allowed, Reason: string(d.Reason), Message: d.Message, PolicyHash: d.PolicyHash}
	if d.Allowed {
		resp.Command, resp.Argv, resp.EnvKeys, resp.Cwd = d.Command, d.Argv, d.EnvKeys, d.Cwd
		resp.Limits = limitsOf(d.Profile, req)
	}
	return writeAnswer(c, http.StatusOK, resp.appendJSON)
}

func limitsOf(prof *policy.Profile, req *execRequest) *limitsView {
	if prof == nil {
		return nil
	}
	t, out := effective(prof, req)
	return &limitsView{TimeoutMS: t.Milliseconds(), MaxOutputBytes: out, MemoryBytes: prof.MemoryBytes,
		Pids: prof.Pids, CPUQuota: prof.CPUQuota, Network: string(prof.Network), Profile: prof.Name}
}

// execResponse is the answer of POST /v1/exec.
type execResponse struct {
	RequestID       string `json:"request_id"`
	ExitCode        int    `json:"exit_code"`
	Signal          string `json:"signal"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutEncoding  string `json:"stdout_encoding,omitempty"`
	StderrEncoding  string `json:"stderr_encoding,omitempty"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	DurationMS      int64  `json:"duration_ms"`
	EndedBy         string `json:"ended_by"`
}

func (s *Server) handleExec(c *gin.Context) error {
	if s.draining.Load() {
		return httpErr(http.StatusServiceUnavailable, CodeDraining, "the gateway is draining; retry on another instance", ErrDraining)
	}
	req, stdin, d, dev, err := s.decide(c, false)
	if err != nil {
		return err
	}
	if !d.Allowed {
		if err := s.recordDecision(c, dev, &d); err != nil {
			return err
		}
		s.metrics.ExecDone(d.Command, OutcomeDenied, 0, 0, 0)
		return denied(d)
	}
	p, _ := principal(c)
	reqCtx := c.Request.Context()
	// The run's context is not the request's: the run outlives the handler
	// by its sandbox's teardown. run cancels it when the client leaves
	// while the command runs; /v1/sessions kill and shutdown cancel it too.
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqCtx))
	sess, err := s.sessions.acquire(reqCtx, requestID(c), p.Subject, d.Command, cancel)
	if err != nil {
		cancel()
		if rerr := s.recordDecision(c, dev, &d); rerr != nil {
			return rerr
		}
		s.metrics.Limited("sessions")
		return err
	}
	c.Set(ctxSession, sess.ID)
	return s.run(reqCtx, ctx, c, sess, runInput{req: req, stdin: stdin, d: &d, dev: dev})
}

// encodeOutput returns output as a string, base64 when it is not UTF-8.
func encodeOutput(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// capBuffer keeps at most max bytes (the sandbox enforces the cap; this
// only bounds the gateway's memory) and counts output for /v1/sessions.
type capBuffer struct {
	buf       bytes.Buffer
	max       int64
	truncated bool
	sess      *session
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.sess.out.Add(int64(len(p)))
	room := b.max - int64(b.buf.Len())
	if room <= 0 {
		b.truncated = b.truncated || len(p) > 0
		return len(p), nil
	}
	if int64(len(p)) > room {
		b.buf.Write(p[:room])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// startMsg is the JSON payload of a start frame.
type startMsg struct {
	ID             string      `json:"id"`
	Request        wireRequest `json:"request"`
	TimeoutNS      int64       `json:"timeout_ns,omitempty"`
	MaxOutputBytes int64       `json:"max_output_bytes,omitempty"`
	Stdin          bool        `json:"stdin,omitempty"` // the front will send stdin
}

// wireRequest is policy.Request on the wire, with its own stable names.
type wireRequest struct {
	Subject string            `json:"subject"`
	Roles   []string          `json:"roles,omitempty"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Cmdline string            `json:"cmdline,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	TTY     bool              `json:"tty,omitempty"`
	Trace   bool              `json:"trace,omitempty"`
}

func toWire(r policy.Request) wireRequest {
	return wireRequest{Subject: r.Subject, Roles: r.Roles, Command: r.Command, Args: r.Args,
		Cmdline: r.Cmdline, Env: r.Env, Cwd: r.Cwd, TTY: r.TTY, Trace: r.Trace}
}

func (w wireRequest) request() policy.Request {
	return policy.Request{Subject: w.Subject, Roles: w.Roles, Command: w.Command, Args: w.Args,
		Cmdline: w.Cmdline, Env: w.Env, Cwd: w.Cwd, TTY: w.TTY, Trace: w.Trace}
}

// resultMsg is the JSON payload of a result frame. The decision crosses
// without its environment (policy.Decision.Env is never encoded).
type resultMsg struct {
	Decision policy.Decision `json:"decision"`
	Result   sandbox.Result  `json:"result"`
	// Err is set when the sandbox returned an error after the job started
	// (the result may still be partly filled).
	Err *errorMsg `json:"error,omitempty"`
}

// errorMsg is the JSON payload of an error frame (and a result's error).
type errorMsg struct {
	Code     string           `json:"code"`
	Message  string           `json:"message"`
	Decision *policy.Decision `json:"decision,omitempty"` // with code "denied"
}

// decodeStrict decodes exactly one JSON value into v: unknown fields and
// trailing data are errors.
func decodeStrict(p []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// job turns a start message into a Job (streams are attached by the caller).
func (m *startMsg) job() (Job, error) {
	if m.TimeoutNS < 0 || m.MaxOutputBytes < 0 {
		return Job{}, &JobError{Field: "limits", Reason: "negative"}
	}
	return Job{ID: m.ID, Request: m.Request.request(), Timeout: time.Duration(m.TimeoutNS), MaxOutputBytes: m.MaxOutputBytes}, nil
}

// errMsgFor is the error message the executor sends for a failed Run.
func errMsgFor(err error) errorMsg {
	var de *DeniedError
	if errors.As(err, &de) {
		dec := de.Decision
		dec.Env = nil
		return errorMsg{Code: codeDenied, Message: dec.Message, Decision: &dec}
	}
	return errorMsg{Code: errorCode(err), Message: err.Error()}
}

// toError turns a received error message back into the error Run returns.
func (m *errorMsg) toError() error {
	if m.Code == codeDenied {
		if m.Decision == nil {
			return &DeniedError{Decision: policy.Decision{Reason: "denied", Message: m.Message}}
		}
		return &DeniedError{Decision: *m.Decision}
	}
	return &RemoteError{Code: m.Code, Message: m.Message}
}

// marshalCapped encodes v; if it exceeds MaxPayload it tries again with the
// decision's trace dropped (traces are the only unbounded part).
func marshalResult(m resultMsg) ([]byte, error) {
	p, err := json.Marshal(m)
	if err == nil && len(p) > MaxPayload {
		m.Decision.Trace = nil
		p, err = json.Marshal(m)
	}
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	if len(p) > MaxPayload {
		return nil, fmt.Errorf("encode result: %d bytes over the frame limit", len(p))
	}
	return p, nil
}

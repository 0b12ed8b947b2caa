package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// TestHostileStartMessages: a compromised front sends start messages that
// are well-formed JSON but lie or try to make the root executor hold
// memory; each must end as the listed error code (and reason for a
// denial), and nothing may run.
func TestHostileStartMessages(t *testing.T) {
	manyRoles := make([]string, 100000)
	for i := range manyRoles {
		manyRoles[i] = "viewer"
	}
	sleep := func(mod func(*startMsg)) startMsg {
		m := startMsg{ID: "hostile", Request: toWire(req("sleep", "30"))}
		mod(&m)
		return m
	}
	tests := []struct {
		name   string
		msg    startMsg
		code   string
		reason policy.ReasonCode
	}{
		{"100000 roles held for the job's life", sleep(func(m *startMsg) { m.Request.Roles = manyRoles }), codeBadJob, ""},
		{"a role of 100 KiB", sleep(func(m *startMsg) { m.Request.Roles = []string{"viewer", strings.Repeat("r", 100<<10)} }), codeBadJob, ""},
		{"job id with a slash", sleep(func(m *startMsg) { m.ID = "a/../../b" }), codeBadJob, ""},
		{"job id with a leading dash", sleep(func(m *startMsg) { m.ID = "-rf" }), codeBadJob, ""},
		{"job id of 65 characters", sleep(func(m *startMsg) { m.ID = strings.Repeat("a", 65) }), codeBadJob, ""},
		{"job id with a newline", sleep(func(m *startMsg) { m.ID = "a\nb" }), codeBadJob, ""},
		{"empty job id", sleep(func(m *startMsg) { m.ID = "" }), codeBadJob, ""},
		{"negative timeout", sleep(func(m *startMsg) { m.TimeoutNS = -1 }), codeBadJob, ""},
		{"negative output cap", sleep(func(m *startMsg) { m.MaxOutputBytes = -1 }), codeBadJob, ""},
		{"terminal for a profile without one", sleep(func(m *startMsg) { m.Request.TTY = true }), codeDenied, policy.ReasonTTYNotAllowed},
		{"working directory outside the roots", sleep(func(m *startMsg) { m.Request.Cwd = "/etc" }), codeDenied, policy.ReasonPathOutsideRoot},
		{"LD_PRELOAD in the environment", sleep(func(m *startMsg) { m.Request.Env = map[string]string{"LD_PRELOAD": "/work/x.so"} }), codeDenied, policy.ReasonEnvNotAllowed},
		{"command and cmdline both", sleep(func(m *startMsg) { m.Request.Cmdline = "sleep 1" }), codeDenied, policy.ReasonBadCmdline},
		{"shell in the cmdline stays literal", sleep(func(m *startMsg) {
			m.Request.Command, m.Request.Args, m.Request.Cmdline = "", nil, "sleep $(id)"
		}), codeDenied, policy.ReasonShellSyntax},
	}
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.handshake()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := uint64(i + 1)
			r.start(job, tt.msg)
			f, err := r.next()
			for err == nil && f.Type != frameError && f.Type != frameResult && f.Job == job {
				if f.Type == frameStarted {
					r.frame(frame{Type: frameSignal, Job: job, Payload: []byte{sigKILL}})
				}
				f, err = r.next()
			}
			if err != nil || f.Type != frameError || f.Job != job {
				t.Fatalf("got %v job %d (%v), want an error frame for job %d", f.Type, f.Job, err, job)
			}
			var m errorMsg
			if err := decodeStrict(f.Payload, &m); err != nil {
				t.Fatal(err)
			}
			if m.Code != tt.code || (tt.reason != "" && (m.Decision == nil || m.Decision.Reason != tt.reason)) {
				t.Errorf("got code %q (%s, decision %+v), want %q %s", m.Code, m.Message, m.Decision, tt.code, tt.reason)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.sb.running() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.sb.running(); n != 0 {
		t.Errorf("got %d processes running, want 0", n)
	}
}

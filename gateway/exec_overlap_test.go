package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// gatedTeardown is the real sandbox with a teardown that lasts until gate
// is closed: Run returns only then, after Spec.Finished was called.
type gatedTeardown struct {
	sb   executor.Sandbox
	gate chan struct{}
	runs sync.WaitGroup
}

func (g *gatedTeardown) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	g.runs.Add(1)
	defer g.runs.Done()
	res, err := g.sb.Run(ctx, spec)
	<-g.gate
	return res, err
}

// withRunner makes the server run jobs through a Local over sb.
func withRunner(sb executor.Sandbox, mutate func(*Config)) func(*Config, *Deps) {
	return func(cfg *Config, d *Deps) {
		l := executor.NewLocal(sb, nil, nil)
		d.Runner = l
		prev := d.OnPolicy
		d.OnPolicy = func(s *policy.Set) { prev(s); l.SetPolicy(s) }
		if mutate != nil {
			mutate(cfg)
		}
	}
}

// TestExecAnswerBeforeTeardown: the answer leaves once the command has
// ended, before its sandbox is torn down; the session holds its slot (and
// shutdown waits) until the teardown is over.
func TestExecAnswerBeforeTeardown(t *testing.T) {
	g := &gatedTeardown{sb: testSandbox(t), gate: make(chan struct{})}
	env := startServer(t, withRunner(g, func(cfg *Config) { cfg.Limits.MaxSessionsPerUser = 1 }))
	alice := env.token("alice", "admin")
	r := env.do("POST", "/v1/exec", alice, map[string]any{"command": "echo", "args": []string{"early"}})
	if r.status != 200 || r.json(t)["stdout"] != "early\n" {
		t.Fatalf("exec while the teardown is held: got %d %s, want 200 with the output", r.status, r.body)
	}
	if n := env.srv.sessions.count(); n != 1 {
		t.Errorf("sessions during the teardown: got %d, want 1 (the sandbox still exists)", n)
	}
	if got := env.do("GET", "/v1/sessions", alice, nil); got.status != 200 || !strings.Contains(string(got.body), `"state":"ending"`) {
		t.Errorf("/v1/sessions during the teardown: got %s, want the session with state ending", got.body)
	}
	// The next command of the same user (cap 1) waits for the teardown.
	next := make(chan response, 1)
	go func() {
		next <- env.do("POST", "/v1/exec", alice, map[string]any{"command": "echo", "args": []string{"next"}})
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case r := <-next:
		t.Fatalf("second exec during the first's teardown: got %d %s, want it to wait", r.status, r.body)
	default:
	}
	close(g.gate)
	if r := <-next; r.status != 200 || r.json(t)["stdout"] != "next\n" {
		t.Errorf("second exec after the teardown: got %d %s, want 200", r.status, r.body)
	}
	env.stop()
	if n := env.srv.sessions.count(); n != 0 {
		t.Errorf("sessions after shutdown: got %d, want 0", n)
	}
}

// TestExecTeardownHoldsSlot: a teardown that outlasts endingWait keeps
// the user's slot: 429 too_many_sessions, and nothing else changes.
func TestExecTeardownHoldsSlot(t *testing.T) {
	g := &gatedTeardown{sb: testSandbox(t), gate: make(chan struct{})}
	env := startServer(t, withRunner(g, func(cfg *Config) { cfg.Limits.MaxSessionsPerUser = 1 }))
	defer close(g.gate)
	tok := env.token("bob", "viewer")
	if r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "true"}); r.status != 200 {
		t.Fatalf("first exec: got %d %s, want 200", r.status, r.body)
	}
	r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "true"})
	if r.status != http.StatusTooManyRequests || r.errCode() != CodeTooManySessions {
		t.Errorf("exec behind an endless teardown: got %d %s, want 429 %s", r.status, r.body, CodeTooManySessions)
	}
	if other := env.do("POST", "/v1/exec", env.token("carol", "viewer"), map[string]any{"command": "true"}); other.status != 200 {
		t.Errorf("another user's exec: got %d %s, want 200", other.status, other.body)
	}
}

// TestExecClientGoneKillsRun: a client that leaves while its command runs
// kills it, and the exec_end line is still written.
func TestExecClientGoneKillsRun(t *testing.T) {
	env := startServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	body := strings.NewReader(`{"command":"sleep","args":["29"]}`)
	req, err := http.NewRequestWithContext(ctx, "POST", env.url+"/v1/exec", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.token("dave", "operator"))
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the run", func() bool { return len(leftoverSleeps("29")) >= 1 })
	cancel()
	<-done
	var end map[string]any
	waitFor(t, "the exec_end line", func() bool {
		for _, l := range env.auditLines() {
			if l["type"] == "exec_end" && l["command"] == "sleep" {
				end = l
			}
		}
		return end != nil
	})
	if end["ended_by"] != "killed" {
		t.Errorf("exec_end: got %v, want ended_by killed", end)
	}
	waitFor(t, "the session's end", func() bool { return env.srv.sessions.count() == 0 })
	if p := leftoverSleeps("29"); len(p) != 0 {
		t.Errorf("processes left behind: %v", p)
	}
}

// recordingRunner notes each Run's start and whether its context was
// cancelled by the time it returned.
type recordingRunner struct {
	executor.Runner
	mu        sync.Mutex
	started   int
	cancelled int
}

func (r *recordingRunner) Run(ctx context.Context, job executor.Job) (*policy.Decision, sandbox.Result, error) {
	r.mu.Lock()
	r.started++
	r.mu.Unlock()
	d, res, err := r.Runner.Run(ctx, job)
	r.mu.Lock()
	if ctx.Err() != nil {
		r.cancelled++
	}
	r.mu.Unlock()
	return d, res, err
}

// TestExecAuditSyncFailureKillsRun: the decision and exec_start lines are
// written, their fsync fails (a FIFO cannot be synced): the command that
// started meanwhile is killed and the answer is 503 audit_unavailable.
func TestExecAuditSyncFailureKillsRun(t *testing.T) {
	fifo := unsyncableFile(t)
	var aud *Auditor
	rec := &recordingRunner{}
	env := startServer(t, func(_ *Config, d *Deps) {
		var err error
		if aud, err = NewAuditor(AuditConfig{Path: fifo}); err != nil {
			t.Fatal(err)
		}
		d.Audit = aud
		rec.Runner = d.Runner
		d.Runner = rec
	})
	defer aud.Close()
	r := env.do("POST", "/v1/exec", env.token("erin", "operator"), map[string]any{"command": "sleep", "args": []string{"28"}})
	if r.status != 503 || r.errCode() != CodeAuditUnavailable {
		t.Errorf("exec with a failing fsync: got %d %s, want 503 %s", r.status, r.body, CodeAuditUnavailable)
	}
	rec.mu.Lock()
	started, cancelled := rec.started, rec.cancelled
	rec.mu.Unlock()
	if started != 1 || cancelled != 1 {
		t.Errorf("runs: got %d started, %d cancelled; want the one run started (lines written) and killed (sync failed)", started, cancelled)
	}
	if n := env.srv.sessions.count(); n != 0 {
		t.Errorf("sessions after the answer: got %d, want 0 (the killed run is torn down before the 503)", n)
	}
	if p := leftoverSleeps("28"); len(p) != 0 {
		t.Errorf("processes left behind: %v", p)
	}
}

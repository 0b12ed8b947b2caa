package executor

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// specRecorder runs specs through procSandbox and keeps the last one.
type specRecorder struct {
	*procSandbox
	mu   sync.Mutex
	last sandbox.Spec
	runs int
}

func (r *specRecorder) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	r.mu.Lock()
	r.last, r.runs = spec, r.runs+1
	r.mu.Unlock()
	return r.procSandbox.Run(ctx, spec)
}

func TestClampProfile(t *testing.T) {
	p := policy.Profile{Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20}
	tests := []struct {
		name        string
		timeout     time.Duration
		maxOut      int64
		wantTimeout time.Duration
		wantOut     int64
	}{
		{"zero means the profile's", 0, 0, 10 * time.Second, 1 << 20},
		{"less is allowed", time.Second, 100, time.Second, 100},
		{"more is clamped", time.Hour, 1 << 40, 10 * time.Second, 1 << 20},
		{"equal", 10 * time.Second, 1 << 20, 10 * time.Second, 1 << 20},
		{"negative never raises", -time.Second, -1, 10 * time.Second, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clampProfile(p, tt.timeout, tt.maxOut)
			if got.Timeout != tt.wantTimeout || got.MaxOutputBytes != tt.wantOut {
				t.Errorf("got %v/%d, want %v/%d", got.Timeout, got.MaxOutputBytes, tt.wantTimeout, tt.wantOut)
			}
		})
	}
}

func TestValidateJob(t *testing.T) {
	tests := []struct {
		name string
		job  Job
		ok   bool
	}{
		{"ok", Job{ID: "req-1_A"}, true},
		{"empty id", Job{}, false},
		{"path in id", Job{ID: "../x"}, false},
		{"leading dash", Job{ID: "-x"}, false},
		{"too long", Job{ID: string(bytes.Repeat([]byte("a"), 65))}, false},
		{"newline", Job{ID: "a\nb"}, false},
		{"negative timeout", Job{ID: "a", Timeout: -1}, false},
		{"negative output", Job{ID: "a", MaxOutputBytes: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateJob(tt.job)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadJob)) {
				t.Errorf("got %v, want ok=%v (ErrBadJob otherwise)", err, tt.ok)
			}
		})
	}
}

func TestLocalSpecComesFromDecision(t *testing.T) {
	rec := &specRecorder{procSandbox: newProcSandbox()}
	l := NewLocal(rec, loadPolicy(t), nil)
	r := req("echo", "hi")
	r.Env = map[string]string{"PATH": "/tmp/evil"} // not a client variable of the policy
	if _, _, err := l.Run(context.Background(), Job{ID: "spec", Request: r}); !errors.Is(err, ErrDenied) {
		t.Fatalf("client PATH: got %v, want denied", err)
	}
	_, _, err := l.Run(context.Background(), Job{ID: "spec", Request: req("echo", "hi"), Timeout: time.Hour, MaxOutputBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	s := rec.last
	if s.Argv[0] != "/usr/bin/echo" || s.Profile.Timeout != 20*time.Second || s.Profile.MaxOutputBytes != 10 || s.Subject != "alice" || s.ID != "spec" {
		t.Errorf("spec: got argv %v timeout %v max out %d subject %q id %q", s.Argv, s.Profile.Timeout, s.Profile.MaxOutputBytes, s.Subject, s.ID)
	}
	if len(s.Mounts) != 1 || !s.Mounts[0].Workspace {
		t.Errorf("mounts: got %+v, want the workspace", s.Mounts)
	}
}

func TestLocalDeniedNeverRuns(t *testing.T) {
	rec := &specRecorder{procSandbox: newProcSandbox()}
	l := NewLocal(rec, loadPolicy(t), nil)
	d, _, err := l.Run(context.Background(), Job{ID: "deny", Request: req("touch", "x")})
	var de *DeniedError
	if !errors.As(err, &de) || d == nil || d.Allowed || de.Decision.Reason != policy.ReasonRoleForbidden {
		t.Fatalf("got %v (decision %+v), want a role_forbidden *DeniedError", err, d)
	}
	if rec.runs != 0 {
		t.Errorf("sandbox runs: got %d, want 0", rec.runs)
	}
}

func TestLocalPolicySwap(t *testing.T) {
	l := NewLocal(newProcSandbox(), nil, nil)
	if _, _, err := l.Run(context.Background(), Job{ID: "a", Request: req("echo")}); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("without a policy: got %v, want ErrNoPolicy", err)
	}
	l.SetPolicy(loadPolicy(t))
	if _, _, err := l.Run(context.Background(), Job{ID: "a", Request: req("echo")}); err != nil {
		t.Fatalf("after SetPolicy: %v", err)
	}
}

func TestLocalDuplicateAndKill(t *testing.T) {
	sb := newProcSandbox()
	l := NewLocal(sb, loadPolicy(t), nil)
	done := make(chan sandbox.Result, 1)
	go func() {
		_, res, _ := l.Run(context.Background(), Job{ID: "dup", Request: req("sleep", "30")})
		done <- res
	}()
	for sb.running() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := l.Run(context.Background(), Job{ID: "dup", Request: req("echo")}); !errors.Is(err, ErrDuplicateJob) {
		t.Errorf("same id twice: got %v, want ErrDuplicateJob", err)
	}
	if err := l.Kill("other"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("Kill unknown: got %v, want ErrJobNotFound", err)
	}
	if got := l.List(); len(got) != 1 || got[0].ID != "dup" || got[0].Command != "sleep" {
		t.Errorf("List: got %+v", got)
	}
	if n := l.KillAll(); n != 1 {
		t.Errorf("KillAll: got %d, want 1", n)
	}
	if res := <-done; res.EndedBy != sandbox.EndedKilled {
		t.Errorf("ended by: got %q, want killed", res.EndedBy)
	}
}

func TestRemoteErrorSentinels(t *testing.T) {
	for code, want := range codeSentinels {
		if err := (&RemoteError{Code: code}); !errors.Is(err, want) {
			t.Errorf("code %s: errors.Is(%v) is false", code, want)
		}
	}
	if got := errorCode(&JobError{Field: "id"}); got != codeBadJob {
		t.Errorf("errorCode(JobError): got %q, want %q", got, codeBadJob)
	}
	if got := errorCode(&sandbox.DiskFullError{}); got != codeDiskFull {
		t.Errorf("errorCode(DiskFullError): got %q, want %q", got, codeDiskFull)
	}
	if got := errorCode(errors.New("boom")); got != codeInternal {
		t.Errorf("errorCode(other): got %q, want %q", got, codeInternal)
	}
}

package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// heldRunner is the real Runner with two witnesses: it records every call
// and outcome, and, while hold is open, keeps Run from returning after the
// run's result was delivered: the test's stand-in for a long teardown
// (the real container is already gone; the gateway cannot tell).
type heldRunner struct {
	inner    executor.Runner
	calls    atomic.Int32
	hold     chan struct{} // nil: no hold
	mu       sync.Mutex
	returned bool
	res      sandbox.Result
	err      error
}

func (h *heldRunner) Run(ctx context.Context, job executor.Job) (*policy.Decision, sandbox.Result, error) {
	h.calls.Add(1)
	d, res, err := h.inner.Run(ctx, job)
	if h.hold != nil {
		<-h.hold
	}
	h.mu.Lock()
	h.returned, h.res, h.err = true, res, err
	h.mu.Unlock()
	return d, res, err
}

func (h *heldRunner) outcome() (bool, sandbox.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.returned, h.res, h.err
}

// TestExecAuditOrderSyncedBeforeAnswer: decision, exec_start and exec_end
// are in the file in that order as soon as the answer arrives, and every
// line in the file was fsynced by then (the Auditor counts a line only
// after its fsync succeeded).
func TestExecAuditOrderSyncedBeforeAnswer(t *testing.T) {
	env := startServer(t, nil)
	for i := range 3 {
		r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "echo", "args": []string{"hi"}})
		lines, synced := env.auditLines(), env.audit.Stats().Lines
		if r.status != 200 {
			t.Fatalf("exec %d: got %d %s, want 200", i, r.status, r.body)
		}
		if int64(len(lines)) != synced {
			t.Errorf("exec %d: at the answer the file has %d lines and %d are synced, want all synced", i, len(lines), synced)
		}
		var types []string
		for _, l := range lines {
			if l["request_id"] == r.json(t)["request_id"] {
				types = append(types, l["type"].(string))
			}
		}
		if got := strings.Join(types, ","); got != "decision,exec_start,exec_end" {
			t.Errorf("exec %d: audit lines %s, want decision,exec_start,exec_end", i, got)
		}
	}
}

// TestExecUnwritableAuditNeverRuns: when decision+exec_start cannot be
// written (/dev/full: write(2) fails with ENOSPC), the answer is 503
// audit_unavailable and the Runner is never called.
func TestExecUnwritableAuditNeverRuns(t *testing.T) {
	var full *Auditor
	var hr *heldRunner
	env := startServer(t, func(_ *Config, d *Deps) {
		var err error
		if full, err = NewAuditor(AuditConfig{Path: "/dev/full", Logger: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		d.Audit = full
		hr = &heldRunner{inner: d.Runner}
		d.Runner = hr
	})
	defer full.Close()
	r := env.do("POST", "/v1/exec", env.token("alice", "operator"), map[string]any{"command": "sleep", "args": []string{"1"}})
	if r.status != 503 || r.errCode() != CodeAuditUnavailable {
		t.Errorf("got %d %s, want 503 audit_unavailable", r.status, r.body)
	}
	if n := hr.calls.Load(); n != 0 {
		t.Errorf("the Runner was called %d times, want 0: nothing runs unrecorded", n)
	}
}

// fifoAuditor opens an Auditor on a named pipe: write(2) succeeds (a
// reader drains it) and fsync(2) fails with EINVAL, as on a file system
// whose flush fails after the write was accepted. It returns what the
// reader received.
func fifoAuditor(t *testing.T) (*Auditor, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(int(rd.Fd()), false); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got strings.Builder
	done, stop := make(chan struct{}), make(chan struct{})
	go func() { // ends when the writer side is closed for good (rd closed)
		defer close(done)
		br := bufio.NewReader(rd)
		buf := make([]byte, 4096)
		for {
			n, err := br.Read(buf)
			mu.Lock()
			got.Write(buf[:n])
			mu.Unlock()
			if err != nil && err != io.EOF {
				return
			}
			if err == io.EOF {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(5 * time.Millisecond) // no writer right now: reopened later
			}
		}
	}()
	aud, err := NewAuditor(AuditConfig{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(stop); aud.Close(); rd.Close(); <-done })
	return aud, func() string { mu.Lock(); defer mu.Unlock(); return got.String() }
}

// TestExecAuditSyncFailureKillsRun: decision and exec_start are written
// (the reader receives them) but their fsync fails while the sandbox
// starts: the run is stopped (never started, or killed) and the answer is
// 503 audit_unavailable, never the command's result.
func TestExecAuditSyncFailureKillsRun(t *testing.T) {
	var aud *Auditor
	var received func() string
	var hr *heldRunner
	env := startServer(t, func(_ *Config, d *Deps) {
		aud, received = fifoAuditor(t)
		d.Audit = aud
		hr = &heldRunner{inner: d.Runner}
		d.Runner = hr
	})
	r := env.do("POST", "/v1/exec", env.token("alice", "operator"), map[string]any{"command": "sleep", "args": []string{"5"}})
	if r.status != 503 || r.errCode() != CodeAuditUnavailable {
		t.Fatalf("got %d %s, want 503 audit_unavailable", r.status, r.body)
	}
	returned, res, err := hr.outcome()
	switch {
	case hr.calls.Load() != 1:
		t.Errorf("the Runner was called %d times, want 1: the lines were written, only their fsync failed", hr.calls.Load())
	case !returned:
		t.Error("answered before the run ended")
	case err == nil && res.EndedBy != sandbox.EndedKilled:
		t.Errorf("run outcome %+v, want killed (or not started)", res)
	default:
		t.Logf("run outcome: %+v, error %v", res, err)
	}
	waitFor(t, "the decision and exec_start reached the file", func() bool {
		s := received()
		return strings.Contains(s, `"type":"decision"`) && strings.Contains(s, `"type":"exec_start"`)
	})
	if l := env.local.List(); len(l) != 0 {
		t.Errorf("still running after the answer: %v", l)
	}
}

// TestShutdownWaitsForTeardown: a shutdown that begins after the answer
// but during the teardown returns only once the teardown is done.
func TestShutdownWaitsForTeardown(t *testing.T) {
	var hr *heldRunner
	env := startServer(t, func(_ *Config, d *Deps) {
		hr = &heldRunner{inner: d.Runner, hold: make(chan struct{})}
		d.Runner = hr
	})
	if r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "true"}); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	var opened atomic.Bool
	go func() {
		time.Sleep(200 * time.Millisecond)
		opened.Store(true)
		close(hr.hold)
	}()
	env.stop()
	if returned, _, _ := hr.outcome(); !opened.Load() || !returned {
		t.Errorf("shutdown returned with the teardown pending (released %v, returned %v)", opened.Load(), returned)
	}
	if l := env.local.List(); len(l) != 0 {
		t.Errorf("after shutdown: still running %v", l)
	}
}

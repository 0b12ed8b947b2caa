package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// frontReloadExit is the exit code of the "reload" test front.
const frontReloadExit = 9

// frontReload is the "reload" test front: it asks for a policy reload,
// runs echo, asks for three more reloads and dies (exit 9) without
// closing its connection.
func frontReload(ctx context.Context, c *Client) int {
	if err := c.RequestReload(); err != nil {
		fmt.Fprintln(os.Stderr, "front reload:", err)
		return 6
	}
	var out bytes.Buffer
	_, res, err := c.Run(ctx, Job{ID: "front-reload", Request: req("echo", "during", "reload"), Stdout: &out})
	if err != nil {
		fmt.Fprintln(os.Stderr, "front run:", err)
		return 4
	}
	for range 3 {
		_ = c.RequestReload()
	}
	fmt.Printf("exit=%d out=%s", res.ExitCode, out.String())
	os.Exit(frontReloadExit)
	return 0
}

// fifoPolicy is a policy that comes through a FIFO: the reload's read of
// it blocks until a writer comes, as a read from a hung mount does. (The
// policy loader itself refuses a FIFO as a policy file, ErrNotRegular, so
// the reload reads the FIFO and hands the bytes to policy.LoadBytes.)
type fifoPolicy struct {
	path     string
	entered  chan struct{} // closed when the first load starts
	once     sync.Once
	loads    atomic.Int32               // loads started
	returned atomic.Int32               // loads returned
	last     atomic.Pointer[policy.Set] // the latest set a load read
}

func newFIFOPolicy(t *testing.T) *fifoPolicy {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return &fifoPolicy{path: p, entered: make(chan struct{})}
}

// reload is a SplitConfig.Reload: policy.Load on the FIFO, then SetPolicy.
func (f *fifoPolicy) reload(local *Local) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		f.loads.Add(1)
		f.once.Do(func() { close(f.entered) })
		data, err := os.ReadFile(f.path) // blocks until tryFeed writes
		var set *policy.Set
		if err == nil {
			set, err = policy.LoadBytes(f.path, data, policy.LoadOptions{})
		}
		f.returned.Add(1)
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		f.last.Store(set)
		local.SetPolicy(set)
		return nil
	}
}

// tryFeed ends one blocked load: it writes the fixture policy into the
// FIFO if a load has it open for reading (false when none has).
func (f *fifoPolicy) tryFeed() (bool, error) {
	w, err := os.OpenFile(f.path, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENXIO) {
		return false, nil // no reader
	}
	if err != nil {
		return false, fmt.Errorf("open FIFO for writing: %w", err)
	}
	defer w.Close()
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		return false, err
	}
	if _, err := w.Write(bytes.ReplaceAll(b, []byte("@DIR@"), []byte(filepath.Dir(f.path)))); err != nil {
		return false, fmt.Errorf("write FIFO: %w", err)
	}
	return true, nil
}

// feed ends one blocked load, waiting up to 10s for a load to open the
// FIFO.
func (f *fifoPolicy) feed(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ok, err := f.tryFeed()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no load opened the FIFO policy within 10s")
		}
	}
}

// waitFeeding waits for done, feeding every load that blocks meanwhile.
func waitFeeding[T any](f *fifoPolicy, done <-chan T) T {
	for {
		select {
		case v := <-done:
			return v
		case <-time.After(10 * time.Millisecond):
			_, _ = f.tryFeed()
		}
	}
}

// gatedSandbox holds every run until gate is closed.
type gatedSandbox struct {
	Sandbox
	gate <-chan struct{}
}

func (g gatedSandbox) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	select {
	case <-g.gate:
	case <-time.After(20 * time.Second):
		return sandbox.Result{}, fmt.Errorf("gated run %s: the reload never started", spec.ID)
	}
	return g.Sandbox.Run(ctx, spec)
}

// lockedBuffer is a log sink that outlives the test's t.Log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSplitServesWhileReloadBlocked: while the executor's policy reload
// is blocked (its policy comes through a FIFO nobody writes, so its read
// blocks as on a hung mount), the split still serves a run
// of the front through the real sandbox and notices the front's death:
// Split returns the front's exit code with the reload still blocked.
// Feeding the FIFO afterwards ends the reload, which is logged.
func TestSplitServesWhileReloadBlocked(t *testing.T) {
	m := newRealSandbox(t)
	fifo := newFIFOPolicy(t)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	local := NewLocal(gatedSandbox{Sandbox: m, gate: fifo.entered}, loadPolicy(t), log)
	code, out, err := splitWithReload(t, local, fifo, log)
	blocked := fifo.returned.Load() == 0
	fifo.feed(t)
	if !blocked {
		t.Errorf("reload returned before Split did, want it blocked on the FIFO:\n%s", logs.String())
	}
	if code != frontReloadExit {
		t.Errorf("Split: got code %d (error %v), want the front's %d", code, err, frontReloadExit)
	}
	if want := "exit=0 out=during reload\n"; out != want {
		t.Errorf("front output: got %q, want %q", out, want)
	}
	waitFor(t, `the "executor policy reloaded" log line after the FIFO was fed`, func() bool {
		return strings.Contains(logs.String(), "executor policy reloaded")
	})
	if n := fifo.loads.Load(); n != 1 {
		t.Errorf("got %d loads, want 1 (requests pending at shutdown are dropped)", n)
	}
	if !strings.Contains(logs.String(), "executor policy reload still running at shutdown") {
		t.Errorf("no log line about the reload left running at shutdown:\n%s", logs.String())
	}
}

// splitWithReload runs Split with the "reload" test front and fifo's
// reload, and returns its code, the front's output and its error. A Split
// that does not return within 20s fails t (after feeding every blocked
// load, so that it ends).
func splitWithReload(t *testing.T, local *Local, fifo *fifoPolicy, log *slog.Logger) (int, string, error) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "front-out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Split(context.Background(), SplitConfig{Local: local, AllowNobody: true, Args: []string{"reload"},
			Stdout: out, Stderr: out, Log: log, ShutdownGrace: time.Second, Reload: fifo.reload(local)})
		done <- result{code, err}
	}()
	select {
	case res := <-done:
		return res.code, readFile(t, out.Name()), res.err
	case <-time.After(20 * time.Second):
		waitFeeding(fifo, done)
		t.Fatalf("Split did not return within 20s while the reload was blocked (front output %q)", readFile(t, out.Name()))
		return 0, "", nil
	}
}

// TestReloaderCoalesces: requests made while a reload is blocked (the
// real loader on a FIFO) coalesce into one more reload after it, which
// installs the policy it read; stop then ends the goroutine.
func TestReloaderCoalesces(t *testing.T) {
	fifo := newFIFOPolicy(t)
	local := NewLocal(newProcSandbox(), loadPolicy(t), testLog(t))
	r := startReloader(context.Background(), fifo.reload(local), testLog(t))
	stopped := false
	defer func() {
		if !stopped { // a failed test: end the goroutine and a blocked load
			r.cancel()
			waitFeeding(fifo, r.done)
		}
	}()
	r.request()
	waitFor(t, "the first load to start", func() bool { return fifo.loads.Load() == 1 })
	for range 3 {
		r.request()
	}
	fifo.feed(t)
	waitFor(t, "the second load to start", func() bool { return fifo.loads.Load() == 2 })
	if n := len(r.reqs); n != 0 {
		t.Errorf("got %d pending requests once the second load started, want 0 (the three coalesced into it)", n)
	}
	fifo.feed(t)
	waitFor(t, "the second load to return", func() bool { return fifo.returned.Load() == 2 })
	stopped = r.stop(10 * time.Second)
	if !stopped {
		t.Fatal("reloader goroutine did not end within 10s of stop")
	}
	if n := fifo.loads.Load(); n != 2 {
		t.Errorf("got %d loads, want 2 (one, then one for the three requests made meanwhile)", n)
	}
	if last := fifo.last.Load(); last == nil || local.Policy() != Policy(last) {
		t.Errorf("installed policy: got %p, want the set the second load read from the FIFO (%p)", local.Policy(), last)
	}
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

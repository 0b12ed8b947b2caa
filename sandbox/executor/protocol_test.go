package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

func TestClientEcho(t *testing.T) {
	c := newHarness(t, me()).client(t)
	var out, errb bytes.Buffer
	var started *policy.Decision
	d, res, err := c.Run(context.Background(), Job{ID: "echo-1", Request: req("echo", "hello", "world"), Stdout: &out, Stderr: &errb,
		Started: func(d *policy.Decision) { started = d }})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if started == nil || !started.Allowed || started.Command != "echo" || len(started.Env) != 0 {
		t.Errorf("Started: got %+v, want the allowed echo decision without environment values", started)
	}
	if got, want := out.String(), "hello world\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}
	if res.ExitCode != 0 || res.EndedBy != sandbox.EndedExit {
		t.Errorf("result: got exit %d ended by %q, want 0 and exit", res.ExitCode, res.EndedBy)
	}
	if !d.Allowed || d.Command != "echo" || d.Profile == nil || d.Profile.Name != "standard" {
		t.Errorf("decision: got %+v, want allowed echo with profile standard", d)
	}
	if len(d.Env) != 0 || len(d.EnvKeys) == 0 {
		t.Errorf("decision env: got Env %v EnvKeys %v, want no values and the key names", d.Env, d.EnvKeys)
	}
}

func TestClientStdinToCat(t *testing.T) {
	c := newHarness(t, me()).client(t)
	in := make([]byte, 3<<20) // many windows' worth in both directions
	if _, err := rand.Read(in); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, res, err := c.Run(context.Background(), Job{ID: "cat-1", Request: req("cat"), Stdin: bytes.NewReader(in), Stdout: &out})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("stdout: got %d bytes, want the %d bytes of stdin back", out.Len(), len(in))
	}
	if res.ExitCode != 0 {
		t.Errorf("exit: got %d, want 0", res.ExitCode)
	}
}

func TestClientDenied(t *testing.T) {
	c := newHarness(t, me()).client(t)
	tests := []struct {
		name string
		req  policy.Request
		want policy.ReasonCode
	}{
		{"role", req("touch", "x"), policy.ReasonRoleForbidden},
		{"unknown command", req("rm", "-rf", "/"), policy.ReasonUnknownCommand},
		{"bad subject", policy.Request{Subject: "../root", Roles: viewer, Command: "echo"}, policy.ReasonBadSubject},
		{"bad argument", req("sleep", "9999"), policy.ReasonBadArgument},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, err := c.Run(context.Background(), Job{ID: fmt.Sprintf("deny-%d", i), Request: tt.req})
			var de *DeniedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
				t.Fatalf("got %v, want a *DeniedError", err)
			}
			if de.Decision.Reason != tt.want || d == nil || d.Reason != tt.want {
				t.Errorf("reason: got %q (decision %v), want %q", de.Decision.Reason, d, tt.want)
			}
		})
	}
}

func TestClientInterleavedJobs(t *testing.T) {
	c := newHarness(t, me()).client(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := strings.Repeat(fmt.Sprintf("job %d\n", i), 20000) // > one window
			var out bytes.Buffer
			job := Job{ID: fmt.Sprintf("mux-%d", i), Request: req("cat"), Stdin: strings.NewReader(want), Stdout: &out}
			if i%2 == 1 {
				want = fmt.Sprintf("echo %d\n", i)
				job = Job{ID: fmt.Sprintf("mux-%d", i), Request: req("echo", "echo", fmt.Sprint(i)), Stdout: &out}
			}
			if _, _, err := c.Run(context.Background(), job); err != nil {
				errs <- fmt.Errorf("job %d: %w", i, err)
				return
			}
			if out.String() != want {
				errs <- fmt.Errorf("job %d: got %d bytes, want %d", i, out.Len(), len(want))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// stallWriter accepts its first write and then blocks until released.
type stallWriter struct {
	once    sync.Once
	stalled chan struct{}
	release chan struct{}
}

func newStallWriter() *stallWriter {
	return &stallWriter{stalled: make(chan struct{}), release: make(chan struct{})}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.stalled) })
	<-w.release
	return len(p), nil
}

// waitStable polls f until it returns the same value for a while.
func waitStable(t *testing.T, f func() int64) int64 {
	t.Helper()
	last, same := int64(-1), 0
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v := f()
		if v == last {
			if same++; same >= 8 {
				return v
			}
			continue
		}
		last, same = v, 0
	}
	t.Fatalf("value never settled (last %d)", last)
	return 0
}

func TestBackpressureOutput(t *testing.T) {
	h := newHarness(t, me())
	c := h.client(t)
	w := newStallWriter()
	done := make(chan error, 1)
	var res sandbox.Result
	go func() {
		var err error
		_, res, err = c.Run(context.Background(), Job{ID: "flood", Request: req("yes"), Stdout: w})
		done <- err
	}()
	<-w.stalled
	sent := waitStable(t, func() int64 {
		for _, j := range h.local.List() {
			return j.Bytes
		}
		return -1
	})
	// What left the executor: the client's window, plus the chunk the
	// client's writer holds. `yes` is blocked on its pipe beyond that.
	if limit := int64(DefaultOutputWindow + MaxData); sent > limit || sent <= 0 {
		t.Errorf("bytes sent while the reader is stalled: got %d, want 1..%d", sent, limit)
	}
	if err := c.Kill("flood"); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.EndedBy != sandbox.EndedKilled {
		t.Errorf("ended by: got %q, want killed", res.EndedBy)
	}
}

// countingZeros is an endless stdin that counts what was read.
type countingZeros struct {
	mu   sync.Mutex
	n    int64
	stop chan struct{}
}

func (z *countingZeros) Read(p []byte) (int, error) {
	select {
	case <-z.stop:
		return 0, io.EOF
	default:
	}
	z.mu.Lock()
	z.n += int64(len(p))
	z.mu.Unlock()
	return len(p), nil
}

func (z *countingZeros) count() int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.n
}

func TestBackpressureStdin(t *testing.T) {
	c := newHarness(t, me()).client(t)
	z := &countingZeros{stop: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Run(ctx, Job{ID: "nostdin", Request: req("sleep", "30"), Stdin: z})
		done <- err
	}()
	read := waitStable(t, z.count)
	// sleep never reads: the executor's window, the pipe and one copy
	// buffer is all that may leave the front.
	if limit := int64(DefaultStdinWindow + 64<<10 + 32<<10 + MaxData); read > limit {
		t.Errorf("stdin read while the command does not read: got %d, want at most %d", read, limit)
	}
	cancel()
	close(z.stop)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestKillListAndCancel(t *testing.T) {
	h := newHarness(t, me())
	c := h.client(t)
	type outcome struct {
		res sandbox.Result
		err error
	}
	start := func(ctx context.Context, id string) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			_, res, err := c.Run(ctx, Job{ID: id, Request: req("sleep", "30")})
			ch <- outcome{res, err}
		}()
		return ch
	}
	waitRunning := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); h.sb.running() != n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("got %d running, want %d", h.sb.running(), n)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, b := start(context.Background(), "sleep-a"), start(ctx, "sleep-b")
	waitRunning(2)
	if got := c.List(); len(got) != 2 || got[0].Command != "sleep" || got[0].Subject != "alice" {
		t.Errorf("client List: got %+v, want two sleep jobs of alice", got)
	}
	if got := h.local.List(); len(got) != 2 {
		t.Errorf("executor List: got %d jobs, want 2", len(got))
	}
	if err := c.Kill("nope"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("Kill unknown: got %v, want ErrJobNotFound", err)
	}
	if err := c.Kill("sleep-a"); err != nil {
		t.Fatal(err)
	}
	cancel()
	for name, ch := range map[string]chan outcome{"kill": a, "cancel": b} {
		o := <-ch
		if o.err != nil || o.res.EndedBy != sandbox.EndedKilled {
			t.Errorf("%s: got %q, %v; want killed", name, o.res.EndedBy, o.err)
		}
	}
	waitRunning(0)
}

func TestSignalTerm(t *testing.T) {
	c := newHarness(t, me()).client(t)
	sigs := make(chan syscall.Signal, 1)
	done := make(chan sandbox.Result, 1)
	go func() {
		_, res, err := c.Run(context.Background(), Job{ID: "term", Request: req("sleep", "30"), Signal: sigs})
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- res
	}()
	time.Sleep(200 * time.Millisecond) // let it start; a signal before the start is harmless
	sigs <- syscall.SIGTERM
	select {
	case res := <-done:
		if res.Signal != "SIGTERM" {
			t.Errorf("got signal %q ended by %q, want SIGTERM", res.Signal, res.EndedBy)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not end the job")
	}
}

func TestClientCloseKillsJobs(t *testing.T) {
	h := newHarness(t, me())
	c := h.client(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Run(context.Background(), Job{ID: "orphan", Request: req("sleep", "30")})
		done <- err
	}()
	for h.sb.running() != 1 {
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}
	if err := h.waitServed(t); err != nil {
		t.Errorf("ServeConn: got %v, want nil on a closed connection", err)
	}
	if n := h.sb.running(); n != 0 {
		t.Errorf("got %d jobs running after the front closed, want 0", n)
	}
	if _, _, err := c.Run(context.Background(), Job{ID: "late", Request: req("echo")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run on a closed client: got %v, want ErrClosed", err)
	}
}

func TestTooManyJobs(t *testing.T) {
	h := newHarness(t, me(), func(c *ServerConfig) { c.MaxJobs = 1 })
	c := h.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = c.Run(ctx, Job{ID: "first", Request: req("sleep", "30")})
	}()
	for h.sb.running() != 1 {
		time.Sleep(10 * time.Millisecond)
	}
	_, _, err := c.Run(context.Background(), Job{ID: "second", Request: req("echo")})
	if !errors.Is(err, ErrTooManyJobs) {
		t.Errorf("got %v, want ErrTooManyJobs", err)
	}
	cancel()
	<-done
}

func TestReloadRequest(t *testing.T) {
	reloads := make(chan struct{}, 1)
	c := newHarness(t, me(), func(c *ServerConfig) { c.ReloadRequests = reloads }).client(t)
	if err := c.RequestReload(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloads:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload request arrived")
	}
}

func TestResizeReachesSandbox(t *testing.T) {
	rec := &specRecorder{procSandbox: newProcSandbox()}
	h := newHarnessWith(t, rec, me())
	c := h.client(t)
	resize := make(chan sandbox.WindowSize, 1)
	stdin, closeStdin := io.Pipe()
	done := make(chan error, 1)
	r := req("cattty")
	r.TTY = true
	go func() {
		_, _, err := c.Run(context.Background(), Job{ID: "tty", Request: r, Stdin: stdin, Resize: resize})
		done <- err
	}()
	for rec.procSandbox.running() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	rec.mu.Lock()
	spec := rec.last
	rec.mu.Unlock()
	if !spec.TTY || spec.Resize == nil {
		t.Fatalf("spec: got TTY %v resize %v, want a TTY with a resize channel", spec.TTY, spec.Resize)
	}
	resize <- sandbox.WindowSize{Rows: 24, Cols: 80}
	select {
	case ws := <-spec.Resize:
		if ws.Rows != 24 || ws.Cols != 80 {
			t.Errorf("got %dx%d, want 24x80", ws.Rows, ws.Cols)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the resize never reached the sandbox")
	}
	_ = closeStdin.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestExecutorGoneEndsClient(t *testing.T) {
	h := newHarness(t, me())
	c := h.client(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Run(context.Background(), Job{ID: "gone", Request: req("sleep", "30")})
		done <- err
	}()
	for h.sb.running() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	h.cancel() // the executor goes away
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Client.Done not closed after the executor went away")
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Run: got %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err: got %v, want ErrClosed", c.Err())
	}
	_ = h.waitServed(t)
	if n := h.sb.running(); n != 0 {
		t.Errorf("got %d jobs running after the executor went away, want 0", n)
	}
}

package executor

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

func TestMain(m *testing.M) {
	if IsFront() { // Split re-executes the test binary as the front
		os.Exit(testFrontMain())
	}
	if os.Getenv(testExecutorEnv) != "" { // TestExecutorDeathKillsFront's executor
		os.Exit(testExecutorMain())
	}
	goleak.VerifyTestMain(m)
}

var viewer = []string{"viewer"}

// loadPolicy loads testdata/policy.yaml with its workspace under a
// temporary directory.
func loadPolicy(t testing.TB) *policy.Set {
	t.Helper()
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	set, err := policy.LoadBytes("policy.yaml", []byte(strings.ReplaceAll(string(b), "@DIR@", dir)), policy.LoadOptions{})
	if err != nil {
		t.Fatalf("load fixture policy: %v", err)
	}
	return set
}

// procSandbox runs a Spec as a plain child process: real processes and real
// pipes (so backpressure reaches a real command) without the container.
// The protocol tests use it so they do not depend on container start-up;
// e2e_test.go runs the same paths through the real sandbox.
type procSandbox struct {
	mu   sync.Mutex
	pgid map[string]int
	// teardown, when set, is how long Run takes after calling
	// Spec.Finished (a container's teardown).
	teardown time.Duration
}

func newProcSandbox() *procSandbox { return &procSandbox{pgid: map[string]int{}} }

func (p *procSandbox) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	cmd := exec.CommandContext(ctx, spec.Argv[0], spec.Argv[1:]...)
	cmd.Env = spec.Env
	if spec.Stdin != nil {
		cmd.Stdin = spec.Stdin
	}
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sandbox.Result{}, err
	}
	p.mu.Lock()
	p.pgid[spec.ID] = cmd.Process.Pid
	p.mu.Unlock()
	err := cmd.Wait()
	p.mu.Lock()
	delete(p.pgid, spec.ID)
	p.mu.Unlock()
	res := sandbox.Result{Duration: time.Since(start), EndedBy: sandbox.EndedExit, ExitCode: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = unix.SignalName(ws.Signal())
	}
	if ctx.Err() != nil {
		res.EndedBy = sandbox.EndedKilled
	} else if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		return res, err
	}
	if spec.Finished != nil {
		spec.Finished(res)
	}
	time.Sleep(p.teardown)
	return res, nil
}

// Signal makes procSandbox a signaler.
func (p *procSandbox) Signal(id string, sig syscall.Signal) error {
	p.mu.Lock()
	pg, ok := p.pgid[id]
	p.mu.Unlock()
	if !ok {
		return ErrJobNotFound
	}
	return syscall.Kill(-pg, sig)
}

func (p *procSandbox) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pgid)
}

// socketPair returns two connected unix stream sockets; a has SO_PASSCRED.
func socketPair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b = conv(fds[0]), conv(fds[1])
	if err := enablePassCred(a); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// harness is a Server on one end of a socket pair.
type harness struct {
	local  *Local
	sb     *procSandbox
	server *Server
	conn   *net.UnixConn // the front's end
	served chan error
	cancel context.CancelFunc
}

// me is the Peer of this very process.
func me() Peer { return Peer{UID: os.Getuid(), PID: os.Getpid()} }

// newHarness starts a Server (procSandbox, fixture policy) serving one end
// of a socket pair; the other end is h.conn. Cleanup stops it.
func newHarness(t *testing.T, peer Peer, opts ...func(*ServerConfig)) *harness {
	t.Helper()
	sb := newProcSandbox()
	h := newHarnessWith(t, sb, peer, opts...)
	h.sb = sb
	return h
}

// newHarnessWith is newHarness with any Sandbox (the real one in e2e).
func newHarnessWith(t *testing.T, sb Sandbox, peer Peer, opts ...func(*ServerConfig)) *harness {
	t.Helper()
	h := &harness{local: NewLocal(sb, loadPolicy(t), testLog(t)), served: make(chan error, 1)}
	cfg := ServerConfig{Local: h.local, Peer: peer, Log: testLog(t)}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.server = srv
	srvEnd, frontEnd := socketPair(t)
	h.conn = frontEnd
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.served <- srv.ServeConn(ctx, srvEnd) }()
	t.Cleanup(func() {
		cancel()
		_ = frontEnd.Close()
		select {
		case <-h.served:
		case <-time.After(10 * time.Second):
			t.Error("ServeConn did not return")
		}
	})
	return h
}

// client connects a Client to the harness.
func (h *harness) client(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(context.Background(), h.conn, testLog(t))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitServed waits for ServeConn to return and gives its error.
func (h *harness) waitServed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.served:
		h.served <- err // for Cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return")
		return nil
	}
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func req(command string, args ...string) policy.Request {
	return policy.Request{Subject: "alice", Roles: viewer, Command: command, Args: args}
}

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/execgate/execgate/policy"
)

func TestSelfcheck(t *testing.T) {
	needSandbox(t)
	cfg := testConfig(t)
	checks, err := Selfcheck(cfg)
	if err != nil {
		t.Fatalf("Selfcheck on this host: %v", err)
	}
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
	}
	for _, want := range []string{"root", "namespace net", "seccomp support built in", "binary location", "overlayfs", "pid 1 binary", "pid 1 self-test"} {
		if !names[want] {
			t.Errorf("check %q missing from %v", want, names)
		}
	}
	// A state root inside the binary's directory is refused by name (trap 3).
	self, _ := os.Executable()
	bad := cfg
	bad.StateRoot = filepath.Join(filepath.Dir(self), "state")
	_, err = Selfcheck(bad)
	var se *SelfcheckError
	if !errors.As(err, &se) || se.Check != "binary location" || !errors.Is(err, ErrSelfcheck) {
		t.Errorf("state root under the binary: got %v, want a SelfcheckError naming the binary location", err)
	}
	if _, err := New(context.Background(), bad, testLogger(t)); !errors.Is(err, ErrSelfcheck) {
		t.Errorf("New with a bad binary location: got %v, want ErrSelfcheck", err)
	}
}

func TestLockContention(t *testing.T) {
	m := newTestManager(t)
	cfg := m.cfg
	cfg.CgroupParent += "-other"
	_, err := New(context.Background(), cfg, testLogger(t))
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Manager on the same state root: got %v, want ErrLocked", err)
	}
	// The first Manager still works: nothing of it was swept.
	if got := runSpec(t, m, Spec{Argv: []string{"/bin/true"}}); got.ExitCode != 0 {
		t.Errorf("first Manager after the refused second one: exit %d", got.ExitCode)
	}
}

// TestSweep plants what a crashed process leaves (a live process in the
// instance's cgroups, a container state directory, a mount under the state
// root, an old skeleton) and checks that New removes all of it.
func TestSweep(t *testing.T) {
	needSandbox(t)
	cfg := testConfig(t)
	full, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// A sleeping process in a leftover cgroup of every hierarchy.
	sleeper := exec.Command("/bin/sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, mnt := range mounts {
		// Not created by this package: must survive the sweep.
		if err := os.MkdirAll(filepath.Join(mnt, full.CgroupParent, "foreign"), 0o755); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(mnt, full.CgroupParent, "eg-crashed-1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(mnt, "/memory") || strings.HasSuffix(mnt, "/pids") {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	state := filepath.Join(full.containersDir(), "eg-crashed-1")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(full.rootfsDir(), "tmp")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("/usr/bin/mount", "-t", "tmpfs", "leftover", mnt).Run(); err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	m, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New over leftovers: %v", err)
	}
	// Each removal is logged, naming what was removed.
	for _, want := range []string{
		`msg="sweep: removed leftover container" container=eg-crashed-1`,
		`msg="sweep: removed leftover cgroup" path=` + filepath.Join(mounts[0], full.CgroupParent, "eg-crashed-1"),
		`msg="sweep: unmounted leftover mount" path=` + mnt,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("sweep log: no line with %q in:\n%s", want, logs.String())
		}
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		sleeper.Process.Kill()
		t.Error("the process in the leftover cgroup survived the sweep")
		<-waited
	}
	for _, left := range runLeftovers(m) {
		if !strings.HasSuffix(left, "/foreign") {
			t.Errorf("after the sweep: %v", left)
		}
	}
	for _, hier := range mounts {
		foreign := filepath.Join(hier, full.CgroupParent, "foreign")
		if _, err := os.Stat(foreign); err != nil {
			t.Errorf("sweep removed a cgroup it did not create: %s", foreign)
		}
		_ = os.Remove(foreign)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), mnt) {
		t.Errorf("mount %s survived the sweep", mnt)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if left := leftoversOf(m.cfg); len(left) > 0 {
		t.Errorf("after Close: %v", left)
	}
	removeCgroupParents(m.cfg.CgroupParent)
}

func TestCloseRefusesRuns(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	needSandbox(t)
	m, err := New(context.Background(), testConfig(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	removeCgroupParents(m.cfg.CgroupParent)
	if _, err := m.Run(context.Background(), Spec{Argv: []string{"/bin/true"}, Profile: testProfile()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNoGoroutineLeak runs a few kinds of run and checks that no goroutine
// outlives the Manager.
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	needSandbox(t)
	m, err := New(context.Background(), testConfig(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p := testProfile()
	p.Timeout, p.KillGrace, p.MaxOutputBytes = 300*time.Millisecond, 50*time.Millisecond, 100
	for _, argv := range [][]string{{"/bin/true"}, {"/bin/sleep", "10"}, {"/usr/bin/yes"}} {
		if _, err := m.Run(context.Background(), Spec{Argv: argv, Profile: p, Stdin: strings.NewReader("x")}); err != nil {
			t.Errorf("%v: %v", argv, err)
		}
	}
	// A run with a workspace starts the disk watcher's goroutine.
	ws := policy.Mount{Source: filepath.Join(t.TempDir(), "ws"), Target: "/work", Workspace: true}
	if _, err := m.Run(context.Background(), Spec{Argv: []string{"/bin/true"}, Mounts: []policy.Mount{ws}, Profile: p}); err != nil {
		t.Errorf("run with a workspace: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	removeCgroupParents(m.cfg.CgroupParent)
}

func TestIsTransientStart(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{syscall.EPIPE, true},
		{fmt.Errorf("run init: %w", &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}), true},
		{errors.New("unable to start container process: read init-p: got 0 of 4 bytes"), true},
		{errors.New("write sync: broken pipe"), true},
		{errors.New("exec: \"/nope\": stat /nope: no such file or directory"), false},
		{errors.New("permission denied"), false},
	}
	for _, tt := range tests {
		if got := isTransientStart(tt.err); got != tt.want {
			t.Errorf("%v: got %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestForeignStateRootRefused(t *testing.T) {
	needSandbox(t)
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(cfg.StateRoot, "precious.db")
	if err := os.WriteFile(foreign, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "precious.db") {
		t.Errorf("got %v, want a refusal naming the foreign file", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("foreign file touched: %v", err)
	}
}

// TestCgroupParentLock: a second instance with its own state root but the
// same cgroup parent is refused, so its sweep can never kill the first
// one's running containers.
func TestCgroupParentLock(t *testing.T) {
	m := newTestManager(t)
	other := testConfig(t)
	other.CgroupParent = m.cfg.CgroupParent
	done := make(chan runOut, 1)
	go func() {
		p := testProfile()
		p.Timeout = 5 * time.Second
		res, err := m.Run(context.Background(), Spec{Argv: []string{"/bin/sleep", "1"}, Profile: p})
		if err != nil {
			t.Error(err)
		}
		done <- runOut{Result: res}
	}()
	time.Sleep(300 * time.Millisecond) // the sleep is running
	_, err := New(context.Background(), other, testLogger(t))
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(le.What, "cgroup parent") {
		t.Errorf("second instance on the same cgroup parent: got %v, want a LockedError naming the cgroup parent", err)
	}
	if got := <-done; got.ExitCode != 0 || got.EndedBy != EndedExit {
		t.Errorf("the first instance's run was disturbed: %+v", got.Result)
	}
}

func TestSignal(t *testing.T) {
	m := newTestManager(t)
	p := testProfile()
	p.Timeout = 10 * time.Second
	done := make(chan Result, 1)
	out := newReadyWriter("ready\n")
	go func() {
		res, err := m.Run(context.Background(), Spec{ID: "sig-1", Argv: []string{"/bin/sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done"}, Profile: p, Stdout: out})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// The trap is set once "ready" is out (before it, TERM would end the
	// shell: it is not the namespace's init, package pid1).
	out.waitReady(t)
	if err := m.Signal("sig-1", syscall.SIGTERM); err != nil {
		t.Errorf("Signal: %v", err)
	}
	got := <-done
	if got.ExitCode != 5 || out.String() != "ready\ngot-term\n" || got.EndedBy != EndedExit {
		t.Errorf("got exit %d stdout %q ended %q, want 5, got-term, exit", got.ExitCode, out.String(), got.EndedBy)
	}
	if err := m.Signal("sig-1", syscall.SIGTERM); !errors.Is(err, ErrNoRun) {
		t.Errorf("signal after the run: got %v, want ErrNoRun", err)
	}
	if err := m.Signal("sig-1", syscall.SIGSTOP); !errors.Is(err, ErrSignal) {
		t.Errorf("SIGSTOP: got %v, want ErrSignal", err)
	}
}

// syncLog is a log destination safe for the Manager's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

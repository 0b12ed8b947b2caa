package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// mountTestTmpfs mounts a tmpfs of size bytes on a new temp dir (root,
// 0755), unmounted when the test ends.
func mountTestTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// writerProfile has no workspace size limit and a file size limit above
// anything the tests' file systems can hold.
func writerProfile() policy.Profile {
	p := testProfile()
	p.Timeout, p.FileSizeBytes = 30*time.Second, 1<<30
	return p
}

// TestDiskWatchKillsWriter: a run whose workspace (a real 16 MiB tmpfs, also
// a reserve dir, standing for the audit log's file system) has no size
// limit writes in a loop; once the file system is below MinFreeBytes the
// disk watcher kills it with EndedDiskFull, well before its timeout. A
// concurrent run whose workspace is on another file system is not killed,
// and new runs on the full one are refused by the start check.
func TestDiskWatchKillsWriter(t *testing.T) {
	needSandbox(t)
	const minFree = 4 << 20
	disk := mountTestTmpfs(t, 16<<20)
	m := newTestManagerWith(t, func(c *Config) {
		c.MinFreeBytes = minFree
		c.ReserveDirs = []string{disk}
	})
	ws := policy.Mount{Source: filepath.Join(disk, "alice"), Target: "/work", Workspace: true}
	other := policy.Mount{Source: filepath.Join(t.TempDir(), "bob"), Target: "/work", Workspace: true}
	bystander := runAsync(m, Spec{ID: "bob", Argv: []string{"/bin/sh", "-c", "sleep 2; echo done"}, Mounts: []policy.Mount{other}, Profile: writerProfile()})
	t0 := time.Now()
	out := <-runAsync(m, Spec{ID: "alice", Argv: []string{"/bin/sh", "-c", "while :; do head -c 65536 /dev/zero >> /work/f; done"},
		Mounts: []policy.Mount{ws}, Profile: writerProfile()})
	took := time.Since(t0)
	t.Logf("writer ended after %v: %+v", took, out.Result)
	if out.err != nil || out.EndedBy != EndedDiskFull || out.Signal != "SIGKILL" {
		t.Errorf("writer: got ended_by %q signal %q err %v, want %q by SIGKILL", out.EndedBy, out.Signal, out.err, EndedDiskFull)
	}
	if took > 10*time.Second {
		t.Errorf("writer ended after %v, want well before its 30 s timeout", took)
	}
	if b := <-bystander; b.err != nil || b.EndedBy != EndedExit || b.stdout.String() != "done\n" {
		t.Errorf("run on another file system: got ended_by %q stdout %q err %v, want exit and done", b.EndedBy, b.stdout.String(), b.err)
	}
	if left := runLeftovers(m); len(left) > 0 {
		t.Errorf("leftovers after the runs: %v", left)
	}
	_, err := m.Run(t.Context(), Spec{Argv: []string{"/bin/true"}, Mounts: []policy.Mount{ws}, Profile: writerProfile()})
	if !errors.Is(err, ErrDiskFull) {
		t.Errorf("new run on the full file system: got %v, want ErrDiskFull", err)
	}
	waitDiskWatcherGone(t)
}

// TestDiskWatchImageRoot: with a workspace image, the file system watched
// is the image root's, where the sparse image grows; the image itself
// (smaller than the reserve) is not mistaken for a full disk.
func TestDiskWatchImageRoot(t *testing.T) {
	needSandbox(t)
	const minFree = 4 << 20
	images := mountTestTmpfs(t, 64<<20)
	m := newTestManagerWith(t, func(c *Config) {
		c.MinFreeBytes = minFree
		c.WorkspaceImageRoot = images
	})
	p := writerProfile()
	p.WorkspaceBytes = 2 << 20 // an image far below the reserve: its own ENOSPC bounds the user
	ws := policy.Mount{Source: filepath.Join(t.TempDir(), "carol"), Target: "/work", Workspace: true}
	out := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "head -c 8388608 /dev/zero > /work/f; echo $?"}, Mounts: []policy.Mount{ws}, Profile: p})
	if out.EndedBy != EndedExit || out.Stdout == "0\n" {
		t.Errorf("write past a 2 MiB image: got ended_by %q stdout %q, want exit with head failing (ENOSPC)", out.EndedBy, out.Stdout)
	}
	// Fill the image root's file system below the reserve: a run with
	// the image workspace is now killed.
	f, err := os.Create(filepath.Join(images, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	up := make(chan struct{})
	spec := Spec{Argv: []string{"/bin/sh", "-c", "echo up; sleep 20"}, Mounts: []policy.Mount{ws}, Profile: p}
	spec.Stdout = &notifyWriter{ch: up}
	res := runAsync(m, spec)
	select {
	case <-up: // started: the start check passed
	case r := <-res:
		t.Fatalf("run ended before it was up: %+v, %v", r.Result, r.err)
	}
	if _, err := f.Write(make([]byte, 61<<20)); err != nil {
		t.Fatalf("fill the image root: %v", err)
	}
	select {
	case r := <-res:
		if r.err != nil || r.EndedBy != EndedDiskFull {
			t.Errorf("run with its image root below the reserve: got ended_by %q, %v; want %q", r.EndedBy, r.err, EndedDiskFull)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run with its image root below the reserve still runs after 10 s")
	}
}

// asyncOut is the outcome of a run started by runAsync.
type asyncOut struct {
	Result
	err    error
	stdout *strings.Builder
}

// runAsync runs spec on its own goroutine (Stdout collected unless set).
func runAsync(m *Manager, spec Spec) <-chan asyncOut {
	ch := make(chan asyncOut, 1)
	var out strings.Builder
	if spec.Stdout == nil {
		spec.Stdout = &syncWriter{w: &out}
	}
	if spec.Stderr == nil {
		spec.Stderr = io.Discard
	}
	go func() {
		res, err := m.Run(context.Background(), spec)
		ch <- asyncOut{Result: res, err: err, stdout: &out}
	}()
	return ch
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// notifyWriter closes ch at the first write.
type notifyWriter struct {
	ch   chan struct{}
	once sync.Once
}

func (n *notifyWriter) Write(p []byte) (int, error) {
	n.once.Do(func() { close(n.ch) })
	return len(p), nil
}

// waitDiskWatcherGone waits until no disk watcher goroutine runs (it ends
// when no watched run is active).
func waitDiskWatcherGone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for diskWatcherRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the disk watcher goroutine still runs with no active run")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// diskWatcherRunning reports whether a watcher goroutine exists. A
// goroutine running on another thread at that instant has no stack in
// the dump, so it looks a few times.
func diskWatcherRunning() bool {
	buf := make([]byte, 1<<20)
	for range 50 {
		if bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("sandbox.(*diskWatcher).loop")) {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// TestDiskWatcherUnit drives the watcher without containers: two watched
// "runs", one writing to a 4 MiB tmpfs and one elsewhere; when the tmpfs
// drops below the reserve only the first is told to end. The goroutine
// starts with the first watch and ends with the last.
func TestDiskWatcherUnit(t *testing.T) {
	needSandbox(t) // mounts a tmpfs
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	small := mountTestTmpfs(t, 4<<20)
	w := newDiskWatcher(1<<20, 10*time.Millisecond, testLogger(t))
	a, err := newDiskWatch("a", []string{small, small})
	if err != nil {
		t.Fatal(err)
	}
	b, err := newDiskWatch("b", []string{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.fs) != 1 {
		t.Errorf("two paths on one file system: got %d entries, want 1", len(a.fs))
	}
	if none, err := newDiskWatch("c", nil); none != nil || err != nil {
		t.Errorf("no paths: got %v, %v, want nil, nil", none, err)
	}
	doneA, doneB := w.add(a), w.add(b)
	if !diskWatcherRunning() {
		t.Error("no watcher goroutine with two watched runs")
	}
	time.Sleep(50 * time.Millisecond)
	if isClosed(a.full) || isClosed(b.full) {
		t.Fatal("a run was told to end while every file system had room")
	}
	if err := os.WriteFile(filepath.Join(small, "fill"), make([]byte, 3<<20+512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !isClosed(a.full) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !isClosed(a.full) || isClosed(b.full) {
		t.Errorf("after filling a's file system: a told %v, b told %v; want true, false", isClosed(a.full), isClosed(b.full))
	}
	doneA()
	doneA() // idempotent: must not drop b
	if !diskWatcherRunning() {
		t.Error("removing a twice stopped the watcher while b is watched")
	}
	doneB()
	w.wait()
	if diskWatcherRunning() {
		t.Error("watcher goroutine still runs after the last run was removed")
	}
	a.close()
	b.close()
	// Watching restarts with the next run.
	c, err := newDiskWatch("c", []string{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	doneC := w.add(c)
	if !diskWatcherRunning() {
		t.Error("no watcher goroutine after a run was added again")
	}
	doneC()
	w.wait()
	c.close()
}

// TestDiskWatcherFollowsDescriptor: the watcher measures through the
// descriptor it opened when the run started, so renaming the run's
// directory away and putting a symbolic link to a roomy file system in its
// place does not stop it.
func TestDiskWatcherFollowsDescriptor(t *testing.T) {
	needSandbox(t) // mounts a tmpfs
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	small := mountTestTmpfs(t, 4<<20)
	dir := filepath.Join(small, "ws")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newDiskWatcher(1<<20, 10*time.Millisecond, testLogger(t))
	d, err := newDiskWatch("d", []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	done := w.add(d)
	defer func() { done(); w.wait() }()
	if err := os.Rename(dir, filepath.Join(small, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(small, "fill"), make([]byte, 3<<20+512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !isClosed(d.full) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !isClosed(d.full) {
		t.Error("the run's directory was renamed and replaced by a link: got no kill, want the run told to end")
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWritablePaths: the file systems a run is watched on are the ones
// its start check covers.
func TestWritablePaths(t *testing.T) {
	m := &Manager{cfg: Config{WorkspaceImageRoot: "/var/lib/execgate/images"}}
	ws := policy.Mount{Source: "/srv/ws/alice", Target: "/work", Workspace: true}
	ro := policy.Mount{Source: "/srv/shared", Target: "/shared", ReadOnly: true}
	rw := policy.Mount{Source: "/srv/cache", Target: "/cache"}
	for _, tt := range []struct {
		name   string
		mounts []policy.Mount
		image  int64
		want   string
	}{
		{"none", nil, 0, ""},
		{"workspace", []policy.Mount{ws, ro}, 0, "/srv/ws/alice"},
		{"workspace image", []policy.Mount{ws, ro}, 1 << 20, "/var/lib/execgate/images"},
		{"writable shared root", []policy.Mount{ro, rw}, 0, "/srv/cache"},
	} {
		spec := &Spec{Mounts: tt.mounts, Profile: policy.Profile{WorkspaceBytes: tt.image}}
		if got := strings.Join(m.writablePaths(spec), ","); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

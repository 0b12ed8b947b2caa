package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crashHelperEnv carries "instance state-root cgroup-parent marker" to the helper
// process of TestSweepAfterKill.
const crashHelperEnv = "EXECGATE_CRASH_HELPER"

// crashMarker is in the command line of the command the helper leaves
// running when it is killed: a sleep length unique to this test process, so
// that a leftover of another run is never mistaken for this one's.
var crashMarker = fmt.Sprintf("271.%d", os.Getpid())

// firstWrite closes ready on the first write (the command's "READY").
type firstWrite struct {
	ready chan struct{}
	done  bool
}

func (w *firstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		close(w.ready)
	}
	return len(p), nil
}

// TestCrashHelperProcess is no test of its own: run by TestSweepAfterKill
// with crashHelperEnv set, it builds a Manager, starts a long command in a
// sandbox, says RUNNING on stdout and waits to be killed.
func TestCrashHelperProcess(t *testing.T) {
	f := strings.Fields(os.Getenv(crashHelperEnv))
	if len(f) != 4 {
		return // not the helper
	}
	m, err := New(context.Background(), Config{Instance: f[0], StateRoot: f[1], CgroupParent: f[2]}, testLogger(t))
	if err != nil {
		fmt.Println("NEW FAILED:", err)
		return
	}
	w := &firstWrite{ready: make(chan struct{})}
	go func() {
		_, _ = m.Run(context.Background(), Spec{Argv: []string{"/bin/sh", "-c", "echo READY; exec sleep " + f[3]},
			Profile: testProfile(), Stdout: w, Stderr: io.Discard})
	}()
	select {
	case <-w.ready:
		fmt.Println("RUNNING")
	case <-time.After(30 * time.Second):
		fmt.Println("RUN DID NOT START")
		return
	}
	time.Sleep(time.Minute) // killed long before
}

// markerProcesses lists the host pids whose command line holds crashMarker.
func markerProcesses() []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(cmd, []byte("sleep\x00"+crashMarker)) {
			out = append(out, filepath.Base(d))
		}
	}
	return out
}

// TestSweepAfterKill kills (SIGKILL) a process whose Manager has a command
// running (as when the root executor dies): the command dies with it
// within 5 s (the container's init has SIGKILL as its parent-death signal).
// Then it starts a new Manager on the same state root and cgroup
// parent: the sweep removes the dead run's container
// state, cgroups and every mount the dead process left (root skeleton,
// static binds, shared /dev), the new Manager runs, and its Close leaves
// nothing.
func TestSweepAfterKill(t *testing.T) {
	needSandbox(t)
	cfg := testConfig(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s", crashHelperEnv, cfg.Instance, cfg.StateRoot, cfg.CgroupParent, crashMarker))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() { // a Manager's sweep removes what a failed run left
			if m, err := New(context.Background(), cfg, testLogger(t)); err == nil {
				_ = m.Close()
			}
		}
	}()
	sc := bufio.NewScanner(stdout)
	running := false
	for sc.Scan() {
		if sc.Text() == "RUNNING" {
			running = true
			break
		}
		t.Logf("helper: %s", sc.Text())
	}
	if !running {
		t.Fatal("the helper never had its command running")
	}
	// READY comes from the shell just before it execs sleep: wait for the exec.
	for deadline := time.Now().Add(10 * time.Second); len(markerProcesses()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the helper's command is not running on the host")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	killed = true

	// The orphaned command dies with the process that ran it: the
	// container's init has SIGKILL as its parent-death signal, and the
	// kernel kills a PID namespace with its init.
	for deadline := time.Now().Add(5 * time.Second); len(markerProcesses()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the killed process's command still runs 5 s later: pids %v", markerProcesses())
			break
		}
	}
	left := leftoversOf(cfg)
	if len(left) == 0 {
		t.Fatal("the killed process left nothing: the test did not crash it mid-run")
	}
	t.Logf("left by the killed process: %d items", len(left))

	m, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New after the crash: %v", err)
	}
	if p := markerProcesses(); len(p) > 0 {
		t.Errorf("the crashed run's command survives the sweep: pids %v", p)
	}
	if ents, _ := os.ReadDir(cfg.containersDir()); len(ents) > 0 {
		t.Errorf("container state survives the sweep: %d entries", len(ents))
	}
	out := runSpec(t, m, Spec{Argv: []string{"/bin/true"}, Profile: testProfile()})
	if out.ExitCode != 0 {
		t.Errorf("run after the sweep: exit %d, stderr %q", out.ExitCode, out.Stderr)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if left := leftoversOf(m.cfg); len(left) > 0 {
		t.Errorf("after Close: %v", left)
	}
	// The parent's directories were created by the killed process: the
	// new Manager took them over from the record in the parent's lock
	// file, so its Close removed them.
	mounts, _ := cgroupMounts()
	for _, mnt := range mounts {
		if d := filepath.Join(mnt, m.cfg.CgroupParent); exists(d) {
			t.Errorf("cgroup parent %s created by the killed process survives the next Manager's Close", d)
		}
	}
	removeCgroupParents(m.cfg.CgroupParent)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

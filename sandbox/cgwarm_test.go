package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestOwnCgroup(t *testing.T) {
	if detectCgroupVersion() != 1 {
		if os.Getenv("CI") == "" {
			t.Skip("cgroup v1 host needed (with CI set: fails)")
		}
		t.Fatal("cgroup v1 host needed and CI is set")
	}
	got, err := ownCgroup("pids")
	if err != nil {
		t.Fatalf("ownCgroup(pids): %v", err)
	}
	procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", got, "cgroup.procs"))
	if err != nil {
		t.Fatalf("read cgroup.procs of %s: %v", got, err)
	}
	// This process is listed in the cgroup ownCgroup names.
	me := []byte("\n" + strconv.Itoa(os.Getpid()) + "\n")
	if !bytes.Contains(append([]byte("\n"), procs...), me) {
		t.Errorf("pid %d not in %s/cgroup.procs", os.Getpid(), got)
	}
	if _, err := ownCgroup("no-such-controller"); err == nil {
		t.Errorf("ownCgroup(no-such-controller): got nil error, want one")
	}
}

// TestCgroupWarmer checks the warmer's life cycle: nil (and harmless) on
// v2, its writes leave this process in its own cgroup, and stop ends its
// goroutine.
func TestCgroupWarmer(t *testing.T) {
	needSandbox(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	if w := newCgroupWarmer(2, []string{"/sys/fs/cgroup/unified"}, testLogger(t)); w != nil {
		t.Fatalf("v2 warmer: got %v, want nil", w)
	} else {
		w.begin()()
		w.stop()
	}
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile("/proc/self/cgroup")
	w := newCgroupWarmer(1, mounts, testLogger(t))
	if w == nil {
		t.Fatal("v1 warmer: got nil on a v1 host")
	}
	done := w.begin()
	time.Sleep(3 * warmPeriod)
	done()
	done() // a second call is a no-op
	w.stop()
	if w.failed {
		t.Errorf("warm-up write failed (see log)")
	}
	if after, _ := os.ReadFile("/proc/self/cgroup"); !bytes.Equal(before, after) {
		t.Errorf("/proc/self/cgroup changed:\n%s\nwant\n%s", after, before)
	}
}

// TestCgroupWarmupOption checks Config.DisableCgroupWarmup: by default a
// v1 Manager owns a warmer whose goroutine ends at Close; disabled, there
// is none and runs still work.
func TestCgroupWarmupOption(t *testing.T) {
	needSandbox(t)
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("disable=%v", disable), func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			cfg := testConfig(t)
			cfg.DisableCgroupWarmup = disable
			m, err := New(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.warm != nil, !disable && m.cfg.CgroupVersion == 1; got != want {
				t.Errorf("got warmer %v, want %v", got, want)
			}
			out := runSpec(t, m, Spec{Argv: []string{"/bin/true"}, Profile: testProfile()})
			if out.ExitCode != 0 {
				t.Errorf("run: exit %d, stderr %q", out.ExitCode, out.Stderr)
			}
			err = goleak.Find(before, goleak.IgnoreTopFunction("github.com/execgate/execgate/sandbox.(*starterPool).loop"))
			if running := err != nil && strings.Contains(err.Error(), "cgroupWarmer"); running != (m.warm != nil) {
				t.Errorf("warmer goroutine running: got %v, want %v (%v)", running, m.warm != nil, err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := goleak.Find(before); err != nil {
				t.Errorf("goroutines left after Close: %v", err)
			}
			removeCgroupParents(m.cfg.CgroupParent)
		})
	}
}

// BenchmarkHostForkWarm measures the warm-up's host-wide side effect: a
// plain fork+exec+wait of /bin/true on the host, with and without a warmer
// touching the cgroup semaphore every warmPeriod (held busy throughout).
func BenchmarkHostForkWarm(b *testing.B) {
	needSandbox(b)
	mounts, err := cgroupMounts()
	if err != nil {
		b.Fatal(err)
	}
	for _, warm := range []bool{false, true} {
		b.Run(fmt.Sprintf("warm=%v", warm), func(b *testing.B) {
			if warm {
				w := newCgroupWarmer(1, mounts, testLogger(b))
				if w == nil {
					b.Skip("no cgroup v1 hierarchy")
				}
				done := w.begin()
				defer w.stop()
				defer done()
			}
			for b.Loop() {
				if err := exec.Command("/bin/true").Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRunTrueAfterIdleNoWarmup is BenchmarkRunTrueAfterIdle with the
// warm-up disabled (Config.DisableCgroupWarmup).
func BenchmarkRunTrueAfterIdleNoWarmup(b *testing.B) {
	needSandbox(b)
	cfg := testConfig(b)
	cfg.DisableCgroupWarmup = true
	m, err := New(context.Background(), cfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = m.Close()
		removeCgroupParents(m.cfg.CgroupParent)
	})
	spec := Spec{ID: "bench-idle-nw", Argv: []string{"/bin/true"}, Profile: testProfile()}
	for b.Loop() {
		b.StopTimer()
		time.Sleep(50 * time.Millisecond)
		b.StartTimer()
		if res, err := m.Run(context.Background(), spec); err != nil || res.ExitCode != 0 {
			b.Fatalf("run: %v, exit %d", err, res.ExitCode)
		}
	}
}

package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestOwnCgroup(t *testing.T) {
	if detectCgroupVersion() != 1 {
		if os.Getenv("CI") == "" {
			t.Skip("cgroup v1 host needed")
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

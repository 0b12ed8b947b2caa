package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/execgate/execgate/policy"
)

// needSandbox skips without root, except under CI=true where it fails.
func needSandbox(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("sandbox tests need root (euid %d) and CI is set", os.Geteuid())
	}
	t.Skipf("sandbox tests need root (euid %d; with CI set: fails)", os.Geteuid())
}

var testSeq atomic.Int64

// testConfig is a Config with its own state root and cgroup parent.
func testConfig(t testing.TB) Config {
	t.Helper()
	base, err := os.MkdirTemp("", "execgate-sbx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	n := testSeq.Add(1)
	return Config{
		Instance:     fmt.Sprintf("t%d-%d", os.Getpid(), n),
		StateRoot:    filepath.Join(base, "state"),
		CgroupParent: fmt.Sprintf("/execgate-test-%d-%d", os.Getpid(), n),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EXECGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestManager returns a Manager closed (and checked for leftovers) at
// the end of the test.
func newTestManager(t testing.TB) *Manager {
	t.Helper()
	return newTestManagerWith(t, nil)
}

// newTestManagerWith is newTestManager with changes to the Config.
func newTestManagerWith(t testing.TB, change func(*Config)) *Manager {
	t.Helper()
	needSandbox(t)
	cfg := testConfig(t)
	if change != nil {
		change(&cfg)
	}
	before := goleak.IgnoreCurrent()
	m, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if z := zombieChildren(t); len(z) > 0 {
			t.Errorf("unreaped children after Close: %v", z)
		}
		// Every goroutine the Manager and its runs started has ended.
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutines left after Close: %v", err)
		}
		if left := leftoversOf(m.cfg); len(left) > 0 {
			t.Errorf("leftovers after Close: %v", left)
		}
		removeCgroupParents(m.cfg.CgroupParent)
	})
	return m
}

// testProfile is a complete profile with small limits.
func testProfile() policy.Profile {
	return policy.Profile{
		Name:           "test",
		Timeout:        10 * time.Second,
		KillGrace:      500 * time.Millisecond,
		MemoryBytes:    64 << 20,
		Pids:           32,
		CPUShares:      512,
		CPUQuota:       1,
		CPUSeconds:     10,
		OpenFiles:      64,
		FileSizeBytes:  16 << 20,
		TmpfsBytes:     16 << 20,
		Umask:          0o077,
		MaxOutputBytes: 1 << 20,
		Network:        policy.NetworkNone,
		Seccomp:        SeccompDefault,
		UID:            DefaultSandboxUID,
		GID:            DefaultSandboxGID,
	}
}

// runOut is a finished run with its output.
type runOut struct {
	Result
	Stdout, Stderr string
}

// runSpec runs spec (Stdout/Stderr captured) and fails the test on error.
func runSpec(t testing.TB, m *Manager, spec Spec) runOut {
	t.Helper()
	var out, errb strings.Builder
	if spec.Stdout == nil {
		spec.Stdout = &out
	}
	if spec.Stderr == nil {
		spec.Stderr = &errb
	}
	if spec.Profile.Name == "" {
		spec.Profile = testProfile()
	}
	res, err := m.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run %v: %v", spec.Argv, err)
	}
	ro := runOut{Result: res, Stdout: out.String(), Stderr: errb.String()}
	if left := runLeftovers(m); len(left) > 0 {
		t.Errorf("leftovers after run %v: %v", spec.Argv, left)
	}
	return ro
}

// runLeftovers lists containers and cgroups of m present between runs.
func runLeftovers(m *Manager) []string {
	var out []string
	if ents, err := os.ReadDir(m.cfg.containersDir()); err == nil {
		for _, e := range ents {
			out = append(out, "state "+e.Name())
		}
	}
	for _, mnt := range m.cgMounts {
		ents, _ := os.ReadDir(filepath.Join(mnt, m.cfg.CgroupParent))
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, "cgroup "+filepath.Join(mnt, m.cfg.CgroupParent, e.Name()))
			}
		}
	}
	return out
}

// leftoversOf lists what a closed Manager left: state, cgroups, mounts.
func leftoversOf(cfg Config) []string {
	var out []string
	if ents, err := os.ReadDir(cfg.containersDir()); err == nil {
		for _, e := range ents {
			out = append(out, "state "+e.Name())
		}
	}
	for _, d := range []string{cfg.rootfsDir(), cfg.skelDir(), cfg.devDir()} {
		if _, err := os.Stat(d); err == nil {
			out = append(out, "root skeleton "+d)
		}
	}
	mounts, _ := cgroupMounts()
	for _, mnt := range mounts {
		ents, _ := os.ReadDir(filepath.Join(mnt, cfg.CgroupParent))
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, "cgroup "+filepath.Join(mnt, cfg.CgroupParent, e.Name()))
			}
		}
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && isUnder(f[4], cfg.StateRoot) {
			out = append(out, "mount "+f[4])
		}
	}
	return out
}

// removeCgroupParents removes a test's (empty) cgroup parent directories.
func removeCgroupParents(parent string) {
	mounts, _ := cgroupMounts()
	for _, mnt := range mounts {
		_ = os.Remove(filepath.Join(mnt, parent))
	}
}

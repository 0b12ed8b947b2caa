package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/sandbox"
)

// TestServeRefusesFailedSelfcheck starts `execgate serve` as root (the
// executor + front split; serve has no in-process mode) on a binary that
// the sandbox self-check rejects for real: one whose mode keeps the
// sandbox user from running it as every container's PID 1, and one built
// without libseccomp (trap 1). Serve must exit non-zero with one stderr
// line naming the failed check, before the front (the only listener) is
// started, and leave no sandbox state root, cgroup parent or audit log.
func TestServeRefusesFailedSelfcheck(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("builds the binary twice: not in -short mode")
	}
	cases := []struct {
		name      string
		binary    func(t *testing.T) string
		wantCheck string
	}{
		{"pid 1 binary not executable by others", func(t *testing.T) string {
			bin := buildBinary(t)
			if err := os.Chmod(bin, 0o750); err != nil {
				t.Fatal(err)
			}
			return bin
		}, "pid 1 binary"},
		{"built without the seccomp tag", func(t *testing.T) string { return buildBinaryWithout(t, "seccomp") },
			"seccomp support built in"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := tc.binary(t)
			instance := testInstance("selfcheck")
			state := filepath.Join(t.TempDir(), "state")
			addr, metrics := freePort(t), freePort(t)
			cmd := exec.Command(bin, "serve", "--listen", addr, "--metrics-listen", metrics, "--state-dir", state, "--instance", instance)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := runToExit(t, cmd)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit: got %v, want a non-zero exit code; stderr:\n%s", err, stderr.String())
			}
			wantPrefix := "execgate serve: sandbox selfcheck: " + tc.wantCheck + ": "
			if lines := strings.SplitAfter(stderr.String(), "\n"); len(lines) != 2 || lines[1] != "" || !strings.HasPrefix(lines[0], wantPrefix) {
				t.Errorf("stderr: got %q, want one line starting %q", stderr.String(), wantPrefix)
			}
			// The front logs at start and the gateway logs "serving" once it
			// listens, both on this stderr: one line means neither happened.
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing (the dev banner comes after the self-check)", stdout.String())
			}
			for _, a := range []string{addr, metrics} {
				if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
					c.Close()
					t.Errorf("%s accepts connections after the refused start", a)
				} else if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("dial %s: got %v, want connection refused", a, err)
				}
			}
			assertNoSandboxLeft(t, instance)
			// Dev mode's key is made before anything is checked; the audit
			// log (and its hand-over to the front) comes after the check.
			if got, want := dirNames(t, state), []string{devKeyName}; !slices.Equal(got, want) {
				t.Errorf("state dir: got %v, want %v", got, want)
			}
		})
	}
}

// runToExit starts cmd and waits up to a minute for its exit. A serve
// that started after all is stopped with SIGTERM (and waited for) when
// the test ends, so it cleans up after itself.
func runToExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-done
		})
		t.Fatalf("%s still running after a minute", cmd.Path)
		return nil
	}
}

// assertNoSandboxLeft fails t if the instance's default state root or
// cgroup parent exists (in any cgroup hierarchy).
func assertNoSandboxLeft(t *testing.T, instance string) {
	t.Helper()
	paths := []string{filepath.Join(sandbox.DefaultStateRootBase, instance)}
	hierarchies, err := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	hierarchies = append(hierarchies, "/sys/fs/cgroup/cgroup.procs") // cgroup v2
	for _, h := range hierarchies {
		paths = append(paths, filepath.Join(filepath.Dir(h), sandbox.DefaultCgroupParentBase, instance))
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the refused start: got %v, want it absent", p, err)
		}
	}
}

// dirNames lists the names in dir (none if it does not exist).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

package pid1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// These tests run this test binary as PID 1 of a new PID namespace with
// argv[0] = Path, so pid1.c's constructor takes over before the Go
// runtime starts. The filter allows everything but uname(2) (EPERM), so a
// command can show that it runs filtered. The sandbox package tests the
// same PID 1 inside real containers.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("pid1 tests need root for a PID namespace (euid %d) and CI is set", os.Geteuid())
	}
	t.Skipf("pid1 tests need root for a PID namespace (euid %d; with CI set: fails)", os.Geteuid())
}

// testFilter is a sealed memfd holding a program that fails uname with
// EPERM and allows the rest.
func testFilter(t *testing.T) *os.File {
	t.Helper()
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	nr, err := libseccomp.GetSyscallFromName("uname")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddRule(nr, libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM))); err != nil {
		t.Fatal(err)
	}
	mf := memfd(t, nil)
	if err := f.ExportBPF(mf); err != nil {
		t.Fatal(err)
	}
	return mf
}

// memfd returns a memfd holding data.
func memfd(t *testing.T, data []byte) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("pid1-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "pid1-test")
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	return f
}

// shim is one PID 1 started in a new PID namespace.
type shim struct {
	cmd     *exec.Cmd
	status  *os.File
	out     bytes.Buffer
	errOut  bytes.Buffer
	waitErr error
}

// envFile is the environment block of env.
func envFile(t *testing.T, env ...string) *os.File {
	t.Helper()
	f, err := EnvFile(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// startShim starts PID 1 with args (after argv[0]), the given filter file
// and PATH as the command's environment.
func startShim(t *testing.T, filter *os.File, args ...string) *shim {
	t.Helper()
	return startShimEnv(t, filter, envFile(t, "PATH=/usr/bin:/bin"), args...)
}

// startShimEnv is startShim with an environment file (nil files leave
// their descriptors closed).
func startShimEnv(t *testing.T, filter, env *os.File, args ...string) *shim {
	t.Helper()
	needRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &shim{status: r}
	t.Cleanup(func() { r.Close() })
	extra := []*os.File{w, filter, env}
	s.cmd = &exec.Cmd{
		Path: self, Args: append([]string{Path}, args...), Env: []string{},
		Stdout: &s.out, Stderr: &s.errOut, ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL},
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	return s
}

// wait waits for PID 1 and parses its status record.
func (s *shim) wait(t *testing.T) (syscall.WaitStatus, error) {
	t.Helper()
	s.waitErr = s.cmd.Wait()
	b, err := io.ReadAll(io.LimitReader(s.status, MaxStatusBytes))
	if err != nil {
		t.Fatal(err)
	}
	return ParseStatus(b)
}

func runShim(t *testing.T, filter *os.File, args ...string) (*shim, syscall.WaitStatus, error) {
	t.Helper()
	s := startShim(t, filter, args...)
	ws, err := s.wait(t)
	return s, ws, err
}

func sh(script string) []string {
	return []string{"pipe", "--", "/bin/sh", "-c", script}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		script string
		code   int
		signal syscall.Signal
	}{
		{"exit 0", "exit 0", 0, 0},
		{"exit 1", "exit 1", 1, 0},
		{"exit 42", "exit 42", 42, 0},
		{"exit 255", "exit 255", 255, 0},
		{"SIGSEGV", "kill -SEGV $$", 0, syscall.SIGSEGV},
		{"SIGKILL", "kill -KILL $$", 0, syscall.SIGKILL},
		{"orphan left running", "sleep 313.9 & exit 7", 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ws, err := runShim(t, testFilter(t), sh(tt.script)...)
			if err != nil {
				t.Fatalf("status: %v (stderr %q)", err, s.errOut.String())
			}
			if s.waitErr != nil {
				t.Errorf("PID 1 itself: got %v, want exit 0", s.waitErr)
			}
			if tt.signal != 0 {
				if !ws.Signaled() || ws.Signal() != tt.signal {
					t.Errorf("got %v, want death by %v", describe(ws), tt.signal)
				}
				return
			}
			if !ws.Exited() || ws.ExitStatus() != tt.code {
				t.Errorf("got %v, want exit %d", describe(ws), tt.code)
			}
		})
	}
	if left := procsWith("313.9"); len(left) > 0 {
		t.Errorf("orphan survived its PID 1: %v", left)
	}
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

// procsWith lists host processes whose command line contains marker.
func procsWith(marker string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), marker) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// TestCommandEnvironment: the command gets the env from argv, fds 0-2
// only, the filter, its own process group, and argv unchanged.
func TestCommandEnvironment(t *testing.T) {
	script := `echo "env=$(env | sort | tr '\n' ' ')"; for fd in 3 4 5 6 7 8 9; do [ -e /proc/self/fd/$fd ] && echo "open fd $fd"; done
grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\t' ' '
uname >/dev/null 2>&1 || echo uname-denied
read -r pid comm state ppid pgrp rest </proc/self/stat; [ "$pid" = "$pgrp" ] && echo own-group; echo "pid=$$"
echo "args=$0 $1 $2"`
	s := startShimEnv(t, testFilter(t), envFile(t, "A=1", "B=x y", "C=--"), "pipe", "--", "/bin/sh", "-c", script, "zero", "-- one", "--")
	ws, err := s.wait(t)
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("got %v %v, stderr %q", describe(ws), err, s.errOut.String())
	}
	out := s.out.String()
	if strings.Contains(out, "open fd") {
		t.Errorf("the command has more than fds 0-2:\n%s", out)
	}
	for _, want := range []string{"env=A=1 B=x y C=-- ", "Seccomp: 2\n", "uname-denied\n", "own-group\npid=2\n", "args=zero -- one --\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestSignalForwarding: a signal sent to PID 1 from outside reaches the
// command with its default action (the command is not the namespace's
// init); an ignored one does not end it, and only SIGKILL to PID 1 does.
func TestSignalForwarding(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1} {
		t.Run(sig.String(), func(t *testing.T) {
			s := startShim(t, testFilter(t), "pipe", "--", "/bin/sleep", "60")
			time.Sleep(100 * time.Millisecond)
			if err := s.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			ws, err := s.wait(t)
			if err != nil || !ws.Signaled() || ws.Signal() != sig {
				t.Errorf("got %v %v, want death by %v", describe(ws), err, sig)
			}
		})
	}
	t.Run("ignored TERM, then KILL", func(t *testing.T) {
		s := startShim(t, testFilter(t), sh("trap '' TERM; /bin/sleep 313.8; exit 3")...)
		time.Sleep(100 * time.Millisecond)
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
		if s.cmd.ProcessState != nil {
			t.Fatal("PID 1 ended on an ignored TERM")
		}
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_, err := s.wait(t)
		if !errors.Is(err, ErrNoStatus) || s.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("got %v, state %v; want no status and PID 1 killed", err, s.cmd.ProcessState)
		}
		if left := procsWith("313.8"); len(left) > 0 {
			t.Errorf("command survived its PID 1: %v", left)
		}
	})
}

// TestCommandCannotHurtPID1: the command runs as the same uid but cannot
// kill or stop PID 1 (the kernel drops SIGKILL and SIGSTOP from inside the
// namespace for an init without handlers), and whatever it sends is
// forwarded back to it. PID 1 is filtered too.
func TestCommandCannotHurtPID1(t *testing.T) {
	s, ws, err := runShim(t, testFilter(t), sh("kill -KILL 1; kill -STOP 1; kill -CONT 1; echo alive; kill -TERM 1; sleep 5")...)
	if err != nil || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("got %v %v, want the command dead by its own TERM forwarded back", describe(ws), err)
	}
	if s.out.String() != "alive\n" {
		t.Errorf("got output %q, want alive", s.out.String())
	}
	t.Run("pid 1 filtered", func(t *testing.T) {
		s := startShim(t, testFilter(t), "pipe", "--", "/bin/sleep", "60")
		time.Sleep(100 * time.Millisecond)
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
		if err != nil || !strings.Contains(string(st), "Seccomp:\t2\n") {
			t.Errorf("PID 1 status: %v, want Seccomp 2:\n%s", err, st)
		}
	})
}

// TestFailures: a missing, empty, ragged or invalid filter, bad usage and
// a command that cannot be executed all end in an error record, a
// distinct exit code, a line on stderr, and the command never runs.
func TestFailures(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	touch := []string{"pipe", "--", "/usr/bin/touch", marker}
	bad := []byte{0xff, 0xff, 0, 0, 0, 0, 0, 0} // no such BPF opcode
	tests := []struct {
		name   string
		filter func(t *testing.T) *os.File
		args   []string
		stage  Stage
		errno  syscall.Errno
	}{
		{"no filter fd", func(*testing.T) *os.File { return nil }, touch, StageFilterRead, syscall.EBADF},
		{"empty filter", func(t *testing.T) *os.File { return memfd(t, nil) }, touch, StageFilterSize, syscall.EINVAL},
		{"ragged filter", func(t *testing.T) *os.File { return memfd(t, make([]byte, 12)) }, touch, StageFilterSize, syscall.EINVAL},
		{"huge filter", func(t *testing.T) *os.File { return memfd(t, make([]byte, 8*4097)) }, touch, StageFilterSize, syscall.EINVAL},
		{"invalid program", func(t *testing.T) *os.File { return memfd(t, bad) }, touch, StageChildFilter, syscall.EINVAL},
		{"directory as filter", func(t *testing.T) *os.File {
			d, err := os.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		}, touch, StageFilterRead, syscall.EBADF},
		{"no separator", testFilter, []string{"pipe", "/usr/bin/touch", marker}, StageUsage, syscall.EINVAL},
		{"env before separator", testFilter, []string{"pipe", "A=1", "--", "/usr/bin/touch", marker}, StageUsage, syscall.EINVAL},
		{"bad mode", testFilter, []string{"fast", "--", "/usr/bin/touch", marker}, StageUsage, syscall.EINVAL},
		{"relative command", testFilter, []string{"pipe", "--", "touch", marker}, StageUsage, syscall.EINVAL},
		{"no command", testFilter, []string{"pipe", "--"}, StageUsage, syscall.EINVAL},
		{"missing command", testFilter, []string{"pipe", "--", "/nonexistent/touch", marker}, StageExec, syscall.ENOENT},
		{"not executable", testFilter, []string{"pipe", "--", "/etc/passwd", marker}, StageExec, syscall.EACCES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := runShim(t, tt.filter(t), tt.args...)
			var pe *Error
			if errors.As(err, &pe) && tt.stage == StageChildFilter && pe.Stage == StageFilter {
				tt.stage = StageFilter // PID 1 loads the same filter and may fail first
			}
			if !errors.As(err, &pe) || pe.Stage != tt.stage || pe.Errno != tt.errno {
				t.Fatalf("got %v, want %s failing with %v", err, tt.stage, tt.errno)
			}
			var ee *exec.ExitError
			if !errors.As(s.waitErr, &ee) || ee.ExitCode() != ExitBase+int(tt.stage) {
				t.Errorf("PID 1 exit: got %v, want code %d", s.waitErr, ExitBase+int(tt.stage))
			}
			if !strings.HasPrefix(s.errOut.String(), "execgate init: "+tt.stage.String()+" failed: errno ") {
				t.Errorf("stderr: got %q, want the stage named", s.errOut.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran")
			}
		})
	}
}

// TestEnvFailures: a missing or malformed environment block fails before
// the command runs.
func TestEnvFailures(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	touch := []string{"pipe", "--", "/usr/bin/touch", marker}
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	tests := []struct {
		name  string
		env   *os.File
		errno syscall.Errno
	}{
		{"no env fd", nil, syscall.EBADF},
		{"not NUL-terminated", memfd(t, []byte("A=1")), syscall.EINVAL},
		{"directory", dir, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startShimEnv(t, testFilter(t), tt.env, touch...)
			_, err := s.wait(t)
			var pe *Error
			if !errors.As(err, &pe) || pe.Stage != StageEnv || pe.Errno != tt.errno {
				t.Fatalf("got %v, want %s failing with %v", err, StageEnv, tt.errno)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran")
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		s := startShimEnv(t, testFilter(t), envFile(t), "pipe", "--", "/usr/bin/env")
		ws, err := s.wait(t)
		if err != nil || ws.ExitStatus() != 0 || s.out.String() != "" {
			t.Errorf("got %v %v output %q, want an empty environment", describe(ws), err, s.out.String())
		}
	})
}

// TestNotPID1 runs the binary as Path outside a new PID namespace: the
// constructor must return and the Go program (here: the test binary,
// asked to run no test) go on as usual.
func TestNotPID1(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: self, Args: []string{Path, "-test.run=^$"}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") && !strings.Contains(string(out), "PASS") {
		t.Errorf("got %v, output %q; want the test binary's own run", err, out)
	}
}

// TestSelfTest runs the self-test the sandbox's Selfcheck uses: this test
// binary links the package, so PID 1 runs /bin/true and reports exit 0;
// a failing command is reported as such.
func TestSelfTest(t *testing.T) {
	needRoot(t)
	if err := SelfTest("/bin/true"); err != nil {
		t.Errorf("SelfTest(/bin/true): %v", err)
	}
	if err := SelfTest("/bin/false"); err == nil || !strings.Contains(err.Error(), "want exit 0") {
		t.Errorf("SelfTest(/bin/false): got %v, want a failure", err)
	}
	var pe *Error
	if err := SelfTest("/nonexistent"); !errors.As(err, &pe) || pe.Stage != StageExec {
		t.Errorf("SelfTest(/nonexistent): got %v, want an execve failure", err)
	}
}

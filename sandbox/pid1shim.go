package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/sandbox/pid1"
)

// The Manager's side of the containers' PID 1 (package pid1): the running
// binary is bind-mounted read-only at pid1.Path in the root skeleton, once
// per Manager, and libcontainer executes it instead of the command, with
// a status pipe, the profile's compiled seccomp program and the command's
// environment as its extra files (pid1.StatusFD, FilterFD, EnvFD).

// mountShim bind-mounts the running binary (/proc/self/exe: the very
// inode this process runs, even if the file was replaced since) at
// pid1.Path under the skeleton's read-only root: read-only, nosuid,
// nodev. libcontainer's recursive bind of the root carries it into every
// container.
func (m *Manager) mountShim() error {
	point := filepath.Join(m.skel.dir, pid1.Path)
	if err := os.MkdirAll(filepath.Dir(point), 0o755); err != nil {
		return fmt.Errorf("pid 1 mount point: %w", err)
	}
	if err := os.WriteFile(point, nil, 0o755); err != nil {
		return fmt.Errorf("pid 1 mount point: %w", err)
	}
	target := m.shimTarget()
	if err := unix.Mount("/proc/self/exe", target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the binary at %s: %w", target, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// shimTarget is where the binary is mounted on the host.
func (m *Manager) shimTarget() string { return filepath.Join(m.skel.root, pid1.Path) }

// unmountShim undoes mountShim (before the skeleton's root is unmounted).
func (m *Manager) unmountShim() error { return unmountRetry(m.shimTarget()) }

// initArgs is the process argv that starts PID 1 for spec.
func initArgs(spec *Spec) ([]string, error) {
	return pid1.Args(spec.TTY, spec.Argv)
}

// initEnv is the memfd with the command's environment (pid1.EnvFD).
func initEnv(spec *Spec) (*os.File, error) {
	return pid1.EnvFile(commandEnv(spec.Env, spec.Profile.UID))
}

// commandEnv is the command's environment as libcontainer used to prepare
// it: the last value of each variable wins (in the order of those last
// occurrences), an empty HOME is dropped, and HOME is added from the
// generated passwd when missing. PID 1 itself gets no variable of the
// user's: this list reaches it in a memfd (pid1.EnvFD).
func commandEnv(env []string, uid uint32) []string {
	last := make(map[string]int, len(env))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := make([]string, 0, len(env)+1)
	home := false
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if last[k] != i {
			continue
		}
		if k == "HOME" {
			if v == "" {
				continue
			}
			home = true
		}
		out = append(out, kv)
	}
	if !home {
		out = append(out, "HOME="+homeOf(uid))
	}
	return out
}

// homeOf is the home directory the skeleton's passwd gives uid.
func homeOf(uid uint32) string {
	if uid == 0 {
		return "/root"
	}
	return "/tmp"
}

// statusReadTimeout bounds the read of PID 1's status after it has been
// reaped (the pipe then has no writer left; this only guards a bug).
const statusReadTimeout = 2 * time.Second

// readInitStatus reads and parses PID 1's status record.
func readInitStatus(f *os.File) (syscall.WaitStatus, error) {
	if err := f.SetReadDeadline(time.Now().Add(statusReadTimeout)); err != nil {
		return 0, fmt.Errorf("status pipe: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, pid1.MaxStatusBytes))
	if err != nil {
		return 0, fmt.Errorf("status pipe: %w", err)
	}
	return pid1.ParseStatus(b)
}

// initOutcome turns what PID 1 reported and how PID 1 itself ended into
// the command's wait status. A status record is the truth; without one,
// PID 1 killed by a signal (SIGKILL from the Manager or the OOM killer)
// means the command was killed with it; anything else is PID 1 failing,
// an error.
func initOutcome(status syscall.WaitStatus, statusErr error, shim *os.ProcessState) (syscall.WaitStatus, error) {
	if statusErr == nil {
		return status, nil
	}
	var ws syscall.WaitStatus
	if shim != nil {
		ws, _ = shim.Sys().(syscall.WaitStatus)
	}
	if errors.Is(statusErr, pid1.ErrNoStatus) && shim != nil && ws.Signaled() {
		return ws, nil
	}
	var pe *pid1.Error
	if errors.As(statusErr, &pe) {
		return 0, statusErr
	}
	return 0, fmt.Errorf("%w (pid 1 ended: %v)", statusErr, shim)
}

// pid1Syscalls are what PID 1 calls after loading a profile's filter (and
// the command's execve): a custom profile must allow them.
var pid1Syscalls = []string{"read", "write", "close", "rt_sigtimedwait", "wait4", "kill", "exit_group", "execve"}

// checkPID1Syscalls refuses an allowlist that would leave PID 1 unable to
// run the command or supervise it.
func checkPID1Syscalls(allow []string) error {
	have := make(map[string]bool, len(allow))
	for _, a := range allow {
		have[a] = true
	}
	var missing []string
	for _, s := range pid1Syscalls {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the profile must allow %s (the sandbox's PID 1 needs them)", ErrSeccompProfile, strings.Join(missing, ", "))
	}
	return nil
}

// checkShimBinary is the self-check of the binary that becomes every
// container's PID 1: a regular file the sandbox user may execute.
func checkShimBinary() Check {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		self = "/proc/self/exe"
	}
	return checkShimFile("/proc/self/exe", self)
}

// selfTestCommand is what the PID 1 self-test runs (the sandbox needs the
// host's /usr anyway).
const selfTestCommand = "/usr/bin/true"

// checkShimRuns starts the running binary as PID 1 of a fresh PID
// namespace (package pid1's SelfTest): the constructor is linked in, loads
// a filter, runs a command and reports its status.
func checkShimRuns() Check {
	c := Check{Name: "pid 1 self-test", OK: true, Detail: selfTestCommand + " run through " + pid1.Path + " in a new PID namespace"}
	if err := pid1.SelfTest(selfTestCommand); err != nil {
		c.OK, c.Detail = false, err.Error()
	}
	return c
}

// checkShimFile checks path (named self in messages).
func checkShimFile(path, self string) Check {
	c := Check{Name: "pid 1 binary", OK: true}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		c.OK, c.Detail = false, fmt.Sprintf("stat %s: %v", self, err)
		return c
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		c.OK, c.Detail = false, fmt.Sprintf("%s is not a regular file", self)
	case st.Mode&0o001 == 0:
		c.OK, c.Detail = false, fmt.Sprintf("%s (mode %04o) is not executable by others: the sandbox user runs it as every container's PID 1 (%s); chmod o+x it", self, st.Mode&0o7777, pid1.Path)
	default:
		c.Detail = fmt.Sprintf("%s mounted read-only at %s in every container", self, pid1.Path)
	}
	return c
}

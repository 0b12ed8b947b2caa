package pid1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// SelfTest starts the running binary as PID 1 of a new PID namespace
// (this needs root) with a program that allows everything and an empty
// environment, and has it run command (an absolute path, no arguments).
// It returns nil when PID 1 reported that the command exited with 0: the
// constructor is linked in and does its work in this binary.
func SelfTest(command string) error {
	args, err := Args(false, []string{command})
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pid1 self-test: %w", err)
	}
	defer r.Close()
	filter, err := allowAllFilter()
	if err != nil {
		w.Close()
		return err
	}
	defer filter.Close()
	env, err := EnvFile(nil)
	if err != nil {
		w.Close()
		return err
	}
	defer env.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: args, Env: []string{},
		ExtraFiles:  []*os.File{w, filter, env},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("pid1 self-test: start %s as PID 1: %w", Path, err)
	}
	werr := cmd.Wait()
	b, rerr := io.ReadAll(io.LimitReader(r, MaxStatusBytes))
	if rerr != nil {
		return fmt.Errorf("pid1 self-test: status: %w", rerr)
	}
	ws, err := ParseStatus(b)
	switch {
	case errors.Is(err, ErrNoStatus):
		return fmt.Errorf("pid1 self-test: the binary started as %s reported nothing (%v): is package pid1 linked in?", Path, werr)
	case err != nil:
		return fmt.Errorf("pid1 self-test: %w", err)
	case !ws.Exited() || ws.ExitStatus() != 0:
		return fmt.Errorf("pid1 self-test: %s ended with wait status %#x, want exit 0", command, uint32(ws))
	}
	return nil
}

// allowAllFilter is a memfd holding the one-instruction program
// "return ALLOW".
func allowAllFilter() (*os.File, error) {
	fd, err := unix.MemfdCreate("execgate-pid1-selftest", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pid1 self-test: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "execgate-pid1-selftest")
	insn := binary.NativeEndian.AppendUint16(nil, unix.BPF_RET|unix.BPF_K)
	insn = append(insn, 0, 0)
	insn = binary.NativeEndian.AppendUint32(insn, unix.SECCOMP_RET_ALLOW)
	if _, err := f.Write(insn); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid1 self-test: %w", err)
	}
	return f, nil
}

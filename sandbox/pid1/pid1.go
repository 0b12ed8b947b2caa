// Package pid1 is the init process of every sandbox container: a small C
// program (pid1.c) that runs from a constructor of the binary that links
// this package, before the Go runtime starts, when that binary is
// executed as Path and is PID 1 of its PID namespace. For any other start
// the constructor returns at once and costs nothing.
//
// The sandbox bind-mounts the running binary read-only at Path in every
// container and has libcontainer execute it (Args) instead of the
// command. PID 1 loads a precompiled seccomp filter (passed as FilterFD),
// forks and executes the command under the same filter, forwards the
// signals it receives to the command, reaps zombies, and reports the
// command's exact wait status over StatusFD (ParseStatus). Because the
// command is no longer the namespace's init, signals without a handler
// (SIGTERM on timeout, SIGINT) end it as they would anywhere else.
//
// The package has no Go-side run-time behaviour beyond the protocol; the
// sandbox package owns the Manager side.
package pid1

/*
#cgo CFLAGS: -Wall -Wextra
#include "pid1.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The contract with pid1.c (pid1.h).
const (
	// Path is argv[0] of PID 1 and where the binary is mounted inside.
	Path = C.EG_INIT_PATH
	// StatusFD receives one status record; FilterFD holds the program
	// (struct sock_filter[]); EnvFD the command's environment (EnvFile).
	// They are libcontainer's ExtraFiles, in this order.
	StatusFD = C.EG_STATUS_FD
	FilterFD = C.EG_FILTER_FD
	EnvFD    = C.EG_ENV_FD
	// MaxEnvBytes bounds the environment block.
	MaxEnvBytes = C.EG_MAX_ENV_BYTES
	// ExitBase + stage is PID 1's own exit code when it fails.
	ExitBase = C.EG_EXIT_BASE

	modePipe = C.EG_MODE_PIPE
	modeTTY  = C.EG_MODE_TTY

	recWait     = C.EG_REC_WAIT
	recError    = C.EG_REC_ERROR
	recWaitLen  = C.EG_REC_WAIT_LEN
	recErrorLen = C.EG_REC_ERROR_LEN
	stageCount  = C.EG_STAGE_COUNT
)

// Stages of PID 1 that can fail (pid1.h).
const (
	StageUsage       Stage = C.EG_STAGE_USAGE
	StageFilterRead  Stage = C.EG_STAGE_FILTER_READ
	StageFilterSize  Stage = C.EG_STAGE_FILTER_SIZE
	StageChildFilter Stage = C.EG_STAGE_CHILD_FILTER
	StageExec        Stage = C.EG_STAGE_EXEC
	StageFilter      Stage = C.EG_STAGE_FILTER
	StageEnv         Stage = C.EG_STAGE_ENV
)

// Stage is where PID 1 failed.
type Stage int

// String names the stage as PID 1's own message does.
func (s Stage) String() string { return C.GoString(C.eg_stage_name(C.int(s))) }

// MaxStatusBytes bounds what a reader of StatusFD needs to read.
const MaxStatusBytes = 64

// ErrNoStatus means PID 1 wrote no status record.
var ErrNoStatus = errors.New("sandbox init wrote no status")

// ErrBadStatus means the status record is malformed.
var ErrBadStatus = errors.New("malformed sandbox init status")

// Error is a failure PID 1 reported: the command did not start (or, for
// StageWait and later, PID 1 could not supervise it).
type Error struct {
	Stage Stage
	Errno syscall.Errno
}

func (e *Error) Error() string {
	return fmt.Sprintf("sandbox init: %s: %v", e.Stage, e.Errno)
}

// Unwrap returns the errno, so errors.Is(err, syscall.ENOENT) works.
func (e *Error) Unwrap() error { return e.Errno }

// ParseStatus decodes what PID 1 wrote to StatusFD: the command's wait
// status, or an *Error. Anything else (nothing, a truncated or unknown
// record, trailing bytes, a wait status that is neither an exit nor a
// death by signal) is ErrNoStatus or ErrBadStatus.
func ParseStatus(b []byte) (syscall.WaitStatus, error) {
	if len(b) == 0 {
		return 0, ErrNoStatus
	}
	switch b[0] {
	case recWait:
		if len(b) != recWaitLen {
			return 0, fmt.Errorf("%w: wait record of %d bytes", ErrBadStatus, len(b))
		}
		ws := syscall.WaitStatus(binary.LittleEndian.Uint32(b[1:]))
		if !ws.Exited() && !ws.Signaled() {
			return 0, fmt.Errorf("%w: wait status %#x is neither an exit nor a signal", ErrBadStatus, uint32(ws))
		}
		return ws, nil
	case recError:
		if len(b) != recErrorLen {
			return 0, fmt.Errorf("%w: error record of %d bytes", ErrBadStatus, len(b))
		}
		st := Stage(b[1])
		if st <= 0 || st >= stageCount {
			return 0, fmt.Errorf("%w: unknown stage %d", ErrBadStatus, st)
		}
		return 0, &Error{Stage: st, Errno: syscall.Errno(binary.LittleEndian.Uint32(b[2:]))}
	}
	return 0, fmt.Errorf("%w: unknown record type %#x", ErrBadStatus, b[0])
}

// Args is the argv that makes libcontainer start PID 1 for a command:
// Path, the mode, "--", then argv unchanged (argv[0] must be absolute).
// The command's environment goes in EnvFile, never in arguments: PID 1's
// own environment stays empty, so no variable of the user's reaches its
// dynamic loader, and /proc/<pid>/cmdline (readable by every host user)
// shows no value.
func Args(tty bool, argv []string) ([]string, error) {
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return nil, errors.New("pid1: argv[0] must be an absolute path")
	}
	mode := modePipe
	if tty {
		mode = modeTTY
	}
	return append([]string{Path, mode, "--"}, argv...), nil
}

// EnvFile returns a memfd holding env as PID 1 reads it from EnvFD: each
// entry followed by a NUL byte. Every entry must contain '=' and no NUL.
func EnvFile(env []string) (*os.File, error) {
	var b []byte
	for _, e := range env {
		if !strings.Contains(e, "=") || strings.IndexByte(e, 0) >= 0 {
			return nil, fmt.Errorf("pid1: environment entry %q: want KEY=VALUE without NUL", e)
		}
		b = append(append(b, e...), 0)
	}
	if len(b) > MaxEnvBytes {
		return nil, fmt.Errorf("pid1: environment of %d bytes exceeds %d", len(b), MaxEnvBytes)
	}
	fd, err := unix.MemfdCreate("execgate-env", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pid1: environment memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "execgate-env")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid1: environment memfd: %w", err)
	}
	return f, nil
}

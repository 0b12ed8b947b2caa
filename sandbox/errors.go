package sandbox

import (
	"errors"
	"fmt"
)

// Sentinel errors of the sandbox. Callers check them with errors.Is.
var (
	// ErrDiskFull refuses a run when free space on the file system of the
	// state root, of a Config.ReserveDirs entry or of the workspace is
	// below Config.MinFreeBytes. Its reason code for clients is
	// "disk_full" (the gateway answers 507).
	ErrDiskFull = errors.New("disk_full")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("sandbox manager closed")
	// ErrLocked means another live process holds the instance's lock file.
	ErrLocked = errors.New("sandbox instance is locked by another process")
	// ErrSelfcheck means a piece the sandbox needs is missing; the
	// *SelfcheckError says which.
	ErrSelfcheck = errors.New("sandbox selfcheck failed")
	// ErrBadSpec means a Spec cannot be run as given.
	ErrBadSpec = errors.New("bad sandbox spec")
	// ErrStart means the container could not be started.
	ErrStart = errors.New("container start failed")
	// ErrSeccompProfile means a seccomp profile is unknown or invalid.
	ErrSeccompProfile = errors.New("bad seccomp profile")
	// ErrNoRun means no running command has the Spec.ID given to Signal.
	ErrNoRun = errors.New("no such running command")
	// ErrSignal means Signal was asked for a signal it does not deliver.
	ErrSignal = errors.New("signal not deliverable to a sandboxed command")
)

// SelfcheckError names the check that failed. It matches ErrSelfcheck.
type SelfcheckError struct {
	Check  string // e.g. "cgroup controller memory"
	Detail string
}

func (e *SelfcheckError) Error() string {
	return fmt.Sprintf("sandbox selfcheck: %s: %s", e.Check, e.Detail)
}

// Is makes errors.Is(err, ErrSelfcheck) true.
func (e *SelfcheckError) Is(target error) bool { return target == ErrSelfcheck }

// DiskFullError says which file system is short of space. It matches
// ErrDiskFull.
type DiskFullError struct {
	Path      string
	FreeBytes uint64
	MinBytes  uint64
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("disk_full: %d bytes free under %s, need %d", e.FreeBytes, e.Path, e.MinBytes)
}

// Is makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// SpecError says which field of a Spec is unusable. It matches ErrBadSpec.
type SpecError struct {
	Field  string
	Reason string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("bad sandbox spec: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrBadSpec) true.
func (e *SpecError) Is(target error) bool { return target == ErrBadSpec }

// StartError wraps the failure to start a container. It matches ErrStart.
type StartError struct {
	ID       string
	Attempts int
	Err      error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("start container %s (%d attempts): %v", e.ID, e.Attempts, e.Err)
}

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrStart) true.
func (e *StartError) Is(target error) bool { return target == ErrStart }

// LockedError names the lock file another process holds, and what it
// guards (the state root, or a cgroup parent). It matches ErrLocked.
type LockedError struct {
	Path string
	What string // "" for the state root
}

func (e *LockedError) Error() string {
	if e.What != "" {
		return fmt.Sprintf("sandbox: %s is in use by another instance (lock %s)", e.What, e.Path)
	}
	return fmt.Sprintf("sandbox instance lock %s is held by another process", e.Path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

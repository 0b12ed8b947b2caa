package executor

import (
	"errors"
	"fmt"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// Sentinel errors of the executor. Callers check them with errors.Is.
var (
	// ErrDenied is matched by every *DeniedError: the policy refused the job.
	ErrDenied = errors.New("denied by policy")
	// ErrNoPolicy means no policy set has been loaded yet.
	ErrNoPolicy = errors.New("no policy loaded")
	// ErrBadJob means a Job is unusable as given (bad id, negative limit).
	ErrBadJob = errors.New("bad job")
	// ErrDuplicateJob means a job with the same id is already running.
	ErrDuplicateJob = errors.New("a job with this id is already running")
	// ErrJobNotFound is returned by Kill for an id that is not running.
	ErrJobNotFound = errors.New("no running job with this id")
	// ErrTooManyJobs means the connection already runs its maximum of jobs.
	ErrTooManyJobs = errors.New("too many concurrent jobs")
	// ErrClosed is returned once the Runner or its connection is closed.
	ErrClosed = errors.New("executor closed")
	// ErrProtocol is matched by every *ProtocolError.
	ErrProtocol = errors.New("executor protocol error")
	// ErrPeer means the peer of the executor socket is not the expected
	// process (uid or pid mismatch).
	ErrPeer = errors.New("executor peer rejected")
	// ErrPrivileged means the front still holds privileges it must not
	// have (uid 0 or a non-empty effective capability set).
	ErrPrivileged = errors.New("front process is privileged")
	// ErrNotRoot means the split was asked for without root.
	ErrNotRoot = errors.New("privilege separation needs root")
	// ErrInternal is matched by a *RemoteError whose code is "internal".
	ErrInternal = errors.New("executor internal error")
)

// DeniedError is returned by Run when the policy denies the job. It carries
// the executor's own decision; its Message is safe for the client. It
// matches ErrDenied.
type DeniedError struct {
	Decision policy.Decision
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("denied by policy: %s: %s", e.Decision.Reason, e.Decision.Message)
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// JobError says why a Job is unusable. It matches ErrBadJob.
type JobError struct {
	Field  string
	Reason string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("bad job: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrBadJob) true.
func (e *JobError) Is(target error) bool { return target == ErrBadJob }

// ProtocolError says how a peer broke the wire protocol. The connection is
// closed after one. It matches ErrProtocol.
type ProtocolError struct {
	Frame  string // frame type, "" before a header was read
	Job    uint64 // wire job number, 0 for connection frames
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Frame == "" {
		return fmt.Sprintf("executor protocol: %s", e.Reason)
	}
	return fmt.Sprintf("executor protocol: %s frame (job %d): %s", e.Frame, e.Job, e.Reason)
}

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// PeerError names the credentials of a rejected peer. It matches ErrPeer.
type PeerError struct {
	UID, PID     int
	WantUID      int
	WantPID      int // 0 = any pid
	CredsMissing bool
}

func (e *PeerError) Error() string {
	if e.CredsMissing {
		return "executor peer rejected: no peer credentials"
	}
	return fmt.Sprintf("executor peer rejected: uid %d pid %d, want uid %d pid %d", e.UID, e.PID, e.WantUID, e.WantPID)
}

// Is makes errors.Is(err, ErrPeer) true.
func (e *PeerError) Is(target error) bool { return target == ErrPeer }

// RemoteError is an error the executor reported over the wire (other than
// a denial, which comes back as a *DeniedError). Code is one of the error
// codes of docs/executor-protocol.md; Is maps it back to the sentinel.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("executor: %s: %s", e.Code, e.Message)
}

// Is maps the wire code to the matching sentinel.
func (e *RemoteError) Is(target error) bool {
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}

// PrivilegedError says which privilege the front still holds. It matches
// ErrPrivileged.
type PrivilegedError struct {
	UID        int
	CapEff     string
	NoNewPrivs bool
}

func (e *PrivilegedError) Error() string {
	return fmt.Sprintf("front process is privileged: uid %d, CapEff %s, NoNewPrivs %v (want a non-zero uid, no capabilities, no_new_privs)", e.UID, e.CapEff, e.NoNewPrivs)
}

// Is makes errors.Is(err, ErrPrivileged) true.
func (e *PrivilegedError) Is(target error) bool { return target == ErrPrivileged }

// The error codes of an error frame (docs/executor-protocol.md).
const (
	codeDenied       = "denied"
	codeBadJob       = "bad_job"
	codeDuplicateJob = "duplicate_job"
	codeTooManyJobs  = "too_many_jobs"
	codeNoPolicy     = "no_policy"
	codeDiskFull     = "disk_full"
	codeClosed       = "closed"
	codeInternal     = "internal"
)

// codeSentinels maps an error frame's code back to its sentinel.
var codeSentinels = map[string]error{
	codeBadJob:       ErrBadJob,
	codeDuplicateJob: ErrDuplicateJob,
	codeTooManyJobs:  ErrTooManyJobs,
	codeNoPolicy:     ErrNoPolicy,
	codeDiskFull:     sandbox.ErrDiskFull,
	codeClosed:       ErrClosed,
	codeInternal:     ErrInternal,
}

// errorCode is the wire code of an error Run returned.
func errorCode(err error) string {
	for _, c := range []string{codeBadJob, codeDuplicateJob, codeTooManyJobs, codeNoPolicy, codeDiskFull, codeClosed} {
		if errors.Is(err, codeSentinels[c]) {
			return c
		}
	}
	if errors.Is(err, sandbox.ErrClosed) {
		return codeClosed
	}
	return codeInternal
}

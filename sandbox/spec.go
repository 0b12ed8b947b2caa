package sandbox

import (
	"io"
	"time"

	"github.com/execgate/execgate/policy"
)

// Spec is one run: what to execute and under which limits. It is built from
// an allowed policy.Decision.
type Spec struct {
	ID      string         // unique run id (used in container and cgroup names)
	Subject string         // for logs and per-user accounting
	Argv    []string       // Argv[0] is the absolute binary path inside the sandbox
	Env     []string       // KEY=VALUE, complete: nothing is inherited
	Cwd     string         // inside the sandbox
	Mounts  []policy.Mount // workspace and shared roots
	Profile policy.Profile // limits

	// Stdin is copied to the command; nil means /dev/null.
	Stdin io.Reader
	// Stdout and Stderr receive the output. A slow writer makes the command
	// block on its own write (backpressure); nothing is buffered without bound.
	Stdout io.Writer
	Stderr io.Writer

	// TTY asks for a terminal (only if Profile.TTY). Output then arrives on
	// Stdout only; Resize delivers window size changes.
	TTY    bool
	Resize <-chan WindowSize

	// Finished, when set, is called once with the run's final Result as
	// soon as the command has ended and all of its output was written to
	// Stdout and Stderr: the command and every process it started are dead
	// or dying (PID 1 has exited), only the container's teardown is left.
	// Run still returns that Result afterwards (or, when the teardown
	// failed, the Result with an error). A caller may answer its client
	// from here while Run tears the container down. It must not block for
	// long; it is not called when the run fails to start.
	Finished func(Result)
}

// WindowSize is a terminal size.
type WindowSize struct{ Rows, Cols uint16 }

// EndedBy says what ended a run.
type EndedBy string

// What can end a run.
const (
	EndedExit    EndedBy = "exit"    // the command exited on its own
	EndedTimeout EndedBy = "timeout" // wall clock
	EndedMemory  EndedBy = "memory"  // OOM kill in the memory cgroup
	EndedPids    EndedBy = "pids"    // pids limit hit (and the command failed)
	EndedOutput  EndedBy = "output"  // output cap reached
	EndedKilled  EndedBy = "killed"  // cancelled by the caller (context, admin kill, shutdown)
	EndedCPU     EndedBy = "cpu"     // RLIMIT_CPU
	// EndedDiskFull: a host file system the run writes to (its workspace's,
	// or the workspace image root's) fell below Config.MinFreeBytes while
	// it ran, and the Manager's disk watcher killed it (diskwatch.go).
	EndedDiskFull EndedBy = "disk_full"
)

// Result is everything a caller needs to know about a finished run.
type Result struct {
	ExitCode        int           `json:"exit_code"` // -1 when killed by a signal
	Signal          string        `json:"signal,omitempty"`
	Duration        time.Duration `json:"duration"`
	StartLatency    time.Duration `json:"start_latency"`
	StdoutBytes     int64         `json:"stdout_bytes"`
	StderrBytes     int64         `json:"stderr_bytes"`
	StdoutTruncated bool          `json:"stdout_truncated"`
	StderrTruncated bool          `json:"stderr_truncated"`
	EndedBy         EndedBy       `json:"ended_by"`
}

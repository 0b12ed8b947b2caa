// Package executor is the privilege boundary between execgate's
// network-facing front (unprivileged) and the root process that owns the
// sandbox. The front sends jobs over a private socket; the executor checks
// each job against the policy again, runs it in the sandbox and streams its
// output back with backpressure. Local runs the same logic in-process.
package executor

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// Job is one command to run on behalf of an authenticated subject.
type Job struct {
	ID      string         // request id, also the container id's suffix
	Request policy.Request // decided again by the executor

	// A client may ask for less than the profile allows, never more:
	// zero means the profile's value; larger values are clamped.
	Timeout        time.Duration
	MaxOutputBytes int64

	Stdin  io.Reader // nil = /dev/null
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan sandbox.WindowSize // TTY only

	// Signal delivers SIGTERM, SIGINT or SIGKILL to the running command
	// (any other signal is ignored). SIGKILL ends the job as "killed"; so
	// does cancelling the context.
	Signal <-chan syscall.Signal

	// Started, when set, is called once the executor has allowed the job
	// and is about to start the sandbox, with the executor's decision (over
	// the socket: without environment values). Streaming fronts use it to
	// announce the session before any output; it must not block for long.
	Started func(d *policy.Decision)

	// Finished, when set, is called once with the executor's decision and
	// the job's final result as soon as the command has ended and all of
	// its output was written to Stdout and Stderr, before the sandbox is
	// torn down (sandbox.Spec.Finished). Run returns afterwards, once the
	// teardown is over; its error then may report a failed teardown. A
	// front may answer its client from here. It must not block for long.
	// It is not called for a job that is denied or fails to start.
	Finished func(d *policy.Decision, res sandbox.Result)
}

// RunningJob describes one job in progress, for the admin sessions view.
type RunningJob struct {
	ID      string    `json:"id"`
	Subject string    `json:"subject"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Bytes   int64     `json:"bytes"` // stdout + stderr so far
}

// Sessions lists and kills running jobs. Local and Client implement it.
type Sessions interface {
	// List returns the running jobs, oldest first.
	List() []RunningJob
	// Kill ends the job with this id (its result says "killed"); it
	// returns ErrJobNotFound when no such job runs.
	Kill(id string) error
}

// Runner runs jobs. Both the in-process Local and the socket Client
// implement it. A denial is reported as a *DeniedError carrying the decision.
type Runner interface {
	Run(ctx context.Context, job Job) (*policy.Decision, sandbox.Result, error)
}

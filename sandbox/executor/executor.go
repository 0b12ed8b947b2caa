// Package executor is the privilege boundary between execgate's
// network-facing front (unprivileged) and the root process that owns the
// sandbox. The front sends jobs over a private socket; the executor checks
// each job against the policy again, runs it in the sandbox and streams its
// output back with backpressure. Local runs the same logic in-process.
package executor

import (
	"context"
	"io"
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
}

// Runner runs jobs. Both the in-process Local and the socket Client
// implement it. A denial is reported as a *DeniedError carrying the decision.
type Runner interface {
	Run(ctx context.Context, job Job) (*policy.Decision, sandbox.Result, error)
}

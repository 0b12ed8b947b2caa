package executor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// Policy is what the executor needs of a loaded, immutable policy set;
// *policy.Set implements it.
type Policy interface {
	Decide(ctx context.Context, req policy.Request) *policy.Decision
	Hash() string
}

// Sandbox runs one Spec; *sandbox.Manager implements it.
type Sandbox interface {
	Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error)
}

// signaler is implemented by a Sandbox that can deliver a signal to the
// command of a running Spec (by Spec.ID). Without it, SIGTERM and SIGINT
// end the job like SIGKILL.
type signaler interface {
	Signal(id string, sig syscall.Signal) error
}

// jobIDRE is what a job id may look like: it becomes part of container and
// cgroup names, and it comes from the (untrusted) front.
var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Local is the in-process Runner: it decides every job again against the
// current policy, clamps the client's limits to the profile and runs the
// job in the sandbox. It is safe for concurrent use.
type Local struct {
	sb  Sandbox
	log *slog.Logger
	pol atomic.Pointer[policyBox]

	mu      sync.Mutex
	running map[string]*localJob
}

// policyBox holds a Policy for atomic.Pointer.
type policyBox struct{ p Policy }

// localJob is one running job of a Local.
type localJob struct {
	info   RunningJob
	bytes  atomic.Int64
	cancel context.CancelFunc
}

// NewLocal returns a Local that runs jobs in sb under pol (which may be
// nil until SetPolicy is called; jobs then fail with ErrNoPolicy).
func NewLocal(sb Sandbox, pol Policy, log *slog.Logger) *Local {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Local{sb: sb, log: log, running: map[string]*localJob{}}
	l.SetPolicy(pol)
	return l
}

// SetPolicy swaps the policy atomically (on reload). Jobs already running
// keep the decision they started with.
func (l *Local) SetPolicy(p Policy) {
	if p == nil {
		l.pol.Store(nil)
		return
	}
	l.pol.Store(&policyBox{p: p})
}

// Policy returns the current policy, nil before the first one.
func (l *Local) Policy() Policy {
	if b := l.pol.Load(); b != nil {
		return b.p
	}
	return nil
}

// Run decides the job's request again, and runs it when allowed. A denial
// returns the decision and a *DeniedError.
func (l *Local) Run(ctx context.Context, job Job) (*policy.Decision, sandbox.Result, error) {
	if err := validateJob(job); err != nil {
		return nil, sandbox.Result{}, err
	}
	pol := l.Policy()
	if pol == nil {
		return nil, sandbox.Result{}, ErrNoPolicy
	}
	dp := pol.Decide(ctx, job.Request)
	if dp == nil {
		return nil, sandbox.Result{}, fmt.Errorf("decide job %s: no decision: %w", job.ID, ErrInternal)
	}
	d := *dp
	if !d.Allowed {
		return &d, sandbox.Result{}, &DeniedError{Decision: d}
	}
	if d.Profile == nil || len(d.Argv) == 0 {
		return &d, sandbox.Result{}, fmt.Errorf("decision for %s allows without a profile or argv: %w", job.ID, ErrInternal)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lj, err := l.register(job, d, cancel)
	if err != nil {
		return &d, sandbox.Result{}, err
	}
	defer l.unregister(job.ID)

	spec := buildSpec(job, d, lj)
	if job.Started != nil {
		dc := d
		dc.Profile = &spec.Profile // the limits that apply (clamped)
		job.Started(&dc)
	}
	if job.Finished != nil {
		dc := d
		spec.Finished = func(res sandbox.Result) { job.Finished(&dc, res) }
	}
	stop := l.forwardSignals(ctx, job, cancel)
	res, err := l.sb.Run(ctx, spec)
	stop()
	if err != nil {
		return &d, res, fmt.Errorf("run job %s: %w", job.ID, err)
	}
	return &d, res, nil
}

// Bounds on a request's roles. The policy bounds every other field of an
// allowed request (arguments, environment, working directory), but it
// ignores roles it does not declare, and a job holds its request for its
// whole run: without these a front could make the executor hold a start
// message's worth of roles for each of its running jobs.
const (
	MaxJobRoles    = 256
	MaxJobRoleSize = 256
)

// validateJob checks what the front chose: the id, the client limits and
// the size of the roles.
func validateJob(job Job) error {
	switch {
	case !jobIDRE.MatchString(job.ID):
		return &JobError{Field: "id", Reason: "must match " + jobIDRE.String()}
	case job.Timeout < 0:
		return &JobError{Field: "timeout", Reason: "negative"}
	case job.MaxOutputBytes < 0:
		return &JobError{Field: "max_output_bytes", Reason: "negative"}
	case len(job.Request.Roles) > MaxJobRoles:
		return &JobError{Field: "roles", Reason: fmt.Sprintf("more than %d", MaxJobRoles)}
	}
	for _, r := range job.Request.Roles {
		if len(r) > MaxJobRoleSize {
			return &JobError{Field: "roles", Reason: fmt.Sprintf("a role longer than %d bytes", MaxJobRoleSize)}
		}
	}
	return nil
}

// clampProfile lowers the profile's timeout and output cap to what the
// client asked for; it never raises them.
func clampProfile(p policy.Profile, timeout time.Duration, maxOut int64) policy.Profile {
	if timeout > 0 && timeout < p.Timeout {
		p.Timeout = timeout
	}
	if maxOut > 0 && maxOut < p.MaxOutputBytes {
		p.MaxOutputBytes = maxOut
	}
	return p
}

// buildSpec turns an allowed decision into the sandbox's Spec. Everything
// that matters for security comes from the decision, not from the job.
func buildSpec(job Job, d policy.Decision, lj *localJob) sandbox.Spec {
	spec := sandbox.Spec{
		ID:      job.ID,
		Subject: job.Request.Subject,
		Argv:    append([]string(nil), d.Argv...),
		Env:     append([]string(nil), d.Env...),
		Cwd:     d.Cwd,
		Mounts:  append([]policy.Mount(nil), d.Mounts...),
		Profile: clampProfile(*d.Profile, job.Timeout, job.MaxOutputBytes),
		Stdin:   job.Stdin,
		Stdout:  countingWriter{w: orDiscard(job.Stdout), n: &lj.bytes},
		Stderr:  countingWriter{w: orDiscard(job.Stderr), n: &lj.bytes},
		TTY:     d.TTY && d.Profile.TTY,
	}
	if spec.TTY {
		spec.Resize = job.Resize
	}
	return spec
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// countingWriter adds what passes through to a job's byte counter.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (l *Local) register(job Job, d policy.Decision, cancel context.CancelFunc) (*localJob, error) {
	lj := &localJob{cancel: cancel, info: RunningJob{
		ID:      job.ID,
		Subject: job.Request.Subject,
		Command: d.Command,
		Started: time.Now(),
	}}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.running[job.ID]; dup {
		return nil, fmt.Errorf("job %s: %w", job.ID, ErrDuplicateJob)
	}
	l.running[job.ID] = lj
	return lj, nil
}

func (l *Local) unregister(id string) {
	l.mu.Lock()
	delete(l.running, id)
	l.mu.Unlock()
}

// forwardSignals delivers the job's signals until stop is called; stop
// waits for the forwarding goroutine to end.
func (l *Local) forwardSignals(ctx context.Context, job Job, cancel context.CancelFunc) (stop func()) {
	if job.Signal == nil {
		return func() {}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case sig, ok := <-job.Signal:
				if !ok {
					return
				}
				l.deliver(job.ID, sig, cancel)
			}
		}
	}()
	return func() { close(done); <-ended }
}

// deliver sends one signal to a job's command.
func (l *Local) deliver(id string, sig syscall.Signal, cancel context.CancelFunc) {
	switch sig {
	case syscall.SIGKILL:
		cancel()
	case syscall.SIGTERM, syscall.SIGINT:
		s, ok := l.sb.(signaler)
		if !ok {
			l.log.Warn("sandbox cannot deliver signals; ending the job", "request_id", id, "signal", sig.String())
			cancel()
			return
		}
		if err := s.Signal(id, sig); err != nil {
			l.log.Warn("deliver signal", "request_id", id, "signal", sig.String(), "error", err)
		}
	default:
		l.log.Warn("signal not allowed for jobs; ignored", "request_id", id, "signal", sig.String())
	}
}

// List returns the running jobs, oldest first.
func (l *Local) List() []RunningJob {
	l.mu.Lock()
	out := make([]RunningJob, 0, len(l.running))
	for _, lj := range l.running {
		info := lj.info
		info.Bytes = lj.bytes.Load()
		out = append(out, info)
	}
	l.mu.Unlock()
	sortRunningJobs(out)
	return out
}

// sortRunningJobs orders a job listing by start time, then by id, so that
// Local and Client list the same jobs in the same order.
func sortRunningJobs(out []RunningJob) {
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
}

// Kill ends the running job with this id; its result says "killed".
func (l *Local) Kill(id string) error {
	l.mu.Lock()
	lj, ok := l.running[id]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("kill %q: %w", id, ErrJobNotFound)
	}
	lj.cancel()
	return nil
}

// KillAll ends every running job and returns how many there were.
func (l *Local) KillAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lj := range l.running {
		lj.cancel()
	}
	return len(l.running)
}

// commandOf names a request's command for listings before a decision.
func commandOf(req policy.Request) string {
	if req.Command != "" {
		return req.Command
	}
	if f := strings.Fields(req.Cmdline); len(f) > 0 {
		return f[0]
	}
	return ""
}

var (
	_ Runner   = (*Local)(nil)
	_ Sessions = (*Local)(nil)
)

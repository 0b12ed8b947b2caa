package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox/pid1"
)

// validID reports whether s is 1-64 of [A-Za-z0-9_.-], starting with a
// letter or digit.
func validID(s string) bool {
	return validName(s, 64, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	})
}

// Run runs spec in a fresh container and returns when the command and
// every process it started are gone and the container is destroyed. An
// error means the run could not be started (or its cleanup failed); a
// command that ran and failed is a Result with its exit code or signal.
// Cancelling ctx kills the container (EndedKilled).
//
// Spec.Stdout and Spec.Stderr must return from Write eventually (a writer
// that blocks forever blocks Run). A Spec.Stdin Read still blocked when the
// run ends is left to return on its own; the Manager waits for it in Close.
func (m *Manager) Run(ctx context.Context, spec Spec) (Result, error) {
	if err := m.acquire(); err != nil {
		return Result{}, err
	}
	defer m.runs.Done()
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("run not started: %w", err)
	}
	// Warm the cgroup semaphore while the run is prepared (trap 9).
	warmDone := m.warm.begin()
	defer warmDone()
	cfg, prog, err := m.prepare(ctx, &spec)
	if err != nil {
		return Result{}, err
	}
	defer m.releaseSeccomp(prog)
	id := cfg.Cgroups.Path[len(m.cfg.CgroupParent)+1:]
	watch, err := newDiskWatch(id, m.writablePaths(&spec))
	if err != nil {
		return Result{}, err
	}
	defer watch.close() // after execute's remove: the watcher no longer uses it
	r := &run{m: m, spec: &spec, id: id, cfg: cfg, seccomp: prog, started: warmDone, disk: watch}
	return r.execute(ctx)
}

// prepare validates spec, checks free space, creates the workspace and
// mount points and returns the container configuration and the profile's
// seccomp program (loaded by the container's PID 1).
func (m *Manager) prepare(ctx context.Context, spec *Spec) (*configs.Config, *seccompProgram, error) {
	if err := validateSpec(spec); err != nil {
		return nil, nil, err
	}
	p := &spec.Profile
	for _, d := range append([]string{m.cfg.StateRoot}, m.cfg.ReserveDirs...) {
		if err := checkFreeSpace(d, m.cfg.MinFreeBytes); err != nil {
			return nil, nil, err
		}
	}
	if err := m.skel.ensureUser(p.UID, p.GID); err != nil {
		return nil, nil, err
	}
	for _, mt := range spec.Mounts {
		if err := m.skel.ensureTarget(mt.Target); err != nil {
			return nil, nil, err
		}
		if mt.Workspace {
			if err := m.prepareWorkspace(ctx, mt, p); err != nil {
				return nil, nil, err
			}
		} else if err := m.prepareShared(mt); err != nil {
			return nil, nil, err
		}
	}
	prog, err := m.seccompFor(p)
	if err != nil {
		return nil, nil, err
	}
	id := fmt.Sprintf("%s%s-%d", containerPrefix, spec.ID, m.seq.Add(1))
	return buildConfig(configInput{
		ID: id, CgroupParent: m.cfg.CgroupParent, CgroupVersion: m.cfg.CgroupVersion,
		Rootfs: m.skel.root, Dev: m.skel.dev, Spec: spec,
	}), prog, nil
}

func (m *Manager) prepareWorkspace(ctx context.Context, mt policy.Mount, p *policy.Profile) error {
	if err := ensureWorkspace(mt, p.UID, p.GID); err != nil {
		return err
	}
	if p.WorkspaceBytes > 0 {
		if err := m.images.ensure(ctx, mt.Source, p.WorkspaceBytes, p.UID, p.GID); err != nil {
			return err
		}
		// The image bounds the user; the host file system holding the
		// (sparse) image is the one that must keep its reserve.
		return checkFreeSpace(m.cfg.WorkspaceImageRoot, m.cfg.MinFreeBytes)
	}
	return checkFreeSpace(mt.Source, m.cfg.MinFreeBytes)
}

// prepareShared checks a shared root: its source, and the reserve of its
// file system when the run may write to it.
func (m *Manager) prepareShared(mt policy.Mount) error {
	if err := checkSource(mt.Source); err != nil {
		return err
	}
	if mt.ReadOnly {
		return nil
	}
	return checkFreeSpace(mt.Source, m.cfg.MinFreeBytes)
}

// writablePaths lists a path on each host file system the run can write
// to, as prepare checks their reserve: for a workspace, the workspace
// image root when the profile has a workspace size (the sparse image grows
// there) or else the workspace directory; the source of a writable shared
// root. The disk watcher watches them while the run is active.
func (m *Manager) writablePaths(spec *Spec) []string {
	var out []string
	for _, mt := range spec.Mounts {
		switch {
		case mt.Workspace && spec.Profile.WorkspaceBytes > 0:
			out = append(out, m.cfg.WorkspaceImageRoot)
		case mt.Workspace || !mt.ReadOnly:
			out = append(out, mt.Source)
		}
	}
	return out
}

// validateSpec refuses a Spec that cannot be run safely.
func validateSpec(s *Spec) error {
	if s.ID == "" {
		s.ID = "run"
	}
	if !validID(s.ID) {
		return &SpecError{Field: "id", Reason: fmt.Sprintf("%q: want 1-64 of A-Z, a-z, 0-9, _, . and -, starting with a letter or digit", s.ID)}
	}
	if len(s.Argv) == 0 || !filepath.IsAbs(s.Argv[0]) {
		return &SpecError{Field: "argv", Reason: "argv[0] must be an absolute path"}
	}
	for _, a := range s.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return &SpecError{Field: "argv", Reason: "NUL byte in an argument"}
		}
	}
	envBytes := 0
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.IndexByte(e, 0) >= 0 {
			return &SpecError{Field: "env", Reason: "entries must be KEY=VALUE without NUL"}
		}
		envBytes += len(e) + 1
	}
	if envBytes > pid1.MaxEnvBytes-len("HOME=/root")-1 {
		return &SpecError{Field: "env", Reason: fmt.Sprintf("%d bytes: at most %d", envBytes, pid1.MaxEnvBytes)}
	}
	if s.Cwd == "" {
		s.Cwd = "/"
	}
	if !filepath.IsAbs(s.Cwd) || filepath.Clean(s.Cwd) != s.Cwd {
		return &SpecError{Field: "cwd", Reason: fmt.Sprintf("%q: want a clean absolute path", s.Cwd)}
	}
	for i, a := range s.Mounts {
		for _, b := range s.Mounts[i+1:] {
			if isUnder(a.Target, b.Target) || isUnder(b.Target, a.Target) {
				return &SpecError{Field: "mount target", Reason: fmt.Sprintf("%q and %q overlap", a.Target, b.Target)}
			}
		}
	}
	if s.TTY && !s.Profile.TTY {
		return &SpecError{Field: "tty", Reason: fmt.Sprintf("profile %q does not allow a terminal", s.Profile.Name)}
	}
	return validateProfile(&s.Profile)
}

// run is one execution.
type run struct {
	m    *Manager
	spec *Spec
	id   string
	cfg  *configs.Config
	// seccomp is the profile's program, loaded by the container's PID 1.
	seccomp *seccompProgram
	// started is called once the container is started (or failed to).
	started func()
	// disk is the run's entry in the disk watcher (nil: it writes to no
	// host file system).
	disk *diskWatch

	container *libcontainer.Container
	process   *libcontainer.Process
	io        *runIO
}

func (r *run) execute(ctx context.Context) (res Result, err error) {
	t0 := time.Now()
	r.io, err = newRunIO(r.spec)
	if err != nil {
		return Result{}, err
	}
	defer r.io.closeAll()
	err = r.start()
	r.started()
	if err != nil {
		return Result{}, err
	}
	res.StartLatency = time.Since(t0)
	defer func() {
		if derr := r.destroy(); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	defer r.m.track(r.spec.ID, r)()
	defer r.m.disk.add(r.disk)()
	r.io.afterStart()
	if r.spec.TTY {
		if err := r.io.receiveConsole(); err != nil {
			_ = r.container.Signal(unix.SIGKILL)
			_, _ = r.process.Wait() // reap the init
			return Result{}, err
		}
	}
	// abort ends output pacing when the run is killed or cancelled; after a
	// normal exit the rest of the output is still delivered at the rate.
	abort := make(chan struct{})
	var abortOnce sync.Once
	closeAbort := func() { abortOnce.Do(func() { close(abort) }) }
	gate := newOutputGate(r.spec.Profile.MaxOutputBytes, r.spec.Profile.OutputRate, r.spec.Profile.KeepOnOutputCap, abort)
	copiers := r.io.startCopiers(r.spec, gate, &r.m.bg)
	ended, state := r.supervise(ctx, gate)
	r.io.endRun()
	stop := context.AfterFunc(ctx, closeAbort)
	if ended != "" {
		closeAbort()
	}
	out := copiers.wait()
	stop()
	closeAbort()
	res.Duration = time.Since(t0)
	fillOutput(&res, out)
	status, serr := readInitStatus(r.io.statusR)
	ws, err := initOutcome(status, serr, state)
	if err != nil {
		// PID 1 failed (the command did not run, or could not be
		// supervised): a start error, never a result.
		return Result{}, &StartError{ID: r.id, Attempts: 1, Err: err}
	}
	fillExit(&res, ws)
	counters := readCounters(r.m.cfg.CgroupVersion, r.cfg.Cgroups.Path)
	res.EndedBy = endedBy(ended, &res, counters, cpuTime(state), r.spec.Profile.CPUSeconds)
	if r.spec.Finished != nil {
		r.spec.Finished(res) // before the deferred destroy
	}
	return res, nil
}

// supervise waits for the command, enforcing the timeout (TERM, then KILL
// after the grace), the caller's cancellation and the output cap. It
// returns what it ended the run for ("" when the command exited on its own).
func (r *run) supervise(ctx context.Context, gate *outputGate) (EndedBy, *os.ProcessState) {
	waitCh := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := r.process.Wait()
		waitCh <- st
	}()
	p := &r.spec.Profile
	timeout := time.NewTimer(p.Timeout)
	defer timeout.Stop()
	var grace <-chan time.Time
	var ended EndedBy
	var exited *os.ProcessState
	// kill ends the run for why, unless the command has already exited
	// (an exit and a limit ready together: the exit wins) or the run is
	// already ending for another reason (the first reason stays).
	kill := func(why EndedBy) {
		select {
		case exited = <-waitCh:
			return
		default:
		}
		if ended == "" {
			ended = why
		}
		_ = r.container.Signal(unix.SIGKILL)
	}
	capHit, done, diskFull := gate.capHit, ctx.Done(), r.disk.fullCh()
	for exited == nil {
		select {
		case st := <-waitCh:
			return ended, st
		case <-timeout.C:
			if ended != "" {
				continue // already killed for another reason
			}
			ended = EndedTimeout
			_ = r.process.Signal(unix.SIGTERM)
			g := time.NewTimer(p.KillGrace)
			defer g.Stop()
			grace = g.C
		case <-grace:
			grace = nil
			kill(EndedTimeout)
		case <-done:
			done = nil
			kill(EndedKilled)
		case <-capHit:
			capHit = nil
			kill(EndedOutput)
		case <-diskFull:
			diskFull = nil
			kill(EndedDiskFull)
		}
	}
	return ended, exited
}

// endedBy decides what ended the run: the supervisor's reason first, then
// the cgroup's counters, then the signal. RLIMIT_CPU shows as SIGXCPU at
// the soft limit, or as SIGKILL at the hard limit when the command handles
// or ignores SIGXCPU; either counts as "cpu" only when the CPU time of the
// command and its children reached the limit. The rusage the kernel
// reports can trail the exact run time its RLIMIT_CPU check uses by a few
// percent (seen: 975 ms at a 1 s limit), hence cpuLimitSlack.
func endedBy(supervisor EndedBy, res *Result, c cgroupCounters, cpu time.Duration, cpuLimit uint64) EndedBy {
	cpuSignal := res.Signal == "SIGXCPU" || res.Signal == "SIGKILL"
	switch {
	case supervisor != "":
		return supervisor
	case c.OOMKills > 0:
		return EndedMemory
	case cpuSignal && cpu >= time.Duration(cpuLimit)*time.Second*cpuLimitSlack/100:
		return EndedCPU
	case c.PidsMax > 0 && res.ExitCode != 0:
		return EndedPids
	}
	return EndedExit
}

// cpuLimitSlack is the percentage of the CPU limit a SIGXCPU or SIGKILL
// death needs to count as "cpu".
const cpuLimitSlack = 90

// cpuTime is the user+system time of the container's PID 1 and every
// process it reaped: the command and its children.
func cpuTime(st *os.ProcessState) time.Duration {
	if st == nil {
		return 0
	}
	return st.UserTime() + st.SystemTime()
}

// fillExit sets the exit code (-1 when killed) and signal of the command.
func fillExit(res *Result, ws syscall.WaitStatus) {
	switch {
	case ws.Signaled():
		res.ExitCode = -1
		res.Signal = signalName(ws.Signal())
	default:
		res.ExitCode = ws.ExitStatus()
	}
}

func fillOutput(res *Result, out [2]streamStats) {
	res.StdoutBytes, res.StdoutTruncated = out[0].Bytes, out[0].Truncated
	res.StderrBytes, res.StderrTruncated = out[1].Bytes, out[1].Truncated
}

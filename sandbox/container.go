package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// start creates the container and starts the command in it, on a starter
// thread (trap 6). A start failure of the known transient kind (the init's
// pipe broke) is retried once with a fresh container; any failure leaves
// nothing behind: every pid in the cgroup is killed (trap 7) and the
// container destroyed.
func (r *run) start() error {
	var err error
	attempts := 0
	for attempts < 2 {
		attempts++
		r.m.starters.do(func() { err = r.startOnce() })
		if err == nil {
			return nil
		}
		r.m.log.Warn("container start failed", "subject", r.spec.Subject, "container", r.id, "attempt", attempts, "err", err)
		if cerr := r.cleanupFailedStart(); cerr != nil {
			return &StartError{ID: r.id, Attempts: attempts, Err: errors.Join(err, cerr)}
		}
		if !isTransientStart(err) {
			break
		}
	}
	return &StartError{ID: r.id, Attempts: attempts, Err: err}
}

func (r *run) startOnce() error {
	c, err := libcontainer.Create(r.m.cfg.containersDir(), r.id, r.cfg)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	r.container = c
	args, err := initArgs(r.spec)
	if err != nil {
		return err
	}
	// PID 1 (package pid1) starts the command: its environment travels in
	// a memfd, PID 1's own stays empty (libcontainer adds HOME).
	p := &libcontainer.Process{
		Args:       args,
		Cwd:        r.spec.Cwd,
		UID:        int(r.spec.Profile.UID),
		GID:        int(r.spec.Profile.GID),
		Init:       true,
		ExtraFiles: []*os.File{r.io.statusW, r.seccomp.file, r.io.env}, // pid1.StatusFD, FilterFD, EnvFD
	}
	if r.spec.TTY {
		// Output arrives on the pty; the size starts at 80x24 until a
		// Resize says otherwise.
		p.ConsoleSocket, p.ConsoleWidth, p.ConsoleHeight = r.io.consoleChild, 80, 24
	} else {
		p.Stdin, p.Stdout, p.Stderr = r.io.stdinR, r.io.stdoutW, r.io.stderrW
	}
	r.process = p
	if err := c.Run(p); err != nil {
		return fmt.Errorf("run init: %w", err)
	}
	return nil
}

// isTransientStart reports the rare start failure of trap 6: the init's
// pipe broke or closed before it sent its first message.
func isTransientStart(err error) bool {
	if errors.Is(err, syscall.EPIPE) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "broken pipe") || strings.Contains(s, "got 0 of")
}

// cleanupFailedStart kills whatever the failed start left and destroys
// the container, so a retry starts from nothing.
func (r *run) cleanupFailedStart() error {
	err := r.destroy()
	if r.process != nil {
		// Reap the init if it was started (destroy killed it); a no-op
		// when libcontainer already waited for it or never started it.
		_, _ = r.process.Wait()
	}
	r.container, r.process = nil, nil
	return err
}

// destroy kills every process of the run and removes its container: the
// cgroup directories in every hierarchy and the state directory. It
// checks that nothing is left.
func (r *run) destroy() error {
	cgPath := r.cfg.Cgroups.Path
	mounts := r.m.cgMounts
	var errs []error
	for _, mnt := range mounts {
		dir := filepath.Join(mnt, cgPath)
		if err := killCgroupProcs(context.Background(), dir); err != nil {
			errs = append(errs, err)
		}
	}
	if r.container != nil {
		if err := r.container.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("destroy container %s: %w", r.id, err))
		}
	}
	// Whatever libcontainer did not remove (a container that died during
	// start, the controller-less hierarchies), remove here.
	for _, mnt := range mounts {
		dir := filepath.Join(mnt, cgPath)
		if _, err := os.Stat(dir); err == nil {
			if err := removeCgroupDir(context.Background(), dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	stateDir := filepath.Join(r.m.cfg.containersDir(), r.id)
	if err := os.RemoveAll(stateDir); err != nil {
		errs = append(errs, fmt.Errorf("remove state %s: %w", stateDir, err))
	}
	if len(errs) > 0 {
		r.m.log.Error("container cleanup incomplete", "subject", r.spec.Subject, "container", r.id, "err", errors.Join(errs...))
		return fmt.Errorf("cleanup container %s: %w", r.id, errors.Join(errs...))
	}
	return nil
}

// signalName is unix.SignalName with a fallback.
func signalName(s unix.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}

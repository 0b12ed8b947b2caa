package sandbox

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signal delivers sig to the command of every running Spec with this ID:
// SIGINT, SIGTERM and SIGHUP through the container's PID 1 (package
// pid1), which forwards them to the command, so they act as anywhere else
// (a command without a handler dies of them); SIGKILL ends the whole
// container. Anything else is ErrSignal. A Spec.ID
// with nothing running is ErrNoRun. The run's Result then says how the
// command ended (a SIGKILL sent here shows as signal SIGKILL, ended_by
// exit; cancel the run's context to have it reported as killed).
func (m *Manager) Signal(id string, sig syscall.Signal) error {
	switch sig {
	case unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGKILL:
	default:
		return fmt.Errorf("%w: %v", ErrSignal, sig)
	}
	m.mu.Lock()
	runs := make([]*run, 0, len(m.active[id]))
	for r := range m.active[id] {
		runs = append(runs, r)
	}
	m.mu.Unlock()
	if len(runs) == 0 {
		return fmt.Errorf("%w: %q", ErrNoRun, id)
	}
	var err error
	for _, r := range runs {
		if sig == unix.SIGKILL {
			err = r.container.Signal(sig)
		} else {
			err = r.process.Signal(sig)
		}
	}
	if errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%w: %q has just ended", ErrNoRun, id)
	}
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	return nil
}

// track registers a started run for Signal; the returned func removes it.
func (m *Manager) track(id string, r *run) func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[id] == nil {
		m.active[id] = map[*run]struct{}{}
	}
	m.active[id][r] = struct{}{}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.active[id], r)
		if len(m.active[id]) == 0 {
			delete(m.active, id)
		}
	}
}

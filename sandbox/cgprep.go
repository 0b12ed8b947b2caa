package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// cgroupPrep creates the cgroup directories of the next run ahead of time
// (cgroup v1 only). libcontainer creates a container's directory in each
// of the ten v1 hierarchies while the new init waits for it, ~0.4-0.5 ms
// of mkdir calls on the start path of every run here; its os.MkdirAll
// finds them already there instead. The directories are created by this
// process as libcontainer would create them (mode 0755, under the
// instance's parent cgroup), hold no process and carry no limit until the
// run's libcontainer sets its own; each is used by exactly one run and
// removed with it (run.destroy), never reused. Unused ones are removed by
// stop, or by the next start's sweep after a crash (their names carry
// containerPrefix like every container's).
//
// One set is kept ready and one more is built behind it; a run that finds
// none ready (a burst) gets a fresh id and libcontainer creates the
// directories as before. On cgroup v2 (one hierarchy, and the parent's
// subtree_control that libcontainer's fs2 manager sets up) there is no
// prep: nothing measured, nothing changed.
type cgroupPrep struct {
	log    *slog.Logger
	mounts []string // every cgroup hierarchy's mount point
	parent string   // the instance's cgroup parent (absolute)
	newID  func() string

	ready chan string // ids whose directories exist in every hierarchy
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once
}

// cgroupPrepRetry is the pause after a failed creation.
const cgroupPrepRetry = time.Second

// newCgroupPrep starts the prep's goroutine (owned by the Manager, ended
// by stop); newID returns a fresh container id.
func newCgroupPrep(version int, mounts []string, parent string, newID func() string, log *slog.Logger) *cgroupPrep {
	if version != 1 {
		return nil
	}
	p := &cgroupPrep{
		log: log, mounts: mounts, parent: parent, newID: newID,
		ready: make(chan string, 1), stopc: make(chan struct{}), done: make(chan struct{}),
	}
	go p.loop()
	return p
}

// take returns the id of a container whose cgroup directories exist, or
// false when none is ready (or p is nil).
func (p *cgroupPrep) take() (string, bool) {
	if p == nil {
		return "", false
	}
	select {
	case id := <-p.ready:
		return id, true
	default:
		return "", false
	}
}

// stop ends the goroutine and removes the directories no run took. It
// returns an error naming what could not be removed.
func (p *cgroupPrep) stop() error {
	if p == nil {
		return nil
	}
	p.once.Do(func() { close(p.stopc) })
	<-p.done
	var errs []error
	for {
		select {
		case id := <-p.ready:
			errs = append(errs, p.remove(id))
		default:
			return errors.Join(errs...)
		}
	}
}

func (p *cgroupPrep) loop() {
	defer close(p.done)
	for {
		id := p.newID()
		if err := p.create(id); err != nil {
			p.log.Warn("cgroup prep: creating the next run's cgroups failed; runs create their own", "container", id, "err", err)
			if rerr := p.remove(id); rerr != nil {
				p.log.Error("cgroup prep: cleanup failed", "container", id, "err", rerr)
			}
			select {
			case <-p.stopc:
				return
			case <-time.After(cgroupPrepRetry):
				continue
			}
		}
		select {
		case p.ready <- id:
		case <-p.stopc:
			if err := p.remove(id); err != nil {
				p.log.Error("cgroup prep: cleanup failed", "container", id, "err", err)
			}
			return
		}
	}
}

// create makes id's directory in every hierarchy (and the parent where it
// is missing).
func (p *cgroupPrep) create(id string) error {
	for _, mnt := range p.mounts {
		dir := filepath.Join(mnt, p.parent, id)
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("cgroup parent: %w", err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// remove deletes id's directories (they hold no process).
func (p *cgroupPrep) remove(id string) error {
	var errs []error
	for _, mnt := range p.mounts {
		dir := filepath.Join(mnt, p.parent, id)
		if err := rmdirRetry(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

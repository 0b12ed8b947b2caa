package sandbox

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The free-space reserve is checked when a run starts (prepare), but a
// started run keeps writing: a workspace without a size limit, sparse
// workspace images that together overcommit their file system, many runs
// that all passed the start check at once. The disk watcher closes that
// gap. While at least one run that can write to host storage is active,
// one goroutine of the Manager calls fstatfs once per tick on each file
// system such a run writes to (deduplicated by device id), through an
// O_PATH descriptor opened when the run started: of the workspace
// directory for a workspace without a size limit, of the workspace image
// root for one with a workspace image (the sparse image grows there), of
// each writable shared root.
// These are the file systems the start check covers for the run; the state
// root's and the ReserveDirs' are among them exactly when a run writes to
// them (same device). When one has less than Config.MinFreeBytes available,
// every active run writing to it is killed (there is no per-run
// attribution of the used space) and ends with EndedDiskFull; new runs are
// refused by the start check until space is freed. When no descriptor of a
// file system can be measured, the watcher fails closed: its runs are
// killed as if it were full.
//
// The window: a run is killed at most diskWatchInterval (plus the SIGKILL's
// delivery) after the file system crossed the threshold, so a writer can
// put about diskWatchInterval × its write rate below the threshold
// (100 ms at 1 GB/s: 100 MB; all concurrent writers together). MinFreeBytes
// must cover that; the default 512 MiB does for writers up to ~5 GB/s.
const diskWatchInterval = 100 * time.Millisecond

// watchedFS is one host file system a run writes to: its device id and an
// O_PATH descriptor of the run's directory on it, opened when the run
// starts, so that neither a rename nor the removal of that directory nor a
// symbolic link swapped in stops the watching (fstatfs on the descriptor).
type watchedFS struct {
	dev  uint64
	path string // for the log only
	fd   int
}

// diskWatch is one active run's entry in the watcher.
type diskWatch struct {
	id   string
	fs   []watchedFS
	full chan struct{} // closed when a file system of fs fell below the reserve
	once sync.Once
}

// fullCh is the channel closed when the run must end for a full disk; nil
// (never ready) for a run without host storage.
func (d *diskWatch) fullCh() <-chan struct{} {
	if d == nil {
		return nil
	}
	return d.full
}

// writesTo reports whether the run writes to the file system dev.
func (d *diskWatch) writesTo(dev uint64) bool {
	for _, f := range d.fs {
		if f.dev == dev {
			return true
		}
	}
	return false
}

// close releases the descriptors (after the watcher stopped watching d).
func (d *diskWatch) close() {
	if d == nil {
		return
	}
	for _, f := range d.fs {
		_ = unix.Close(f.fd)
	}
}

// diskWatcher polls the free space of the file systems active runs write
// to. Its goroutine starts with the first watched run and is told to end
// when the last one is removed; wait (Close) waits for it. A check pass
// runs under mu, so a run's descriptors stay open while they are used.
type diskWatcher struct {
	min      uint64
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	runs   map[*diskWatch]struct{}
	stop   chan struct{}   // of the running goroutine; nil when none runs
	warned map[uint64]bool // file systems whose fstatfs failed (logged once)
	wg     sync.WaitGroup
}

func newDiskWatcher(min uint64, interval time.Duration, log *slog.Logger) *diskWatcher {
	return &diskWatcher{min: min, interval: interval, log: log, runs: map[*diskWatch]struct{}{}, warned: map[uint64]bool{}}
}

// newDiskWatch returns the watch entry of a run writing to paths (nil when
// it writes to no host file system), with each path's device id and an
// O_PATH descriptor of it. The caller closes it (close) after the run.
func newDiskWatch(id string, paths []string) (*diskWatch, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	d := &diskWatch{id: id, full: make(chan struct{})}
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("disk watch: open %s: %w", p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			_ = unix.Close(fd)
			d.close()
			return nil, fmt.Errorf("disk watch: stat %s: %w", p, err)
		}
		if d.writesTo(st.Dev) {
			_ = unix.Close(fd)
			continue
		}
		d.fs = append(d.fs, watchedFS{dev: st.Dev, path: p, fd: fd})
	}
	return d, nil
}

// add starts watching d (nil: nothing to watch) and returns the function
// that stops watching it (idempotent).
func (w *diskWatcher) add(d *diskWatch) func() {
	if d == nil {
		return func() {}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runs[d] = struct{}{}
	if w.stop == nil {
		w.stop = make(chan struct{})
		w.wg.Add(1)
		go w.loop(w.stop)
	}
	return func() { w.remove(d) }
}

func (w *diskWatcher) remove(d *diskWatch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.runs[d]; !ok {
		return
	}
	delete(w.runs, d)
	if len(w.runs) == 0 && w.stop != nil {
		close(w.stop)
		w.stop = nil
	}
}

// wait waits for the goroutine to end (after the last remove).
func (w *diskWatcher) wait() { w.wg.Wait() }

func (w *diskWatcher) loop(stop <-chan struct{}) {
	defer w.wg.Done()
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.checkAll()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// checkAll checks each watched file system once, through the descriptor
// of any run writing to it.
func (w *diskWatcher) checkAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	done := map[uint64]bool{}
	for d := range w.runs {
		for _, f := range d.fs {
			if !done[f.dev] {
				done[f.dev] = true
				w.check(f.dev)
			}
		}
	}
}

// check measures the free space of the file system dev and kills the runs
// writing to it when it is below the reserve. It fails closed: when no
// run's descriptor can be measured, the reserve cannot be kept, and those
// runs are killed too.
func (w *diskWatcher) check(dev uint64) {
	var lastErr error
	for d := range w.runs {
		for _, f := range d.fs {
			if f.dev != dev {
				continue
			}
			var st unix.Statfs_t
			if err := unix.Fstatfs(f.fd, &st); err != nil {
				lastErr = err
				continue
			}
			if w.warned[dev] {
				delete(w.warned, dev)
				w.log.Info("disk watch: free space measurable again", "path", f.path)
			}
			if free := st.Bavail * uint64(st.Bsize); free < w.min {
				w.full(dev, f.path, free)
			}
			return
		}
	}
	if !w.warned[dev] {
		w.warned[dev] = true
		w.log.Error("disk watch: fstatfs failed: killing the runs writing there", "dev", dev, "err", lastErr)
	}
	w.full(dev, "", 0)
}

// full ends every watched run writing to the file system dev (under mu).
func (w *diskWatcher) full(dev uint64, path string, free uint64) {
	for d := range w.runs {
		if !d.writesTo(dev) {
			continue
		}
		d.once.Do(func() {
			close(d.full)
			w.log.Warn("disk below the free-space reserve: killing run", "id", d.id, "path", path,
				"free_bytes", free, "min_free_bytes", w.min)
		})
	}
}

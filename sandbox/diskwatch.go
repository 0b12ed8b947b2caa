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
// one goroutine of the Manager calls statfs once per tick on each file
// system such a run writes to (deduplicated by device id): the workspace
// directory's for a workspace without a size limit, the workspace image
// root's for one with a workspace image (the sparse image grows there).
// These are the file systems the start check covers for the run; the state
// root's and the ReserveDirs' are among them exactly when a run writes to
// them (same device). When one has less than Config.MinFreeBytes available,
// every active run writing to it is killed (there is no per-run
// attribution of the used space) and ends with EndedDiskFull; new runs are
// refused by the start check until space is freed.
//
// The window: a run is killed at most diskWatchInterval (plus the SIGKILL's
// delivery) after the file system crossed the threshold, so a writer can
// put about diskWatchInterval × its write rate below the threshold
// (100 ms at 1 GB/s: 100 MB; all concurrent writers together). MinFreeBytes
// must cover that; the default 512 MiB does for writers up to ~5 GB/s.
const diskWatchInterval = 100 * time.Millisecond

// watchedFS is one host file system a run writes to: its device id and a
// path on it for statfs.
type watchedFS struct {
	dev  uint64
	path string
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

// diskWatcher polls the free space of the file systems active runs write
// to. Its goroutine starts with the first watched run and is told to end
// when the last one is removed; wait (Close) waits for it.
type diskWatcher struct {
	min      uint64
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	runs map[*diskWatch]struct{}
	devs map[uint64]*devRef // file systems of the watched runs
	stop chan struct{}      // of the running goroutine; nil when none runs
	wg   sync.WaitGroup
}

type devRef struct {
	path string
	n    int // watched runs writing to it
}

func newDiskWatcher(min uint64, interval time.Duration, log *slog.Logger) *diskWatcher {
	return &diskWatcher{min: min, interval: interval, log: log, runs: map[*diskWatch]struct{}{}, devs: map[uint64]*devRef{}}
}

// newDiskWatch returns the watch entry of a run writing to paths (nil when
// it writes to no host file system), with each path's device id.
func newDiskWatch(id string, paths []string) (*diskWatch, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	d := &diskWatch{id: id, full: make(chan struct{})}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return nil, fmt.Errorf("disk watch: stat %s: %w", p, err)
		}
		if !d.writesTo(st.Dev) {
			d.fs = append(d.fs, watchedFS{dev: st.Dev, path: p})
		}
	}
	return d, nil
}

// add starts watching d (nil: nothing to watch) and returns the function
// that stops watching it.
func (w *diskWatcher) add(d *diskWatch) func() {
	if d == nil {
		return func() {}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runs[d] = struct{}{}
	for _, f := range d.fs {
		if ref := w.devs[f.dev]; ref != nil {
			ref.n++
		} else {
			w.devs[f.dev] = &devRef{path: f.path, n: 1}
		}
	}
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
	delete(w.runs, d)
	for _, f := range d.fs {
		if ref := w.devs[f.dev]; ref != nil {
			if ref.n--; ref.n == 0 {
				delete(w.devs, f.dev)
			}
		}
	}
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
	var fss []watchedFS
	warned := map[uint64]bool{}
	for {
		fss = w.fileSystems(fss[:0])
		for _, f := range fss {
			w.check(f, warned)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// fileSystems appends the watched file systems to buf.
func (w *diskWatcher) fileSystems(buf []watchedFS) []watchedFS {
	w.mu.Lock()
	defer w.mu.Unlock()
	for dev, ref := range w.devs {
		buf = append(buf, watchedFS{dev: dev, path: ref.path})
	}
	return buf
}

// check calls statfs on f and kills the runs writing to it when it is
// below the reserve. A failing statfs is logged once per file system.
func (w *diskWatcher) check(f watchedFS, warned map[uint64]bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(f.path, &st); err != nil {
		if !warned[f.dev] {
			warned[f.dev] = true
			w.log.Warn("disk watch: statfs failed; free space not watched", "path", f.path, "err", err)
		}
		return
	}
	if free := st.Bavail * uint64(st.Bsize); free < w.min {
		w.full(f, free)
	}
}

// full ends every watched run writing to the file system f.
func (w *diskWatcher) full(f watchedFS, free uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := range w.runs {
		if !d.writesTo(f.dev) {
			continue
		}
		d.once.Do(func() {
			close(d.full)
			w.log.Warn("disk below the free-space reserve: killing run", "id", d.id, "path", f.path,
				"free_bytes", free, "min_free_bytes", w.min)
		})
	}
}

package sandbox

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Trap 9: on cgroup v1 the first write to a cgroup.procs file after an idle
// period waits for an RCU grace period (the kernel's global threadgroup
// rwsem leaves its fast mode for a writer), 5-20 ms here; writes in quick
// succession take microseconds. libcontainer moves every new init into its
// cgroups, so a run that starts after an idle spell paid that wait, and
// with back-to-back runs ~20 ms apart most runs did.
//
// cgroupWarmer keeps the semaphore out of its idle state while runs are
// starting: every warmPeriod its goroutine, locked to its own OS thread,
// writes that thread's id to the tasks file of the cgroup the thread is
// already in (a migration to where it is: nothing moves), which takes the
// semaphore for writing. The first such write pays the grace period in
// the background, overlapping with the run's preparation; the container's
// own writes then find the semaphore ready. It stops warmLinger after the
// last start. It changes nothing about a container's cgroups or isolation,
// nor about any other thread; a failing write only loses the speed-up
// (logged once).
type cgroupWarmer struct {
	log   *slog.Logger
	mount string // mount point of the v1 hierarchy used
	name  string // its controller list as in /proc/thread-self/cgroup

	mu     sync.Mutex
	active int       // starts in progress
	last   time.Time // end of the latest start
	failed bool      // a write failed: logged once

	wake  chan struct{}
	done  chan struct{}
	ended chan struct{}
}

const (
	// warmPeriod is under a grace period here (5-20 ms).
	warmPeriod = 4 * time.Millisecond
	// warmLinger keeps the semaphore warm between runs of a server busy
	// at one run a second or more; while lingering a tick costs a few
	// microseconds (~0.1% of a CPU).
	warmLinger = time.Second
)

// newCgroupWarmer returns a warmer for the first v1 hierarchy in mounts
// (pids preferred), or nil when there is none. On cgroup v2 there is no
// warmer: the same semaphore exists there, but nothing about v2 can be
// measured on this host. Its goroutine runs until stop.
func newCgroupWarmer(version int, mounts []string, log *slog.Logger) *cgroupWarmer {
	if version != 1 {
		return nil
	}
	mount := ""
	for _, m := range mounts {
		switch filepath.Base(m) {
		case "pids":
			mount = m
		case "memory", "cpu", "devices", "freezer":
			if mount == "" {
				mount = m
			}
		}
	}
	if mount == "" {
		return nil
	}
	w := &cgroupWarmer{
		log: log, mount: mount, name: filepath.Base(mount),
		wake: make(chan struct{}, 1), done: make(chan struct{}), ended: make(chan struct{}),
	}
	go w.loop()
	return w
}

// begin marks a container start as coming; the returned function marks it
// done (call it once).
func (w *cgroupWarmer) begin() func() {
	if w == nil {
		return func() {}
	}
	w.mu.Lock()
	w.active++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.active--
			w.last = time.Now()
			w.mu.Unlock()
		})
	}
}

// stop ends the goroutine and waits for it.
func (w *cgroupWarmer) stop() {
	if w == nil {
		return
	}
	close(w.done)
	<-w.ended
}

func (w *cgroupWarmer) loop() {
	defer close(w.ended)
	// Never unlocked: the thread ends with the goroutine. Its id and its
	// cgroup stay the same for every write.
	runtime.LockOSThread()
	tid := []byte(strconv.Itoa(unix.Gettid()))
	for {
		select {
		case <-w.done:
			return
		case <-w.wake:
		}
		if !w.warm(tid) {
			return
		}
	}
}

// warm touches the semaphore every warmPeriod while starts are active or
// recent. It reports false when the warmer was stopped.
func (w *cgroupWarmer) warm(tid []byte) bool {
	t := time.NewTicker(warmPeriod)
	defer t.Stop()
	var tasks *os.File
	defer func() {
		if tasks != nil {
			tasks.Close()
		}
	}()
	for w.busy() {
		tasks = w.touch(tasks, tid)
		select {
		case <-w.done:
			return false
		case <-t.C:
		}
	}
	return true
}

func (w *cgroupWarmer) busy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.active > 0 || time.Since(w.last) < warmLinger
}

// touch writes tid to tasks, the tasks file of the thread's own cgroup in
// the hierarchy (opened when nil), and returns the file for the next
// touch. The file is looked up again at the start of every warm spell and
// after a failed write, so the thread never moves itself back to a cgroup
// it was moved out of.
func (w *cgroupWarmer) touch(tasks *os.File, tid []byte) *os.File {
	var err error
	if tasks == nil {
		var dir string
		if dir, err = ownCgroup(w.name); err == nil {
			tasks, err = os.OpenFile(filepath.Join(w.mount, dir, "tasks"), os.O_WRONLY, 0)
		}
	}
	if err == nil {
		_, err = tasks.Write(tid)
	}
	if err == nil {
		return tasks
	}
	if tasks != nil {
		tasks.Close()
	}
	w.mu.Lock()
	first := !w.failed
	w.failed = true
	w.mu.Unlock()
	if first {
		w.log.Warn("cgroup warm-up write failed; container starts may wait for RCU grace periods", "hierarchy", w.mount, "err", err)
	}
	return nil
}

// ownCgroup is the calling thread's cgroup path in the v1 hierarchy whose
// controller list is name, from /proc/thread-self/cgroup.
func ownCgroup(name string) (string, error) {
	data, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		_, rest, _ := bytes.Cut(sc.Bytes(), []byte(":"))
		ctrl, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		for _, c := range bytes.Split(ctrl, []byte(",")) {
			if string(c) == name {
				return filepath.Clean("/" + string(path)), nil
			}
		}
	}
	return "", os.ErrNotExist
}

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// containerPrefix starts every container id (and so every cgroup directory
// this package creates); the sweep removes nothing else.
const containerPrefix = "eg-"

// sweep removes what a crashed earlier process of this instance left:
// containers in the state root (their processes killed), cgroup
// directories under the cgroup parent in every hierarchy (the cgroup2
// "unified" one of the hybrid layout included: trap 8 and 10), mounts
// under the state root and workspace images still mounted. It logs each
// thing it removes. The caller holds the instance lock, so nothing swept
// belongs to a live process.
func (m *Manager) sweep(ctx context.Context) error {
	var errs []error
	errs = append(errs, m.sweepContainers())
	errs = append(errs, m.sweepCgroups(ctx))
	errs = append(errs, m.sweepMounts())
	for _, d := range []string{m.cfg.skelDir(), m.cfg.rootfsDir(), m.cfg.devDir()} {
		if _, err := os.Stat(d); err == nil {
			m.log.Info("sweep: removing old root skeleton", "path", d)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) sweepContainers() error {
	dir := m.cfg.containersDir()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if c, err := libcontainer.Load(dir, id); err == nil {
			_ = c.Signal(unix.SIGKILL)
			// Up to ~1 s for the init to die; Load re-reads its state.
			for i := 0; i < 500; i++ {
				fresh, err := libcontainer.Load(dir, id)
				if err != nil {
					break
				}
				c = fresh
				if st, err := c.Status(); err != nil || st == libcontainer.Stopped {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			if err := c.Destroy(); err != nil {
				m.log.Warn("sweep: destroy container", "container", id, "err", err)
			}
		}
		if err := os.RemoveAll(filepath.Join(dir, id)); err != nil {
			errs = append(errs, fmt.Errorf("remove container state %s: %w", id, err))
			continue
		}
		m.log.Info("sweep: removed leftover container", "container", id)
	}
	return errors.Join(errs...)
}

// cgroupMounts lists the mount points of every cgroup hierarchy.
func cgroupMounts() ([]string, error) {
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Mountpoint)
	}
	return out, nil
}

func (m *Manager) sweepCgroups(ctx context.Context) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, mnt := range mounts {
		parent := filepath.Join(mnt, m.cfg.CgroupParent)
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue // this hierarchy has no parent directory: nothing left
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), containerPrefix) {
				continue // not one of ours: a misconfigured parent is never emptied
			}
			dir := filepath.Join(parent, e.Name())
			if err := removeCgroupDir(ctx, dir); err != nil {
				errs = append(errs, err)
				continue
			}
			m.log.Info("sweep: removed leftover cgroup", "path", dir)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupDir kills every process in the cgroup dir (and its
// children), then removes the directories, deepest first.
func removeCgroupDir(ctx context.Context, dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := killCgroupProcs(ctx, d); err != nil {
			return err
		}
		if err := rmdirRetry(d); err != nil {
			return err
		}
	}
	return nil
}

// killCgroupProcs SIGKILLs every pid listed in dir/cgroup.procs until the
// list is empty (trap 7: a failed start can leave an init behind).
func killCgroupProcs(ctx context.Context, dir string) error {
	for i := 0; ; i++ {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			if os.IsNotExist(err) || errors.Is(err, unix.ENODEV) {
				return nil
			}
			return fmt.Errorf("read %s/cgroup.procs: %w", dir, err)
		}
		pids := strings.Fields(string(data))
		if len(pids) == 0 {
			return nil
		}
		if i >= 500 || ctx.Err() != nil {
			return fmt.Errorf("cgroup %s: %d processes survive SIGKILL", dir, len(pids))
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 0 {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func rmdirRetry(dir string) error {
	var err error
	for range 100 {
		err = unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// sweepMounts detaches mounts under the state root and workspace images
// (loop devices backed by a file under the image root) left mounted.
func (m *Manager) sweepMounts() error {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	var targets []string
	for _, i := range infos {
		if isUnder(i.Mountpoint, m.cfg.StateRoot) && i.Mountpoint != m.cfg.StateRoot {
			targets = append(targets, i.Mountpoint)
			continue
		}
		if strings.HasPrefix(i.Source, "/dev/loop") {
			backing, err := os.ReadFile("/sys/block/" + filepath.Base(i.Source) + "/loop/backing_file")
			if err == nil && isUnder(strings.TrimSpace(string(backing)), m.cfg.WorkspaceImageRoot) {
				targets = append(targets, i.Mountpoint)
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	var errs []error
	for _, t := range targets {
		if err := unix.Unmount(t, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", t, err))
			continue
		}
		m.log.Info("sweep: unmounted leftover mount", "path", t)
	}
	return errors.Join(errs...)
}

package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// The cgroup parent is configurable (sandbox.cgroup_parent), e.g.
// /system.slice/execgate.service/sandboxes, so parts of it may belong to
// someone else: systemd, the service, another instance. New creates the
// parent in every hierarchy one component at a time and records the
// directories whose mkdir it made (an existing one, EEXIST, is never
// recorded); Close removes only those, deepest first, and only when empty.
// The record is also written into the cgroup parent's lock file (held by
// one Manager at a time, root-only, on tmpfs): after a crash, the next
// Manager of the same parent takes the directories the dead one created
// as its own (adoptCgroupParent), so its Close removes them too.

// makeCgroupParent creates parent under every hierarchy in mounts and
// returns the directories it created, shallowest first within each
// hierarchy. A hierarchy where a component cannot be created is logged
// and skipped (a run that needs it fails with libcontainer's error). A
// component that vanishes between two mkdirs (another instance's Close
// removed a shared ancestor) is retried.
func makeCgroupParent(mounts []string, parent string, log *slog.Logger) []string {
	var created []string
	for _, mnt := range mounts {
		var err error
		for range 3 {
			var dirs []string
			dirs, err = mkdirComponents(mnt, parent)
			created = append(created, dirs...)
			if !errors.Is(err, unix.ENOENT) {
				break
			}
		}
		if err != nil {
			log.Warn("cgroup parent not created in a hierarchy", "hierarchy", mnt, "err", err)
		}
	}
	return created
}

// mkdirComponents creates each missing directory of parent below mnt and
// returns the ones it created.
func mkdirComponents(mnt, parent string) ([]string, error) {
	var created []string
	dir := mnt
	for _, c := range strings.Split(strings.TrimPrefix(parent, "/"), "/") {
		dir = filepath.Join(dir, c)
		switch err := unix.Mkdir(dir, 0o755); err {
		case nil:
			created = append(created, dir)
		case unix.EEXIST:
		default:
			return created, fmt.Errorf("create cgroup parent %s: %w", dir, err)
		}
	}
	return created, nil
}

// removeCgroupParent removes the directories makeCgroupParent created (or
// adoptCgroupParent took over), deepest first; busy or non-empty ones stay.
func removeCgroupParent(created []string) {
	dirs := slices.Clone(created)
	slices.SortStableFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		_ = unix.Rmdir(d)
	}
}

// recordCgroupParent writes the cgroup parent and the directories this
// Manager owns into the parent's lock file (m.locks[1]), one per line. A
// failed write is logged: its only cost is directories left after a crash.
func (m *Manager) recordCgroupParent() {
	if len(m.locks) < 2 {
		return
	}
	rec := m.cfg.CgroupParent + "\n" + strings.Join(m.cgMade, "\n")
	f := m.locks[1]
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(rec+"\n"), 0)
		if err == nil {
			return
		}
	}
	m.log.Warn("cgroup parent record not written; after a crash its directories stay", "lock", f.Name())
}

// adoptCgroupParent returns the directories a record (recordCgroupParent's,
// left by a Manager that died) says its Manager created and that still
// exist. Only directories of parent itself are taken: each must be a
// hierarchy in mounts joined with one of parent's leading components, so a
// damaged record can never make Close remove anything else.
func adoptCgroupParent(record []byte, mounts []string, parent string) []string {
	lines := strings.Split(strings.TrimSpace(string(record)), "\n")
	if len(lines) < 2 || lines[0] != parent {
		return nil
	}
	valid := map[string]bool{}
	for _, mnt := range mounts {
		dir := mnt
		for _, c := range strings.Split(strings.TrimPrefix(parent, "/"), "/") {
			dir = filepath.Join(dir, c)
			valid[dir] = true
		}
	}
	var out []string
	for _, d := range lines[1:] {
		if valid[d] && !slices.Contains(out, d) {
			if st, err := os.Lstat(d); err == nil && st.IsDir() {
				out = append(out, d)
			}
		}
	}
	return out
}

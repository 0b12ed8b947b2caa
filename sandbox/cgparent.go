package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The cgroup parent is configurable (sandbox.cgroup_parent), e.g.
// /system.slice/execgate.service/sandboxes, so parts of it may belong to
// someone else: systemd, the service, another instance. New creates the
// parent in every hierarchy one component at a time and records the
// directories whose mkdir it made (an existing one, EEXIST, is never
// recorded); Close removes only those, deepest first, and only when empty.
// After a crash the directories the dead process created already exist
// for the next Manager, so they stay (empty) until removed by hand.

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

// removeCgroupParent removes the directories makeCgroupParent created,
// deepest first; busy or non-empty ones stay.
func removeCgroupParent(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		_ = unix.Rmdir(created[i])
	}
}

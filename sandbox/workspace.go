package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// ensureWorkspace creates a workspace's host directory when missing: the
// parents root-owned 0755, the workspace itself 0700 and owned by the
// sandbox uid/gid, so no other sandbox user (and no other host user) can
// read it. An existing workspace must be a real directory (not a symlink)
// and is re-owned to the profile's ids.
func ensureWorkspace(m policy.Mount, uid, gid uint32) error {
	if !filepath.IsAbs(m.Source) || filepath.Clean(m.Source) != m.Source || m.Source == "/" {
		return &SpecError{Field: "workspace source", Reason: fmt.Sprintf("%q: want a clean absolute path", m.Source)}
	}
	if err := os.MkdirAll(filepath.Dir(m.Source), 0o755); err != nil {
		return fmt.Errorf("workspace parent %s: %w", filepath.Dir(m.Source), err)
	}
	if err := os.Mkdir(m.Source, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("workspace %s: %w", m.Source, err)
	}
	fi, err := os.Lstat(m.Source)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", m.Source, err)
	}
	if !fi.IsDir() {
		return &SpecError{Field: "workspace source", Reason: fmt.Sprintf("%s is not a directory", m.Source)}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("workspace %s: no stat_t", m.Source)
	}
	if st.Uid != uid || st.Gid != gid {
		if err := os.Lchown(m.Source, int(uid), int(gid)); err != nil {
			return fmt.Errorf("workspace %s: %w", m.Source, err)
		}
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(m.Source, 0o700); err != nil {
			return fmt.Errorf("workspace %s: %w", m.Source, err)
		}
	}
	return nil
}

// checkFreeSpace returns a *DiskFullError when the file system holding p
// has less than min bytes available to unprivileged users.
func checkFreeSpace(p string, min uint64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", p, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < min {
		return &DiskFullError{Path: p, FreeBytes: free, MinBytes: min}
	}
	return nil
}

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// ensureWorkspace creates a workspace's host directory when missing: the
// parents root-owned 0755, the workspace itself 0700 and owned by the
// sandbox uid/gid, so no other sandbox user (and no other host user) can
// read it. No component may be a symlink, and every parent must be owned
// by root and not writable by others (checkSource), so neither a file left
// in a workspace nor a concurrent run can redirect the mount. An existing
// workspace is re-owned to the profile's ids.
func ensureWorkspace(m policy.Mount, uid, gid uint32) error {
	if err := walkParents(m.Source, true); err != nil {
		return err
	}
	if err := os.Mkdir(m.Source, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("workspace %s: %w", m.Source, err)
	}
	fi, err := os.Lstat(m.Source)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", m.Source, err)
	}
	if !fi.IsDir() {
		return &SpecError{Field: "workspace source", Reason: fmt.Sprintf("%s is not a directory (symlinks are refused)", m.Source)}
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

// checkSource checks a shared root's host path: it exists, is a directory,
// and no component is a symlink; its parents are owned by root and not
// writable by others.
func checkSource(source string) error {
	if err := walkParents(source, false); err != nil {
		return err
	}
	fi, err := os.Lstat(source)
	if err != nil {
		return &SpecError{Field: "mount source", Reason: err.Error()}
	}
	if !fi.IsDir() {
		return &SpecError{Field: "mount source", Reason: fmt.Sprintf("%s is not a directory (symlinks are refused)", source)}
	}
	return nil
}

// walkParents checks every parent of p from / down, with Lstat: none may be
// a symlink, each must be a directory owned by root that others cannot
// write to (or a root-owned sticky directory such as /tmp). With create,
// missing parents are created (root, 0755) one component at a time, so no
// symlink is ever followed.
func walkParents(p string, create bool) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return &SpecError{Field: "mount source", Reason: fmt.Sprintf("%q: want a clean absolute path other than /", p)}
	}
	cur := "/"
	for _, part := range strings.Split(filepath.Dir(p), "/")[1:] {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if os.IsNotExist(err) && create {
			if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("create %s: %w", cur, err)
			}
			fi, err = os.Lstat(cur)
		}
		if err != nil {
			return &SpecError{Field: "mount source", Reason: err.Error()}
		}
		if err := checkParentDir(cur, fi); err != nil {
			return err
		}
	}
	return nil
}

func checkParentDir(p string, fi os.FileInfo) error {
	if fi.Mode()&os.ModeSymlink != 0 {
		return &SpecError{Field: "mount source", Reason: fmt.Sprintf("%s is a symlink", p)}
	}
	if !fi.IsDir() {
		return &SpecError{Field: "mount source", Reason: fmt.Sprintf("%s is not a directory", p)}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 {
		return &SpecError{Field: "mount source", Reason: fmt.Sprintf("parent %s is not owned by root", p)}
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return &SpecError{Field: "mount source", Reason: fmt.Sprintf("parent %s is writable by others", p)}
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

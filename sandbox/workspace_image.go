package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Per-user workspace size limit. The root file system here is ext4 without
// project quotas, so a profile's WorkspaceBytes is enforced with one ext4
// image per workspace (sparse, under Config.WorkspaceImageRoot), loop-mounted
// nosuid,nodev on the workspace's host directory the first time a run
// needs it and kept mounted until Close. A full workspace fails writes with
// ENOSPC inside the sandbox and cannot touch the host's free space. The
// size is fixed when the image is created; a later larger profile does not
// grow it.

// imageMounts tracks the images this Manager mounted.
type imageMounts struct {
	root string
	log  *slog.Logger

	mu      sync.Mutex
	mounted map[string]string // workspace dir -> image
}

func newImageMounts(root string, log *slog.Logger) *imageMounts {
	return &imageMounts{root: root, log: log, mounted: map[string]string{}}
}

// ensure mounts the image of dir (creating it with size bytes) unless dir
// is already a mount point.
func (im *imageMounts) ensure(ctx context.Context, dir string, size int64, uid, gid uint32) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if _, ok := im.mounted[dir]; ok {
		return nil
	}
	if isMountPoint(dir) {
		return nil // mounted by an operator or an earlier instance: respected
	}
	if err := os.MkdirAll(im.root, 0o700); err != nil {
		return fmt.Errorf("workspace image root: %w", err)
	}
	sum := sha256.Sum256([]byte(dir))
	img := filepath.Join(im.root, hex.EncodeToString(sum[:12])+".img")
	if _, err := os.Stat(img); os.IsNotExist(err) {
		if err := makeImage(ctx, img, size, uid, gid); err != nil {
			os.Remove(img)
			return err
		}
	}
	cmd := exec.CommandContext(ctx, "/usr/bin/mount", "-t", "ext4", "-o", "loop,nosuid,nodev", "--", img, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mount workspace image %s on %s: %v: %s", img, dir, err, strings.TrimSpace(string(out)))
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return fmt.Errorf("workspace image %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("workspace image %s: %w", dir, err)
	}
	im.mounted[dir] = img
	im.log.Info("workspace image mounted", "dir", dir, "image", img, "bytes", size)
	return nil
}

func makeImage(ctx context.Context, img string, size int64, uid, gid uint32) error {
	f, err := os.OpenFile(img, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create workspace image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("size workspace image: %w", err)
	}
	owner := "root_owner=" + strconv.FormatUint(uint64(uid), 10) + ":" + strconv.FormatUint(uint64(gid), 10)
	cmd := exec.CommandContext(ctx, "/usr/sbin/mkfs.ext4", "-q", "-F", "-m", "0", "-E", owner, "--", img)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs workspace image: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmountAll detaches every image this Manager mounted.
func (im *imageMounts) unmountAll() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	var errs []error
	for dir := range im.mounted {
		if err := unmountRetry(dir); err != nil {
			errs = append(errs, err)
		}
		delete(im.mounted, dir)
	}
	if len(errs) > 0 {
		return fmt.Errorf("unmount workspace images: %v", errs)
	}
	return nil
}

// unmountRetry unmounts dir, waiting briefly for a busy mount, then
// detaching it lazily.
func unmountRetry(dir string) error {
	for range 50 {
		err := unix.Unmount(dir, 0)
		if err == nil || err == unix.EINVAL || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount (its device
// differs from its parent's).
func isMountPoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

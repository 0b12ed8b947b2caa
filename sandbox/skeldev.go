package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The shared /dev. A run without a TTY gets /dev as a read-only bind of
// one tmpfs per Manager, <StateRoot>/dev, filled once with the sandbox's
// device nodes and the links libcontainer would make (fd, stdin, stdout,
// stderr, core, ptmx), then remounted read-only at the superblock: its
// nodes are shared, read-only, between containers (writing to a device
// node needs no write access to its file system), and libcontainer skips
// its own /dev set-up (a tmpfs, a mknod and path checks per node, the
// links) when /dev is a bind. The devices cgroup still limits every run to
// these nodes. A TTY run keeps a per-run /dev (libcontainer's), which
// holds the devpts instance and /dev/console.

// devLinks are the symbolic links in /dev, as libcontainer makes them
// (core only when the kernel has /proc/kcore).
var devLinks = [][2]string{
	{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
	{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}, {"/proc/kcore", "core"},
}

// devTmpfsData sizes the shared /dev: a few nodes and links.
const devTmpfsData = "mode=755,size=16k,nr_inodes=32"

// buildDev mounts and fills the shared /dev at dir (created); on failure it
// unmounts it.
func buildDev(dir string) (err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("shared /dev: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, devTmpfsData); err != nil {
		return fmt.Errorf("shared /dev: mount tmpfs: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, unmountRetry(dir))
		}
	}()
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("shared /dev: make private: %w", err)
	}
	for _, d := range sandboxDevices {
		p := filepath.Join(dir, filepath.Base(d.Path))
		if err := unix.Mknod(p, unix.S_IFCHR|uint32(d.FileMode), int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("shared /dev: mknod %s: %w", d.Path, err)
		}
		// mknod applies the umask.
		if err := os.Chmod(p, d.FileMode); err != nil {
			return fmt.Errorf("shared /dev: %w", err)
		}
	}
	for _, l := range devLinks {
		if l[1] == "core" {
			if _, err := os.Stat("/proc/kcore"); err != nil {
				continue
			}
		}
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			return fmt.Errorf("shared /dev: %w", err)
		}
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NOEXEC)
	if err := unix.Mount("", dir, "", flags, ""); err != nil {
		return fmt.Errorf("shared /dev: remount read-only: %w", err)
	}
	return nil
}

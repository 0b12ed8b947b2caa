package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxSeccompFileBytes bounds a custom seccomp profile file.
const MaxSeccompFileBytes = 64 << 10

// ErrSeccompFileNotFound is wrapped by ReadSeccompFile when the file (or a
// directory on its path) does not exist.
var ErrSeccompFileNotFound = errors.New("does not exist")

// noSymlinks is how every component of a seccomp file's path is resolved:
// no symbolic link (nor /proc magic link) anywhere. The file itself is
// also resolved beneath its checked directory and not across a mount
// (RESOLVE_BENEATH, RESOLVE_NO_XDEV: no bind mount over it).
const noSymlinks = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// ReadSeccompFile reads a custom seccomp profile file the way every part
// of execgate must: it defines the sandbox's syscall allowlist and the
// root executor reads it, so
//
//   - no component of the path may be a symbolic link (openat2 with
//     RESOLVE_NO_SYMLINKS; a kernel without openat2 is refused, there is
//     no fallback);
//   - its directory must be owned by root and writable by nobody else,
//     and so must every directory above it, except that one writable by
//     group or others is allowed with the sticky bit (/tmp): there nobody
//     but its owner, root, can rename the root-owned entry below it (sshd's
//     StrictModes reasoning) — so nobody but root can swap the file by
//     moving a directory on its path;
//   - the file must be a regular file owned by root, not writable by group
//     or others, and readable by others (an allowlist holds no secret; a
//     root-only file such as /etc/shadow is refused before a byte of it is
//     read, and the unprivileged front can read what the executor reads).
//
// The file is first opened with O_PATH, which never runs a device's or a
// FIFO's open, and checked; then it is opened for reading relative to the
// checked directory and must be the same inode. At most
// MaxSeccompFileBytes+1 bytes are read (a longer file is an error). Errors
// name the path and the reason, never the file's content.
func ReadSeccompFile(name string) ([]byte, error) {
	if !isAbsClean(name) || name == "/" {
		return nil, fmt.Errorf("%q is not an absolute clean file path", name)
	}
	dir, base := path.Split(name)
	dir = path.Clean(dir)
	dfd, err := openTrustedDir(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	// base is one component: RESOLVE_BENEATH keeps it in dir.
	resolve := uint64(noSymlinks | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV)
	pfd, err := unix.Openat2(dfd, base, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		return nil, openError("", err)
	}
	defer unix.Close(pfd)
	var pst unix.Stat_t
	if err := unix.Fstat(pfd, &pst); err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if err := checkRootOwned(pst.Mode, pst.Uid, unix.S_IFREG, 0o022, 0o004, "0644"); err != nil {
		return nil, err
	}
	fd, err := unix.Openat2(dfd, base, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: resolve})
	if err != nil {
		return nil, openError("", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if st.Dev != pst.Dev || st.Ino != pst.Ino {
		return nil, errors.New("the file changed while it was opened")
	}
	if err := checkRootOwned(st.Mode, st.Uid, unix.S_IFREG, 0o022, 0o004, "0644"); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSeccompFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > MaxSeccompFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxSeccompFileBytes)
	}
	return data, nil
}

// openTrustedDir opens dir (absolute, clean) with O_PATH one component
// at a time from /, each relative to the descriptor of the one above (no
// path is resolved twice), and checks each as ReadSeccompFile requires:
// owned by root; not writable by group or others, except with the sticky
// bit above the last one; no symbolic link.
func openTrustedDir(dir string) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /: %w", err)
	}
	comps := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	if dir == "/" {
		comps = nil
	}
	at := "/"
	for i := 0; ; i++ {
		last := i == len(comps)
		if err := checkTrustedDir(fd, at, last); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if last {
			return fd, nil
		}
		nfd, err := unix.Openat2(fd, comps[i], &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: noSymlinks | unix.RESOLVE_BENEATH})
		unix.Close(fd)
		at = path.Join(at, comps[i])
		if err != nil {
			return -1, openError("directory "+at, err)
		}
		fd = nfd
	}
}

// checkTrustedDir checks one directory of a seccomp file's path; last is
// the file's own directory, which may not be writable by anyone but root
// even with the sticky bit.
func checkTrustedDir(fd int, at string, last bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat directory %s: %w", at, err)
	}
	forbid := uint32(0o022)
	if !last && st.Mode&unix.S_ISVTX != 0 {
		forbid = 0 // sticky: only root, its owner, can rename what root owns in it
	}
	if err := checkRootOwned(st.Mode, st.Uid, unix.S_IFDIR, forbid, 0, "0755"); err != nil {
		return fmt.Errorf("directory %s: %w", at, err)
	}
	return nil
}

// openError words a failed openat2 without the kernel's terse errno text
// where a reason is known.
func openError(what string, err error) error {
	prefix := ""
	if what != "" {
		prefix = what + ": "
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s%w", prefix, ErrSeccompFileNotFound)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%sa path component is a symbolic link (or crosses a mount): not allowed", prefix)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%sthe kernel has no openat2 (Linux 5.6 or later is required): %w", prefix, err)
	}
	return fmt.Errorf("%sopen: %w", prefix, err)
}

// checkRootOwned checks what a file root trusts needs (mode and uid from
// its stat): it is of type
// kind (unix.S_IFREG, unix.S_IFDIR), owned by root, none of the permission
// bits forbid is set and every bit of need is. want is the mode the error
// suggests.
func checkRootOwned(mode, uid, kind, forbid, need uint32, want string) error {
	if mode&unix.S_IFMT != kind {
		if mode&unix.S_IFMT == unix.S_IFLNK {
			// O_PATH|O_NOFOLLOW opens a final symlink itself.
			return errors.New("a symbolic link: not allowed")
		}
		if kind == unix.S_IFDIR {
			return errors.New("not a directory")
		}
		return errors.New("not a regular file")
	}
	if uid != 0 {
		return errors.New("not owned by root")
	}
	perm := mode & 0o7777
	if perm&forbid&0o022 != 0 {
		return fmt.Errorf("mode %04o lets group or others write (want %s)", perm, want)
	}
	if perm&forbid != 0 {
		return fmt.Errorf("mode %04o gives group or others access (want %s)", perm, want)
	}
	if perm&need != need {
		return fmt.Errorf("mode %04o is not readable by others (want %s)", perm, want)
	}
	return nil
}

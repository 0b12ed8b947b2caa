package policy

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenRegular opens name for reading, or fails at once (ErrNotRegular)
// when it is not a regular file; symbolic links are followed. It is how
// every file of a policy set and of its tests is opened.
func OpenRegular(name string) (*os.File, error) {
	f, _, err := openRegular(name, 0)
	return f, err
}

// openRegular opens name for reading, or fails at once when it is not a
// regular file. A policy file, a secrets file or a pinned binary that is a
// FIFO, a device or a socket would hang the loader (opening a FIFO waits
// for a writer; /dev/zero never ends) and with it `policy check`, serve's
// start and every reload. The path is first opened with O_PATH (which runs
// no driver's open and never waits) and checked on that descriptor; then
// exactly that inode is opened for reading through /proc/self/fd, so a
// device swapped in after the check is never opened, and the descriptor
// that is read has no O_NONBLOCK. extra adds open flags (O_NOFOLLOW).
func openRegular(name string, extra int) (*os.File, fs.FileInfo, error) {
	pfd, err := unix.Open(name, unix.O_PATH|unix.O_CLOEXEC|extra, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil, checkRegular(modeOf(st.Mode))
	}
	// /proc/self/fd/N names the checked inode itself, whatever the path
	// names now (a /proc that is not mounted fails here: no fallback).
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "reopen", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	fi, err := f.Stat()
	if err == nil && (fi.Sys().(*syscall.Stat_t).Ino != st.Ino || fi.Sys().(*syscall.Stat_t).Dev != st.Dev) {
		err = fmt.Errorf("%s changed while it was opened", name)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// modeOf turns a stat(2) mode into an fs.FileMode's type bits.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// checkRegular returns ErrNotRegular, naming the file's type, unless st is
// a regular file.
func checkRegular(m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	kind := "special file"
	switch {
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeSymlink != 0:
		kind = "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeCharDevice != 0:
		kind = "character device"
	case m&fs.ModeDevice != 0:
		kind = "block device"
	}
	return fmt.Errorf("%w: a %s", ErrNotRegular, kind)
}

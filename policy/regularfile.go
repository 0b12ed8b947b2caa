package policy

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
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
// start and every reload. The type is checked before the open (so no
// device is opened in the common case) and again on the descriptor, which
// is opened with O_NONBLOCK (a FIFO swapped in between cannot block the
// open) and O_NOCTTY. extra adds open flags (O_NOFOLLOW).
func openRegular(name string, extra int) (*os.File, fs.FileInfo, error) {
	stat := os.Stat
	if extra&syscall.O_NOFOLLOW != 0 {
		stat = os.Lstat
	}
	if st, err := stat(name); err != nil {
		return nil, nil, err
	} else if err := checkRegular(st); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC|extra, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil {
		err = checkRegular(st)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// checkRegular returns ErrNotRegular, naming the file's type, unless st is
// a regular file.
func checkRegular(st fs.FileInfo) error {
	m := st.Mode()
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

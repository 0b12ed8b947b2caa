package gateway

import (
	"os"
	"syscall"
)

// The audit log file itself: opening (append-only, 0600, no symlinks),
// following its path, probing, undoing partial writes, closing. Only the
// Auditor's writer goroutine (and NewAuditor, before it starts) calls these.

// dropPartial removes the n bytes a failed write left behind, or marks that
// the next write must start on a new line.
func (a *Auditor) dropPartial(n int) {
	if n <= 0 {
		return
	}
	if err := a.f.Truncate(a.size); err != nil {
		a.needNL = true
		a.size += int64(n)
	}
}

func (a *Auditor) probe() error {
	if err := a.ensureOpen(); err != nil {
		return a.fail(err)
	}
	if a.lastErr == nil {
		return nil
	}
	if err := a.f.Sync(); err != nil {
		_ = a.f.Close()
		a.f = nil
		return a.fail(&AuditError{Op: "sync", Path: a.path, Err: err})
	}
	if err := a.checkSpace(); err != nil {
		return a.fail(err)
	}
	a.recovered()
	return nil
}

// checkSpace fails when the file system holding a regular audit file has no
// free block left.
func (a *Auditor) checkSpace() error {
	fi, err := a.f.Stat()
	if err != nil {
		return &AuditError{Op: "stat", Path: a.path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(a.f.Fd()), &st); err != nil {
		return &AuditError{Op: "statfs", Path: a.path, Err: err}
	}
	if st.Bavail == 0 {
		return &AuditError{Op: "statfs", Path: a.path, Err: syscall.ENOSPC}
	}
	return nil
}

// ensureOpen opens the file when it is not open, and reopens it when the
// path no longer names the open file (deleted, or renamed by a rotation
// that sent no SIGUSR1): lines must land where readers look for them.
func (a *Auditor) ensureOpen() error {
	if a.f != nil {
		if cur, err := os.Lstat(a.path); err == nil && os.SameFile(cur, a.fi) {
			return nil
		}
		a.log.Info("audit log path changed; reopening", "path", a.path)
		if err := a.closeFile(); err != nil {
			a.log.Warn("audit log close before reopen", "path", a.path, "err", err)
		}
	}
	return a.open()
}

func (a *Auditor) open() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return &AuditError{Op: "open", Path: a.path, Err: err}
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return &AuditError{Op: "open", Path: a.path, Err: err}
	}
	if fi.IsDir() {
		_ = f.Close()
		return &AuditError{Op: "open", Path: a.path, Err: syscall.EISDIR}
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
		// Not refused (a log shipper may be meant to read it), but said.
		a.log.Warn("audit log is readable or writable by group or others (chmod 600)",
			"path", a.path, "mode", fi.Mode().Perm().String())
	}
	a.f, a.fi, a.size, a.needNL = f, fi, fi.Size(), false
	return nil
}

func (a *Auditor) closeFile() error {
	if a.f == nil {
		return nil
	}
	f := a.f
	a.f = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &AuditError{Op: "close", Path: a.path, Err: err}
	}
	return nil
}

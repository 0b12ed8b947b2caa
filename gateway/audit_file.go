package gateway

import (
	"os"
	"syscall"
)

// The audit log file itself: opening (append-only, 0600, no symlinks),
// following its path, probing, undoing partial writes, closing. Callers
// hold the Auditor's wmu (NewAuditor needs not: nothing runs yet).

// auditFile is an open audit log file and, once closed, how its final
// fsync went: a line written to it before a rotation closed it is durable
// exactly when that fsync succeeded (auditReq.result).
type auditFile struct {
	*os.File
	closed  bool
	syncErr error // of the final fsync, when closed
}

// close closes f after its final fsync, whose outcome was syncErr.
func (f *auditFile) close(syncErr error) error {
	f.closed, f.syncErr = true, syncErr
	return f.File.Close()
}

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
		serr := &AuditError{Op: "sync", Path: a.path, Err: err}
		_ = a.f.close(serr)
		a.f = nil
		return a.fail(serr)
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
	a.f, a.fi, a.size, a.needNL = &auditFile{File: f}, fi, fi.Size(), false
	return nil
}

func (a *Auditor) closeFile() error {
	if a.f == nil {
		return nil
	}
	f := a.f
	a.f = nil
	var serr error
	err := f.Sync()
	if err != nil {
		serr = &AuditError{Op: "sync", Path: a.path, Err: err}
	}
	if cerr := f.close(serr); err == nil {
		err = cerr
	}
	if err != nil {
		return &AuditError{Op: "close", Path: a.path, Err: err}
	}
	return nil
}

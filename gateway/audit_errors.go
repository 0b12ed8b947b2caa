package gateway

import (
	"errors"
	"fmt"
)

// ErrAuditUnavailable means an audit line could not be durably written. The
// gateway answers 503 audit_unavailable and runs nothing unrecorded. Every
// error Auditor.Record and Auditor.Writable return satisfies
// errors.Is(err, ErrAuditUnavailable), except a cancelled context.
var ErrAuditUnavailable = errors.New("audit log unavailable")

// ErrAuditClosed is returned by Record after Close.
var ErrAuditClosed = fmt.Errorf("%w: auditor closed", ErrAuditUnavailable)

// AuditError is a failure to open, write or sync the audit log. It matches
// both ErrAuditUnavailable and the underlying error with errors.Is.
type AuditError struct {
	Op   string // "open", "write", "sync", "encode"
	Path string // the audit log path
	Err  error
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("audit log %s %s: %v", e.Op, e.Path, e.Err)
}

// Unwrap returns ErrAuditUnavailable and the cause.
func (e *AuditError) Unwrap() []error { return []error{ErrAuditUnavailable, e.Err} }

package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors of the gateway.
var (
	// ErrConfig is matched by every configuration error.
	ErrConfig = errors.New("invalid configuration")
	// ErrKey is matched by every unusable key.
	ErrKey = errors.New("unusable key")
	// ErrUnauthorized is matched by every token verification failure.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrLockedOut is returned while a user+IP pair or an IP is locked out.
	ErrLockedOut = errors.New("locked out")
	// ErrDraining is returned once the server drains.
	ErrDraining = errors.New("draining")
	// ErrStoreFull is matched by a refused new key of the in-memory
	// limiter and lockout store (limits.memory_store_max_keys).
	ErrStoreFull = errors.New("limit store full")
	// ErrRunnerPanic is matched by the error of a run whose Runner panicked.
	ErrRunnerPanic = errors.New("runner panicked")

	// errHeaderBlockTooLarge is the read error net/http sees on a
	// connection the header guard refused (inside an *net.OpError with Op
	// "read", so net/http closes it without answering again).
	errHeaderBlockTooLarge = errors.New("request header block over http.max_header_bytes")
)

// storeFullError is a new key refused by the in-memory limit store because
// its Class budget is full; RetryAfter is when its soonest entry expires.
type storeFullError struct {
	Class      string
	RetryAfter time.Duration
}

func (e *storeFullError) Error() string {
	return fmt.Sprintf("limit store full: no room for a new %s key (limits.memory_store_max_keys)", e.Class)
}

// Unwrap returns ErrStoreFull.
func (e *storeFullError) Unwrap() error { return ErrStoreFull }

// HTTPError is an error with the HTTP status, the stable code and the
// message a client sees. The wrapped error is the detail that is logged,
// never sent.
type HTTPError struct {
	Status  int
	Code    string
	Message string
	// Reason is the policy reason code of a 403 forbidden, "" otherwise.
	Reason string
	// Field names the offending JSON field of a 400 invalid_request.
	Field string
	// RetryAfter, when positive, is sent as Retry-After (seconds, rounded up).
	RetryAfter time.Duration
	Err        error
}

// Error renders the code, the message and the detail.
func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the detail.
func (e *HTTPError) Unwrap() error { return e.Err }

// httpErr builds an HTTPError.
func httpErr(status int, code, msg string, err error) *HTTPError {
	return &HTTPError{Status: status, Code: code, Message: msg, Err: err}
}

// The stable error codes clients see.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodePayloadTooLarge  = "payload_too_large"
	CodeRateLimited      = "rate_limited"
	CodeLockedOut        = "locked_out"
	CodeTooManySessions  = "too_many_sessions"
	CodeUnavailable      = "unavailable"
	CodeAuditUnavailable = "audit_unavailable"
	CodeDiskFull         = "disk_full"
	CodeDraining         = "draining"
	CodeTokenInQuery     = "token_in_query"
	CodeIPNotAllowed     = "ip_not_allowed"
	CodeInternal         = "internal"
)

func errUnauthorized(err error) *HTTPError {
	return httpErr(http.StatusUnauthorized, CodeUnauthorized, "a valid bearer token is required", err)
}

func errInvalid(field, msg string, err error) *HTTPError {
	e := httpErr(http.StatusBadRequest, CodeInvalidRequest, msg, err)
	e.Field = field
	return e
}

func errForbidden(reason, msg string, err error) *HTTPError {
	e := httpErr(http.StatusForbidden, CodeForbidden, msg, err)
	e.Reason = reason
	return e
}

// ConfigError is one configuration problem with its place in the file.
type ConfigError struct {
	File    string
	Line    int
	Key     string
	Message string
}

// Error renders "file:line: key: message".
func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if loc == "" {
		loc = "config"
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Message)
	}
	return fmt.Sprintf("%s: %s", loc, e.Message)
}

// Is makes every ConfigError match ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

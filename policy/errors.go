package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. Load errors are reported as an ErrorList; these classify
// failures that are not about a file's content.
var (
	// ErrNoFiles means Load found no *.yaml / *.yml file to load.
	ErrNoFiles = errors.New("no policy files")
	// ErrInvalid is matched (errors.Is) by every ErrorList.
	ErrInvalid = errors.New("invalid policy")
	// ErrNotRegular means a file the loader reads (a policy file, a secrets
	// file, a binary pinned by sha256) is not a regular file: a FIFO, a
	// device, a socket or a directory, refused before it could hang a load.
	ErrNotRegular = errors.New("not a regular file")
)

// Error is one load error: where, a stable code and a message.
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// SeccompFile is the custom seccomp profile file a bad_seccomp error
	// is about (it could not be read, was refused or failed the check),
	// so a watcher of a rejected load knows which files to watch. Not
	// part of the rendered error.
	SeccompFile string `json:"-"`
}

// Error renders the error as "file:line:col: code: message".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Code, e.Message)
}

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// ErrorList is every load error of a policy set, sorted by file, line,
// column, code and message.
type ErrorList []*Error

// Error renders one error per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// SeccompFiles returns the custom seccomp files the list's errors are
// about (Error.SeccompFile), sorted and without repeats.
func (l ErrorList) SeccompFiles() []string {
	var out []string
	for _, e := range l {
		if e.SeccompFile != "" {
			out = append(out, e.SeccompFile)
		}
	}
	return sortedCopy(out)
}

// Is makes every ErrorList match ErrInvalid.
func (l ErrorList) Is(target error) bool { return target == ErrInvalid }

// Unwrap exposes the individual errors to errors.Is / errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Sort orders the list and drops exact duplicates.
func (l *ErrorList) Sort() {
	s := *l
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
	out := s[:0]
	for i, e := range s {
		if i > 0 && *e == *s[i-1] {
			continue
		}
		out = append(out, e)
	}
	*l = out
}

// Load error codes (Error.Code). docs/policy.md lists them.
const (
	CodeSyntax           = "syntax"
	CodeUnknownKey       = "unknown_key"
	CodeDuplicateKey     = "duplicate_key"
	CodeType             = "type"
	CodeAlias            = "alias_not_allowed"
	CodeMissingVersion   = "missing_version"
	CodeBadVersion       = "bad_version"
	CodeRequired         = "required"
	CodeDuplicateName    = "duplicate_name"
	CodeUndefinedRole    = "undefined_role"
	CodeRoleGrantsNone   = "role_grants_nothing"
	CodeRoleCycle        = "role_cycle"
	CodeUndefinedProfile = "undefined_profile"
	CodeProfileCycle     = "profile_cycle"
	CodeUndefinedRoot    = "undefined_root"
	CodeBadRoot          = "bad_root"
	CodeSensitiveRoot    = "sensitive_root"
	CodeBadPath          = "bad_path"
	CodeBinaryNotFound   = "binary_not_found"
	CodeSHA256Mismatch   = "sha256_mismatch"
	CodeBadRegex         = "bad_regex"
	CodeBadValue         = "bad_value"
	CodeBadFlag          = "bad_flag"
	CodeDuplicateFlag    = "duplicate_flag"
	CodeEnvForbidden     = "env_forbidden"
	CodeBadEnv           = "bad_env"
	CodeSecretsFile      = "secrets_file"
	CodeSecretMissing    = "secret_missing"
	CodeBadSeccomp       = "bad_seccomp"
	CodeBadName          = "bad_name"
)

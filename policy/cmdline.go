package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/shlex"
)

// ErrBadCmdline is wrapped by every SplitCmdline error.
var ErrBadCmdline = errors.New("bad command line")

// maxCmdlineBytes bounds a command line before it is split.
const maxCmdlineBytes = 128 << 10

// SplitCmdline splits a one-string command line into words with
// github.com/google/shlex, after rejecting what shlex would silently mangle
// or misread:
//   - invalid UTF-8 (shlex decodes runes and turns bad bytes into U+FFFD, so
//     the words would differ from what was sent);
//   - any '#': shlex treats an unquoted '#' as the start of a comment and
//     drops the rest of the line without a word; rather than guess, every
//     '#' is refused (send an argv array to pass one);
//   - newlines, NUL and every other control character.
//
// Quoting follows shlex, which is not POSIX in one respect: inside double
// quotes a backslash escapes ANY following character ("a\qb" is aqb), while
// POSIX keeps the backslash unless it precedes $, `, ", \ or a newline.
// Inside single quotes a backslash is literal, as in POSIX. There is no
// expansion of any kind ($VAR, globs, ~ stay literal).
func SplitCmdline(s string) ([]string, error) {
	if len(s) > maxCmdlineBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadCmdline, maxCmdlineBytes)
	}
	switch checkChars(s, false) {
	case ReasonInvalidUTF8:
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrBadCmdline)
	case ReasonControlCharacter:
		return nil, fmt.Errorf("%w: control character or newline", ErrBadCmdline)
	}
	if strings.Contains(s, "#") {
		return nil, fmt.Errorf("%w: '#' is not allowed in a command line (send args instead)", ErrBadCmdline)
	}
	words, err := shlex.Split(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCmdline, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadCmdline)
	}
	return words, nil
}

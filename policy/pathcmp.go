package policy

import (
	"path"
	"strings"
)

// Path comparison is by components, never by string prefix: /ws/alice2 is
// not inside /ws/alice. All inputs are absolute, clean, slash-separated.

// isAbsClean reports whether p is absolute and already clean.
func isAbsClean(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p
}

// within reports whether p equals dir or lies beneath it.
func within(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// overlaps reports whether a and b are equal or one contains the other.
func overlaps(a, b string) bool { return within(a, b) || within(b, a) }

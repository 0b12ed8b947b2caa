package policy

import (
	"os"
	"path"
	"path/filepath"
)

// hostForms returns a root's host path as written and, when it differs,
// as the kernel would resolve it now: the symlinks of its existing part
// followed (the sandbox's bind mount follows them too), the missing rest
// appended. The sensitive-path checks look at both, so that neither a
// symlink (/var/run -> /run, a planted link to /etc) nor a not-yet-created
// directory below one hides what would really be mounted.
func hostForms(h string) []string {
	existing, rest := h, ""
	for existing != "/" {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		rest = path.Join(path.Base(existing), rest)
		existing = path.Dir(existing)
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return []string{h}
	}
	if r := path.Join(real, rest); r != h {
		return []string{h, r}
	}
	return []string{h}
}

// anyOverlap reports whether any form in a overlaps any form in b.
func anyOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if overlaps(x, y) {
				return true
			}
		}
	}
	return false
}

// resolvedNote names the resolved form in an error when it is the one
// that matched.
func resolvedNote(h, f string) string {
	if f == h {
		return ""
	}
	return " (it resolves to " + f + ")"
}

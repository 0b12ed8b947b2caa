package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadSeccompFileAncestors: a directory above the seccomp file's own
// one that another user owns, or that group or others may write without
// the sticky bit, lets that user swap the file by renaming directories
// (a root-owned directory holding a root-owned file of their choosing
// moved into place): refused. A sticky world-writable one (/tmp) is not.
func TestReadSeccompFileAncestors(t *testing.T) {
	const nobody = 65534
	cases := []struct {
		name string
		mode os.FileMode // of the directory above sc/
		uid  int
		want string // substring of the error; "" = accepted
	}{
		{"root 0755", 0o755, 0, ""},
		{"root sticky 1777, like /tmp", 0o1777 | os.ModeSticky, 0, ""},
		{"owned by another user", 0o755, nobody, "not owned by root"},
		{"group-writable", 0o775, 0, "lets group or others write"},
		{"world-writable without sticky", 0o777, 0, "lets group or others write"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			needRoot(t) // files owned by root and by another user
			above := filepath.Join(t.TempDir(), "above")
			sc := filepath.Join(above, "sc")
			if err := os.MkdirAll(sc, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(sc, 0o755); err != nil {
				t.Fatal(err)
			}
			p := writeSC(t, sc, "a.json", validSeccomp, 0o644)
			if err := os.Chown(above, tc.uid, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(above, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSeccompFile(p)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want the file accepted", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), above)):
				t.Errorf("got %v, want an error naming %s with %q", err, above, tc.want)
			}
		})
	}
	// The file's own directory gets no sticky exemption.
	t.Run("own directory sticky 1777", func(t *testing.T) {
		dir := rootDir(t)
		p := writeSC(t, dir, "a.json", validSeccomp, 0o644)
		if err := os.Chmod(dir, 0o1777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSeccompFile(p); err == nil || !strings.Contains(err.Error(), "lets group or others write") {
			t.Errorf("got %v, want the sticky directory refused", err)
		}
	})
}

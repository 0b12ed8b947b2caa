package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rootDir returns a fresh directory fit to hold a seccomp file: owned by
// root (the tests run as root), mode 0755.
func rootDir(t *testing.T) string {
	t.Helper()
	needRoot(t) // the file must be owned by root
	dir := filepath.Join(t.TempDir(), "sc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const validSeccomp = `{"allow":["read","write"]}`

// TestReadSeccompFile: what ReadSeccompFile refuses, each before a byte is
// read and without blocking, and the one shape it accepts.
func TestReadSeccompFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to read
		want  string                                // substring of the error; "" = accepted
	}{
		{"valid 0644", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", validSeccomp, 0o644)
		}, ""},
		{"valid 0444", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", validSeccomp, 0o444)
		}, ""},
		{"relative path", func(t *testing.T, dir string) string { return "sc/a.json" }, "not an absolute clean file path"},
		{"unclean path", func(t *testing.T, dir string) string {
			writeSC(t, dir, "a.json", validSeccomp, 0o644)
			return dir + "/./a.json"
		}, "not an absolute clean file path"},
		{"missing", func(t *testing.T, dir string) string { return filepath.Join(dir, "missing.json") }, "does not exist"},
		{"symlink to a valid file", func(t *testing.T, dir string) string {
			target := writeSC(t, dir, "a.json", validSeccomp, 0o644)
			link := filepath.Join(dir, "link.json")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "symbolic link"},
		{"symlink to a device", func(t *testing.T, dir string) string {
			link := filepath.Join(dir, "link.json")
			if err := os.Symlink("/dev/zero", link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "symbolic link"},
		{"symlinked directory component", func(t *testing.T, dir string) string {
			real := filepath.Join(dir, "real")
			if err := os.Mkdir(real, 0o755); err != nil {
				t.Fatal(err)
			}
			writeSC(t, real, "a.json", validSeccomp, 0o644)
			if err := os.Symlink(real, filepath.Join(dir, "via")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "via", "a.json")
		}, "symbolic link"},
		{"FIFO", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo.json")
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
		{"character device", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "null.json")
			if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
		{"a device by its own path", func(t *testing.T, dir string) string { return "/dev/null" }, "not a regular file"},
		{"directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "d.json")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
		{"not owned by root", func(t *testing.T, dir string) string {
			p := writeSC(t, dir, "a.json", validSeccomp, 0o644)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not owned by root"},
		{"group-writable", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", validSeccomp, 0o664)
		}, "mode 0664 lets group or others write"},
		{"other-writable", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", validSeccomp, 0o646)
		}, "mode 0646 lets group or others write"},
		{"root only (0600)", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", "root:SECRET", 0o600)
		}, "mode 0600 is not readable by others"},
		{"root and group only (0640)", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", "root:SECRET", 0o640)
		}, "mode 0640 is not readable by others"},
		{"directory writable by others", func(t *testing.T, dir string) string {
			p := writeSC(t, dir, "a.json", validSeccomp, 0o644)
			if err := os.Chmod(dir, 0o757); err != nil {
				t.Fatal(err)
			}
			return p
		}, "mode 0757 lets group or others write"},
		{"sticky world-writable directory", func(t *testing.T, dir string) string {
			p := writeSC(t, dir, "a.json", validSeccomp, 0o644)
			if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			return p
		}, "mode 1777 lets group or others write"},
		{"directory not owned by root", func(t *testing.T, dir string) string {
			p := writeSC(t, dir, "a.json", validSeccomp, 0o644)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not owned by root"},
		{"larger than the bound", func(t *testing.T, dir string) string {
			return writeSC(t, dir, "a.json", strings.Repeat(" ", MaxSeccompFileBytes+1), 0o644)
		}, "larger than 65536 bytes"},
		{"sparse 1 TiB", func(t *testing.T, dir string) string {
			p := writeSC(t, dir, "a.json", "", 0o644)
			if err := os.Truncate(p, 1<<40); err != nil {
				t.Fatal(err)
			}
			return p
		}, "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, rootDir(t))
			type result struct {
				data []byte
				err  error
			}
			done := make(chan result, 1)
			go func() {
				data, err := ReadSeccompFile(path)
				done <- result{data, err}
			}()
			var got result
			select {
			case got = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ReadSeccompFile blocked")
			}
			if tt.want == "" {
				if got.err != nil || string(got.data) != validSeccomp {
					t.Fatalf("got %q, %v; want the content, no error", got.data, got.err)
				}
				return
			}
			if got.err == nil || !strings.Contains(got.err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", got.err, tt.want)
			}
			if got.data != nil {
				t.Errorf("got %d bytes with the error, want none", len(got.data))
			}
			if strings.Contains(got.err.Error(), "SECRET") {
				t.Errorf("got %q, want no content of the file in it", got.err)
			}
		})
	}
}

// TestReadSeccompFileRootOnlySystemFile: a root-only system file named as
// a profile is refused before it is read: nothing of it can reach an error
// message.
func TestReadSeccompFileRootOnlySystemFile(t *testing.T) {
	st, err := os.Stat("/etc/shadow")
	if err != nil || st.Mode().Perm()&0o004 != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("no root-only /etc/shadow on this Debian host (stat: %v)", err)
		}
		t.Skip("no root-only /etc/shadow here (with CI set: fails)")
	}
	_, err = ReadSeccompFile("/etc/shadow")
	if err == nil || !strings.Contains(err.Error(), "not readable by others") {
		t.Errorf("got %v, want not readable by others", err)
	}
}

// writeSC writes a file with an exact mode (no umask) and returns its path.
func writeSC(t *testing.T, dir, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, data, mode)
	return p
}

// TestLoadCarriesSeccompData: the set carries the bytes the loader read
// (and the hook checked), the hash covers them, the file is listed for
// the policy watcher, and the bytes are never encoded (profile JSON, the
// decision).
func TestLoadCarriesSeccompData(t *testing.T) {
	dir := rootDir(t)
	sc := writeSC(t, dir, "custom.json", `{"allow":["read","CONTENT-MARK"]}`, 0o644)
	src := strings.Replace(minimalPolicy, "profiles: {p: {}}", "profiles:\n  p: {seccomp: "+sc+"}", 1)
	var checked [][]byte
	opts := LoadOptions{SkipBinaryCheck: true, CheckSeccompFile: func(data []byte) error {
		checked = append(checked, bytes.Clone(data))
		return nil
	}}
	load := func() *Set {
		t.Helper()
		s, err := LoadBytes("sc.yaml", []byte(src), opts)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return s
	}
	s1 := load()
	p, _ := s1.Profile("p")
	if string(p.SeccompData) != `{"allow":["read","CONTENT-MARK"]}` || p.SeccompFile != sc || p.Seccomp != "custom" {
		t.Errorf("got profile seccomp %q file %q data %q, want custom, %s and the file's content", p.Seccomp, p.SeccompFile, p.SeccompData, sc)
	}
	if len(checked) != 1 || !bytes.Equal(checked[0], p.SeccompData) {
		t.Errorf("got hook calls %q, want one with exactly the carried bytes", checked)
	}
	if got := s1.SeccompFiles(); len(got) != 1 || got[0] != sc {
		t.Errorf("got SeccompFiles %v, want [%s]", got, sc)
	}
	if got := load().Hash(); got != s1.Hash() {
		t.Errorf("same content: got hash %s, want %s", got, s1.Hash())
	}
	// Only the JSON changes: the hash does.
	writeSC(t, dir, "custom.json", `{"allow":["write","CONTENT-MARK"]}`, 0o644)
	s2 := load()
	if s2.Hash() == s1.Hash() {
		t.Errorf("edited seccomp file: got the same hash %s, want another", s2.Hash())
	}
	if p2, _ := s2.Profile("p"); string(p2.SeccompData) != `{"allow":["write","CONTENT-MARK"]}` {
		t.Errorf("after the edit: got data %q, want the new content", p2.SeccompData)
	}
	if p1, _ := s1.Profile("p"); string(p1.SeccompData) != `{"allow":["read","CONTENT-MARK"]}` {
		t.Errorf("the earlier set changed its data to %q", p1.SeccompData)
	}
	// policy diff names the edit.
	changes := Diff(s1, s2)
	wantWhat := "seccomp file " + sc + " content changed (sha256 "
	if len(changes) != 1 || changes[0].Kind != Changed || changes[0].Where != "profiles.p" || !strings.HasPrefix(changes[0].What, wantWhat) {
		t.Errorf("got diff %+v, want one change at profiles.p: %s...", changes, wantWhat)
	}
	// Never encoded: not in the profile's JSON, not in a decision.
	pj, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	dec := s1.Decide(t.Context(), Request{Subject: "a", Roles: []string{"viewer"}, Command: "echo"})
	if !dec.Allowed || dec.Profile == nil {
		t.Fatalf("got decision %+v, want allowed with a profile", dec)
	}
	dj, err := json.Marshal(dec)
	if err != nil {
		t.Fatal(err)
	}
	for what, js := range map[string][]byte{"profile": pj, "decision": dj} {
		if bytes.Contains(js, []byte("CONTENT-MARK")) || bytes.Contains(js, []byte("seccomp_data")) {
			t.Errorf("%s JSON carries the seccomp content: %s", what, js)
		}
	}
}

// TestLoadSeccompFileRefusals: the loader reports an unsafe file at the
// profile's seccomp key, with or without the content hook, and never
// calls the hook on it.
func TestLoadSeccompFileRefusals(t *testing.T) {
	dir := rootDir(t)
	ok := writeSC(t, dir, "ok.json", validSeccomp, 0o644)
	private := writeSC(t, dir, "private.json", "SECRET", 0o600)
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, file, want string }{
		{"symlink", link, `sc.yaml:4:7: bad_seccomp: seccomp profile file "` + link + `": a symbolic link: not allowed`},
		{"not world-readable", private, `sc.yaml:4:7: bad_seccomp: seccomp profile file "` + private + `": mode 0600 is not readable by others (want 0644)`},
		{"missing", filepath.Join(dir, "missing.json"), `sc.yaml:4:7: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "missing.json") + `" does not exist`},
	}
	for _, tt := range tests {
		for _, hook := range []bool{false, true} {
			opts := LoadOptions{SkipBinaryCheck: true}
			if hook {
				opts.CheckSeccompFile = func([]byte) error { t.Errorf("%s: hook called on a refused file", tt.name); return nil }
			}
			src := strings.Replace(minimalPolicy, "profiles: {p: {}}", "profiles:\n  p: {seccomp: "+tt.file+"}", 1)
			_, err := LoadBytes("sc.yaml", []byte(src), opts)
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 || list[0].Error() != tt.want {
				t.Errorf("%s (hook %v): got %v, want %s", tt.name, hook, err, tt.want)
			}
		}
	}
}

// TestErrorListSeccompFiles: a rejected load names the seccomp files its
// bad_seccomp errors are about (a watcher watches them until a load
// succeeds); other errors name none.
func TestErrorListSeccompFiles(t *testing.T) {
	dir := t.TempDir()
	missing, other := filepath.Join(dir, "missing.json"), filepath.Join(dir, "other.json")
	src := strings.Replace(minimalPolicy, "profiles: {p: {}}",
		"profiles:\n  p: {seccomp: "+missing+"}\n  q: {seccomp: "+other+"}\n  r: {seccomp: "+missing+"}\n  s: {seccomp: not/abs}", 1)
	_, err := LoadBytes("sc.yaml", []byte(src), LoadOptions{SkipBinaryCheck: true})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	if got, want := list.SeccompFiles(), []string{missing, other}; !slices.Equal(got, want) {
		t.Errorf("got seccomp files %q, want %q", got, want)
	}
	if got := (ErrorList{{Code: CodeBadValue, Message: "x"}}).SeccompFiles(); got != nil {
		t.Errorf("got seccomp files %q of a list without bad_seccomp errors, want none", got)
	}
}

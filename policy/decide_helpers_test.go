package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir builds the directory tree decide.yaml points at:
// DIR/ws/alice (workspace), DIR/ws/alice2, DIR/docs, a few files and
// hostile symlinks.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	mk("ws/alice/src/sub")
	mk("ws/alice2")
	mk("docs/guide")
	write("ws/alice/README", "hello")
	write("ws/alice/-dash", "a file whose name looks like a flag")
	write("ws/alice/src/main.go", "package main")
	write("ws/alice2/secret", "bob")
	write("docs/guide/index.md", "# doc")
	link("/etc/passwd", "ws/alice/abs-escape")
	link("../alice2/secret", "ws/alice/rel-escape")
	link("../alice2", "ws/alice/dir-escape")
	link("src/main.go", "ws/alice/inside-link")
	link("/", "ws/alice/rootlink")
	link("/etc/nonexistent-target", "ws/alice/dangling-abs")
	return dir
}

// loadFixture loads testdata/NAME with @DIR@ replaced.
func loadFixture(t testing.TB, name, dir string) *Set {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), "@DIR@", dir))
	s, err := LoadBytes(name, data, LoadOptions{})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return s
}

func decide(s *Set, roles []string, cmd string, args ...string) *Decision {
	return s.Decide(context.Background(), Request{Subject: "alice", Roles: roles, Command: cmd, Args: args})
}

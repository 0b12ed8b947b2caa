package policy

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzSplitCmdline(f *testing.F) {
	for _, s := range []string{"git log -n 5", `echo "a b" 'c d'`, `echo "a\qb"`, "a # b", "\xff", "ls\n-l", `"`, `\`, "echo \u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCmdline(s)
		if err != nil {
			if !errors.Is(err, ErrBadCmdline) {
				t.Fatalf("error %v does not wrap ErrBadCmdline", err)
			}
			return
		}
		if len(words) == 0 {
			t.Fatalf("no words and no error for %q", s)
		}
		for _, w := range words {
			if !utf8.ValidString(w) || checkChars(w, false) != "" || strings.Contains(w, "#") {
				t.Fatalf("word %q from %q is not clean", w, s)
			}
		}
	})
}

// FuzzDecide drives the argument matcher with arbitrary argv, command
// lines, working directories and roles, and checks the invariants of every
// allowed decision: no control character (but \n\t in multi-line text), no
// denied flag, every path inside its root, Argv[0] the binary.
func FuzzDecide(f *testing.F) {
	dir := fixtureDir(f)
	s := loadFixture(f, "decide.yaml", dir)
	roleSets := [][]string{{"viewer"}, {"operator"}, {"runner"}, {"admin", "runner"}, nil}
	seeds := [][]string{
		{"git", "log", "-n5", "--one", "src"},
		{"git", "--upload-pa=x", "log", "", ""},
		{"git", "log", "-sc", "x=y", ""},
		{"ls", "-la", "--", "rel-escape", ""},
		{"ls", "rootlink/../etc", "", "", ""},
		{"find", ".", "-exec", "sh", ";"},
		{"touch", "dir-escape/new", "", "", ""},
		{"python3", "-c", "print(1)\n", "", ""},
		{"head", "-n", "5", "README", ""},
		{"echo", "\x1b[31m", "\u009b", "\xff", ""},
	}
	for i, sd := range seeds {
		f.Add(false, "", sd[0], sd[1], sd[2], sd[3], sd[4], "", uint8(i), "", "")
	}
	f.Add(true, "git log -n 5 -- src", "", "", "", "", "", "src", uint8(1), "TZ", "UTC")
	f.Add(true, "ls '../alice2'", "", "", "", "", "", "", uint8(1), "LD_PRELOAD", "/x.so")
	f.Fuzz(func(t *testing.T, useCmdline bool, cmdline, cmd, a1, a2, a3, a4, cwd string, role uint8, envKey, envVal string) {
		req := Request{Subject: "alice", Roles: roleSets[int(role)%len(roleSets)], Cwd: cwd}
		if envKey != "" {
			req.Env = map[string]string{envKey: envVal}
		}
		if useCmdline {
			req.Cmdline = cmdline
		} else {
			req.Command = cmd
			for _, a := range []string{a1, a2, a3, a4} {
				if a != "" {
					req.Args = append(req.Args, a)
				}
			}
		}
		d := s.Decide(context.Background(), req)
		if d.Reason == ReasonInternal {
			t.Fatalf("internal error (panic?) for %+v", req)
		}
		if !d.Allowed {
			if len(d.Argv) != 0 || d.Reason == ReasonAllowed {
				t.Fatalf("denial with run data: %+v", d)
			}
			return
		}
		checkAllowedInvariants(t, s, d)
		checkPathsInside(t, s, dir, d)
		for _, kv := range d.Env {
			if checkChars(kv, false) != "" {
				t.Fatalf("allowed env entry %q has a control character", kv)
			}
		}
		if envKey != "" && envKey != "TZ" {
			t.Fatalf("client variable %q allowed", envKey)
		}
	})
}

// checkPathsInside re-checks, independently of paths.go, that the path
// arguments of ls and touch (everything after "--") lie inside a root, both
// lexically and after resolving symlinks on the host.
func checkPathsInside(t *testing.T, s *Set, dir string, d *Decision) {
	if d.Command != "ls" && d.Command != "touch" {
		return
	}
	i := slices.Index(d.Argv, "--")
	if i < 0 {
		return
	}
	hostRoots := map[string]string{"/work": filepath.Join(dir, "ws", "alice"), "/docs": filepath.Join(dir, "docs")}
	for _, p := range d.Argv[i+1:] {
		full := p
		if !strings.HasPrefix(p, "/") {
			full = d.Cwd + "/" + p
		}
		clean := path.Clean(full)
		var target string
		for tgt := range hostRoots {
			if within(clean, tgt) {
				target = tgt
			}
		}
		if target == "" {
			t.Fatalf("allowed path %q (cwd %s) is outside every root", p, d.Cwd)
		}
		for _, c := range strings.Split(full, "/") {
			if strings.EqualFold(c, ".git") {
				t.Fatalf("allowed path %q (cwd %s) names a .git component", p, d.Cwd)
			}
		}
		host := filepath.Join(hostRoots[target], strings.TrimPrefix(clean, target))
		if real, err := filepath.EvalSymlinks(host); err == nil {
			rootReal, _ := filepath.EvalSymlinks(hostRoots[target])
			if !within(real, rootReal) {
				t.Fatalf("allowed path %q resolves to %q outside %q", p, real, rootReal)
			}
		}
	}
}

// FuzzLoad feeds arbitrary bytes to the loader: it never panics, errors
// always carry positions and are sorted, and a loaded set hashes stably
// and decides without failing.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"decide.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add([]byte(strings.ReplaceAll(string(data), "@DIR@", "/srv/fuzz")))
	}
	f.Add([]byte(minimalPolicy))
	f.Add([]byte("version: 1\nroles: {a: &x {}, b: *x}\n"))
	f.Add([]byte("version: 1\nprofiles: {p: {memory: 1.5GiB, umask: '0077', timeout: 1s}}\n"))
	f.Add([]byte("version: 1\ncommands: {x: {path: /bin/x, subcommands: {a: {subcommands: {b: {}}}}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := LoadOptions{SkipBinaryCheck: true}
		s, err := LoadBytes("f.yaml", data, opts)
		if err != nil {
			var el ErrorList
			if !errors.As(err, &el) || len(el) == 0 {
				t.Fatalf("got %T %v, want a non-empty ErrorList", err, err)
			}
			for i, e := range el {
				if e.File != "f.yaml" || e.Line < 1 || e.Col < 1 || e.Code == "" {
					t.Fatalf("error without position or code: %+v", e)
				}
				if i > 0 && el[i-1].Line > e.Line {
					t.Fatalf("errors not sorted: %v", el)
				}
			}
			return
		}
		s2, err := LoadBytes("g.yaml", data, opts)
		if err != nil || s2.Hash() != s.Hash() {
			t.Fatalf("reload: %v, hash %s vs %s", err, s2.Hash(), s.Hash())
		}
		for _, c := range s.Commands() {
			for _, r := range s.Roles() {
				d := s.Decide(context.Background(), Request{Subject: "u", Roles: []string{r.Name}, Command: c.Name, Args: []string{"-x", "a"}})
				if d.Reason == ReasonInternal {
					t.Fatalf("internal error deciding %s", c.Name)
				}
			}
		}
		_ = s.CommandsFor([]string{"a"})
	})
}

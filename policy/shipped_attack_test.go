package policy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shippedDefault loads the shipped policies/default.yaml with its state
// directory in a temporary tree holding alice's workspace: files, a
// directory and symlinks that point outside.
func shippedDefault(t *testing.T) *Set {
	t.Helper()
	state := t.TempDir()
	ws := filepath.Join(state, "workspaces", "alice")
	for _, d := range []string{"d", "repo"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a", ",", "+5f"} {
		if err := os.WriteFile(filepath.Join(ws, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"evil": "/etc/passwd", "up": "../..", "etc": "/etc"} {
		if err := os.Symlink(target, filepath.Join(ws, link)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Load(context.Background(), []string{"../policies/default.yaml"}, LoadOptions{StateDir: state})
	if err != nil {
		t.Fatalf("load the shipped default policy: %v", err)
	}
	return s
}

// TestShippedDefaultAttacks runs attacks against the shipped default
// policy as an operator+developer (the dev token's roles). For an allowed
// attack the final argv must be exactly what is listed: the client's
// spelling never reaches the program, only the canonical one.
func TestShippedDefaultAttacks(t *testing.T) {
	s := shippedDefault(t)
	roles := []string{"operator", "developer"}
	tests := []struct {
		name string
		cwd  string
		args []string
		want ReasonCode
		argv []string // for allowed decisions, after Argv[0]
	}{
		// find: a starting point that find reads as an operator turns the
		// following words into its expression.
		{"find: ',' as a starting point is an operator", "", []string{"find", ",", "-name", "x"}, ReasonBadArgument, nil},
		{"find: ',' after a real starting point", "", []string{"find", ".", ",", "-print"}, ReasonBadArgument, nil},
		{"find: -exec after --", "", []string{"find", "--", "-exec"}, ReasonBadArgument, nil},
		{"find: -execdir", "", []string{"find", ".", "-execdir", "id", ";"}, ReasonFlagDenied, nil},
		{"find: -fprint to a file", "", []string{"find", ".", "-fprint", "out"}, ReasonFlagDenied, nil},
		{"find: -newer through a symlink out", "", []string{"find", ".", "-newer", "evil"}, ReasonPathOutsideRoot, nil},
		{"find: paths go first, flags keep their order", "", []string{"find", "-name", "x", "d", "-o", "-print"}, ReasonAllowed, []string{"d", "-name", "x", "-o", "-print"}},
		// git: optional-argument options must reach git attached, or git
		// would read the value as a revision.
		{"git diff -U 5 reaches git as --unified=5", "", []string{"git", "diff", "-U", "5", "a"}, ReasonAllowed, []string{"diff", "--unified=5", "--", "a"}},
		{"git: abbreviation of a denied flag", "", []string{"git", "log", "--outp=x"}, ReasonFlagDenied, nil},
		{"git: -c attached", "", []string{"git", "-ccore.pager=sh", "log"}, ReasonFlagDenied, nil},
		{"git: --config-env=", "", []string{"git", "--config-env=core.pager=X", "log"}, ReasonFlagDenied, nil},
		{"git: -C", "", []string{"git", "-C", "/", "log"}, ReasonFlagNotAllowed, nil},
		{"git: --git-dir abbreviated", "", []string{"git", "--git-d=/x", "log"}, ReasonFlagDenied, nil},
		{"git: --exec-path in the subcommand", "", []string{"git", "log", "--exec-path=/tmp"}, ReasonFlagDenied, nil},
		{"git: subcommand after --", "", []string{"git", "--", "log"}, ReasonUnknownSubcmd, nil},
		{"git: -- before a flag-like revision", "", []string{"git", "show", "--", "--output=x"}, ReasonBadArgument, nil},
		{"git show: a flag-like revision stays a revision", "", []string{"git", "show", "--", "-p"}, ReasonAllowed, []string{"show", "--end-of-options", "-p"}},
		{"git log: path outside", "", []string{"git", "log", "--", "../../x"}, ReasonPathOutsideRoot, nil},
		{"git log --author value looking like a flag", "", []string{"git", "log", "--author", "--all"}, ReasonAllowed, []string{"log", "--author=--all"}},
		// coreutils
		{"tail: obsolete +5f (follow forever) is a file after --", "", []string{"tail", "+5f"}, ReasonAllowed, []string{"--", "+5f"}},
		{"tail: --fo abbreviates --follow", "", []string{"tail", "--fo", "a"}, ReasonFlagDenied, nil},
		{"wc: --files0-from abbreviated", "", []string{"wc", "--files0=a"}, ReasonFlagDenied, nil},
		{"cp: source through a symlink out", "", []string{"cp", "evil", "d/"}, ReasonPathOutsideRoot, nil},
		{"cp: -t is not an option here", "", []string{"cp", "-t", "/tmp", "a"}, ReasonFlagNotAllowed, nil},
		{"cp: --target-directory abbreviated", "", []string{"cp", "--target=/tmp", "a"}, ReasonFlagNotAllowed, nil},
		{"cp: destination in the read-only docs", "", []string{"cp", "a", "/docs/x"}, ReasonPathOutsideRoot, nil},
		{"cp: -L bundled", "", []string{"cp", "-rL", "d", "e"}, ReasonFlagDenied, nil},
		{"mv: out through ..", "", []string{"mv", "a", "d/../../x"}, ReasonPathOutsideRoot, nil},
		{"rm: the workspace's parent", "", []string{"rm", "-rf", "/work/.."}, ReasonPathOutsideRoot, nil},
		{"rm: through a symlink to ..", "", []string{"rm", "-rf", "up/"}, ReasonPathOutsideRoot, nil},
		{"mkdir: below a symlink to /etc", "", []string{"mkdir", "etc/x"}, ReasonPathOutsideRoot, nil},
		{"grep: -R bundled", "", []string{"grep", "-iR", "x", "."}, ReasonFlagDenied, nil},
		{"grep: --file abbreviated", "", []string{"grep", "--fil=a", "x"}, ReasonFlagDenied, nil},
		{"grep: pattern looking like a flag", "", []string{"grep", "--", "-f", "a"}, ReasonAllowed, []string{"--", "-f", "a"}},
		{"echo: -e after --", "", []string{"echo", "--", "-e"}, ReasonBadArgument, nil},
		{"echo: -ne bundle", "", []string{"echo", "-ne", "x"}, ReasonFlagDenied, nil},
		{"date: -f abbreviated", "", []string{"date", "--fi=a"}, ReasonFlagDenied, nil},
		{"ls: cwd outside", "/work/..", []string{"ls"}, ReasonPathOutsideRoot, nil},
		{"ls: cwd through a symlink", "/work/etc", []string{"ls"}, ReasonPathOutsideRoot, nil},
		{"ls: prefix-lookalike root", "", []string{"ls", "/workspace"}, ReasonPathOutsideRoot, nil},
		{"ls: unicode dash is a path", "", []string{"ls", "\u2013R"}, ReasonPathNotFound, nil},
		{"cat: empty path", "", []string{"cat", ""}, ReasonBadArgument, nil},
		{"cat: NUL in a path", "", []string{"cat", "a\x00b"}, ReasonControlCharacter, nil},
		{"less: no shell escape flags", "", []string{"less", "+!sh", "a"}, ReasonShellSyntax, nil},
		{"ls: '=' inside a short flag", "", []string{"ls", "-="}, ReasonFlagNotAllowed, nil},
		{"ls: a 4000-byte long flag", "", []string{"ls", "--" + strings.Repeat("a", 4000)}, ReasonFlagNotAllowed, nil},
		{"ls: empty long flag with a value", "", []string{"ls", "--=x"}, ReasonFlagNotAllowed, nil},
		{"git log: value with '=' kept whole", "", []string{"git", "log", "--author=a=b"}, ReasonBadFlagValue, nil},
		{"head: positional after -- that looks like a flag", "", []string{"head", "--", "-n5"}, ReasonPathNotFound, nil},
		{"echo: -- then --", "", []string{"echo", "--", "--"}, ReasonBadArgument, nil},
		{"yes: positional starting with a dash", "", []string{"yes", "-x"}, ReasonFlagNotAllowed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(context.Background(), Request{Subject: "alice", Roles: roles, Command: tt.args[0], Args: tt.args[1:], Cwd: tt.cwd})
			if d.Reason != tt.want {
				t.Fatalf("%q: got %s (%v), want %s", tt.args, d.Reason, d.Argv, tt.want)
			}
			if tt.argv != nil && !slices.Equal(d.Argv[1:], tt.argv) {
				t.Errorf("%q: got argv %q, want %q", tt.args, d.Argv[1:], tt.argv)
			}
		})
	}
}

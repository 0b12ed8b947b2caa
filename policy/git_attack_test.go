package policy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedGitRepoConfigCannotBeForged plays an operator who tries to
// make git run a program of theirs: a commit message holding a git
// configuration is copied by cp from .git/COMMIT_EDITMSG over .git/config
// (or to a ".git" file, or from inside .git as the working directory), and
// git diff would then run diff.external. Every step the policy allows is
// run for real (git, touch, cp on the host, with the decided argv, working
// directory and environment); the program must never run.
func TestShippedGitRepoConfigCannotBeForged(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/git"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("no /usr/bin/git (with CI set: fails)")
		}
		t.Fatal("CI without /usr/bin/git")
	}
	s := shippedDefault(t)
	ws := s.roots["workspace"].Host
	ws = strings.Replace(ws, subPlaceholder, "alice", 1)
	marker := filepath.Join(t.TempDir(), "PWNED")
	config := "[diff]\n\texternal = sh -c 'touch " + marker + "'\n"

	run := func(cwd string, args ...string) *Decision {
		t.Helper()
		d := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"operator"}, Command: args[0], Args: args[1:], Cwd: cwd})
		if !d.Allowed {
			return d
		}
		cmd := exec.Command(d.Argv[0], d.Argv[1:]...)
		cmd.Args = d.Argv
		cmd.Dir = filepath.Join(ws, strings.TrimPrefix(d.Cwd, "/work"))
		cmd.Env = d.Env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("%q: %v: %s", d.Argv, err, out)
		}
		return d
	}
	mustAllow := func(d *Decision) {
		t.Helper()
		if !d.Allowed {
			t.Fatalf("setup step: got %s, want allowed", d.Reason)
		}
	}
	mustAllow(run("", "git", "init", "-q", "r"))
	mustAllow(run("/work/r", "touch", "f"))
	mustAllow(run("/work/r", "git", "add", "f"))
	mustAllow(run("/work/r", "git", "commit", "-q", "-m", config))

	mustAllow(run("/work/r", "touch", "g"))

	// The last attack that git would act on is the forged .git/config.
	attacks := []struct {
		name string
		cwd  string
		args []string
	}{
		{"mkdir inside .git", "/work/r", []string{"mkdir", ".git/hooks2"}},
		{"touch inside .git", "", []string{"touch", "r/.git/config"}},
		{"mv over .git/config", "/work/r", []string{"mv", "g", ".git/config"}},
		{"a .git file pointing elsewhere", "/work/r", []string{"cp", "f", "/work/r/.git"}},
		{"through .. after .git", "/work/r", []string{"cp", "f", "sub/../.git/config"}},
		{"cp with .git in another letter case", "/work/r", []string{"cp", ".GIT/COMMIT_EDITMSG", ".Git/config"}},
		{"cp COMMIT_EDITMSG out of .git", "/work/r", []string{"cp", ".git/COMMIT_EDITMSG", "cfg"}},
		{"working directory inside .git", "/work/r/.git", []string{"cp", "COMMIT_EDITMSG", "config"}},
		{"cp COMMIT_EDITMSG over .git/config", "/work/r", []string{"cp", ".git/COMMIT_EDITMSG", ".git/config"}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if d := run(a.cwd, a.args...); d.Reason != ReasonBadArgument {
				t.Errorf("%q in %q: got %s, want %s", a.args, a.cwd, d.Reason, ReasonBadArgument)
			}
		})
	}
	// Change the tracked file and diff it: a forged diff.external would run.
	mustAllow(run("/work/r", "cp", "../a", "f"))
	mustAllow(run("/work/r", "git", "diff", "--", "f"))
	mustAllow(run("/work/r", "git", "log", "-p"))
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("git ran the program of a forged repository configuration: got %s created, want nothing", marker)
	}
}

// TestShippedGitIgnoresForgedBareRepository: a directory made to look like
// a bare repository (as a developer's shell could leave in the workspace)
// is not used by git as the operator runs it: its config would otherwise
// apply.
func TestShippedGitIgnoresForgedBareRepository(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/git"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("no /usr/bin/git (with CI set: fails)")
		}
		t.Fatal("CI without /usr/bin/git")
	}
	s := shippedDefault(t)
	ws := strings.Replace(s.roots["workspace"].Host, subPlaceholder, "alice", 1)
	fb := filepath.Join(ws, "fake")
	for _, d := range []string{"objects", "refs"} {
		if err := os.MkdirAll(filepath.Join(fb, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"HEAD": "ref: refs/heads/main\n", "config": "[core]\n\tbare = true\n[user]\n\tname = forged\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(fb, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"operator"}, Command: "git", Args: []string{"status"}, Cwd: "/work/fake"})
	if !d.Allowed {
		t.Fatalf("git status: got %s, want allowed", d.Reason)
	}
	cmd := exec.Command(d.Argv[0], d.Argv[1:]...)
	cmd.Dir, cmd.Env = fb, d.Env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "safe.bareRepository") {
		t.Errorf("git status in a forged bare repository: got %v %q, want it refused (safe.bareRepository)", err, out)
	}
}

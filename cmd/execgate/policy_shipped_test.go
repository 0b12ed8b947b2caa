package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestShippedPolicyTestsCoverage: the shipped policies' tests have, for
// every role, allowed and denied cases, and for every deny entry of every
// command a case that tries it and expects flag_denied.
func TestShippedPolicyTestsCoverage(t *testing.T) {
	files, err := filepath.Glob("../../policies/tests/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("want a test file per shipped policy, got %v (%v)", files, err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := parseCaseFile(name, data)
			if err != nil {
				t.Fatal(err)
			}
			set, err := policy.Load(context.Background(), []string{cf.Policy}, policy.LoadOptions{StateDir: defaultStateDir})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range set.Roles() {
				var allow, deny bool
				for _, c := range cf.Cases {
					if slices.Contains(c.Roles, r.Name) {
						allow = allow || c.Expect == "allow"
						deny = deny || c.Expect == "deny"
					}
				}
				if !allow || !deny {
					t.Errorf("role %q: allowed cases %t, denied cases %t; want both", r.Name, allow, deny)
				}
			}
			for _, cmd := range set.Commands() {
				if !triesCommand(cf, cmd.Name, "") {
					t.Errorf("command %q: no allowed case runs it", cmd.Name)
				}
				for _, sc := range cmd.Subcommands {
					if !triesCommand(cf, cmd.Name, sc.Name) {
						t.Errorf("subcommand %s %s: no allowed case runs it", cmd.Name, sc.Name)
					}
				}
				for _, flag := range cmd.Deny {
					if !triesDenied(cf, cmd.Name, flag) {
						t.Errorf("command %q: no case tries denied flag %s and expects flag_denied", cmd.Name, flag)
					}
				}
			}
		})
	}
}

// triesCommand reports whether an allowed case runs command (and
// subcommand, when not "").
func triesCommand(cf *caseFile, command, subcommand string) bool {
	for _, c := range cf.Cases {
		words := c.Run
		if c.Cmdline != "" {
			words = strings.Fields(c.Cmdline)
		}
		if c.Expect == "allow" && len(words) > 0 && words[0] == command &&
			(subcommand == "" || slices.Contains(words[1:], subcommand)) {
			return true
		}
	}
	return false
}

// triesDenied reports whether a case runs command with flag (alone, with
// =value, or with an attached value) and expects flag_denied.
func triesDenied(cf *caseFile, command, flag string) bool {
	for _, c := range cf.Cases {
		if c.Expect != "deny" || c.Reason != policy.ReasonFlagDenied {
			continue
		}
		words := c.Run
		if c.Cmdline != "" {
			words = strings.Fields(c.Cmdline)
		}
		if len(words) == 0 || words[0] != command {
			continue
		}
		for _, w := range words[1:] {
			if w == flag || strings.HasPrefix(w, flag+"=") || (len(flag) == 2 && strings.HasPrefix(w, flag)) {
				return true
			}
		}
	}
	return false
}

// TestDefaultGitEnvDisarmsRepoConfig runs the real git with the
// environment and argv the default policy decides, in a repository whose
// own configuration tries to run programs (core.fsmonitor, a pre-commit
// hook, core.pager): none of them may run.
func TestDefaultGitEnvDisarmsRepoConfig(t *testing.T) {
	set, err := policy.Load(context.Background(), []string{"../../policies/default.yaml"}, policy.LoadOptions{StateDir: defaultStateDir})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	set, err = set.WithWorkspaceHost(filepath.Join(tmp, "ws", "{sub}"))
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := set.WorkspaceHost("alice")
	marker := filepath.Join(tmp, "pwned")
	evil := "touch " + marker
	setup := [][]string{
		{"git", "init", "-q", ws},
		{"git", "-C", ws, "config", "core.fsmonitor", evil},
		{"git", "-C", ws, "config", "core.pager", evil},
		{"git", "-C", ws, "config", "alias.st", "!" + evil},
	}
	for _, argv := range setup {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
	hook := filepath.Join(ws, ".git", "hooks", "pre-commit")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"+evil+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "f.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status"}, {"add", "f.txt"}, {"commit", "-m", "one"}, {"log", "-p"}, {"diff", "--stat"},
	} {
		d := set.Decide(context.Background(), policy.Request{Subject: "alice", Roles: []string{"operator"}, Command: "git", Args: args})
		if !d.Allowed {
			t.Fatalf("git %v: denied %s", args, d.Reason)
		}
		cmd := exec.Command(d.Argv[0], d.Argv[1:]...)
		cmd.Dir, cmd.Env = ws, d.Env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("git %v ran a program from the repository's configuration", args)
		}
	}
	d := set.Decide(context.Background(), policy.Request{Subject: "alice", Roles: []string{"operator"}, Command: "git", Args: []string{"st"}})
	if d.Allowed {
		t.Errorf("git st (an alias) allowed, want denied")
	}
}

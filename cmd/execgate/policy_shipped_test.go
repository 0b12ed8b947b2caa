package main

import (
	"context"
	"os"
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
				for _, flag := range cmd.Deny {
					if !triesDenied(cf, cmd.Name, flag) {
						t.Errorf("command %q: no case tries denied flag %s and expects flag_denied", cmd.Name, flag)
					}
				}
			}
		})
	}
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

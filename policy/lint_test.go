package policy

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The -update flag rewrites golden files. It is registered here unless
// another test file of the package already did (package-level flag
// variables are initialised before any init function runs).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

// updating reports whether -update was given.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// loadFixture loads a testdata policy without checking binaries, so the
// fixtures may name programs this machine lacks.
func lintFixture(t testing.TB, path string) *Set {
	t.Helper()
	s, err := Load(context.Background(), []string{path}, LoadOptions{SkipBinaryCheck: true, StateDir: "/var/lib/execgate"})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return s
}

func renderFindings(l ErrorList) string {
	var b strings.Builder
	for _, e := range l {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// checkGolden compares got with a golden file, rewriting it with -update.
func checkToolGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if updating() {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// TestLintGolden lints every fixture under testdata/lint and compares the
// findings with its .golden file.
func TestLintGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "lint", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no lint fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			got := renderFindings(Lint(lintFixture(t, f), LintOptions{}))
			checkToolGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(got))
		})
	}
}

// finding is what a table case expects: a code at a line of a fixture.
type lintFinding struct {
	code string
	line int
	text string // a substring of the message
}

func TestLintFindings(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    []lintFinding
		notWant []lintFinding
	}{
		{"clean policy has no finding", "clean.yaml", nil, nil},
		{"shell outside untrusted", "interpreters.yaml", []lintFinding{{LintInterpreter, 17, `"sh" runs`}}, nil},
		{"shell found through its symlink", "interpreters.yaml", []lintFinding{{LintInterpreter, 18, `"shell" runs bash`}}, nil},
		{"versioned python", "interpreters.yaml", []lintFinding{{LintInterpreter, 19, "python"}}, nil},
		{"wrappers", "interpreters.yaml", []lintFinding{{LintInterpreter, 20, "env"}, {LintInterpreter, 21, "xargs"}}, nil},
		{"awk perl node vi", "interpreters.yaml", []lintFinding{{LintInterpreter, 22, "awk"}, {LintInterpreter, 23, "perl"}, {LintInterpreter, 24, "node"}, {LintInterpreter, 25, "vi"}}, nil},
		{"untrusted profile allows interpreters", "interpreters.yaml", nil, []lintFinding{{LintInterpreter, 26, ""}, {LintInterpreter, 27, ""}, {LintInterpreter, 28, ""}}},
		{"git dangerous flags", "dangerous_flags.yaml", []lintFinding{{LintDangerousFlag, 14, "--upload-pack"}, {LintDangerousFlag, 14, "--config-env"}, {LintDangerousFlag, 14, "--git-dir"}}, []lintFinding{{LintDangerousFlag, 14, "deny -c,"}, {LintDangerousFlag, 14, "deny --exec,"}}},
		{"git config subcommand", "dangerous_flags.yaml", []lintFinding{{LintDangerousSubcommand, 20, `"config"`}}, []lintFinding{{LintDangerousSubcommand, 19, ""}}},
		{"find fully denied", "dangerous_flags.yaml", []lintFinding{{LintDangerousFlag, 21, "-files0-from"}}, []lintFinding{{LintDangerousFlag, 21, "deny -exec,"}}},
		{"tar", "dangerous_flags.yaml", []lintFinding{{LintDangerousFlag, 25, "--checkpoint-action"}, {LintDangerousFlag, 25, "--to-command"}, {LintDangerousFlag, 25, "deny -I,"}, {LintDangerousFlag, 25, "--use-compress-program"}}, nil},
		{"ssh fully denied", "dangerous_flags.yaml", nil, []lintFinding{{LintDangerousFlag, 28, ""}}},
		{"wc files0-from", "dangerous_flags.yaml", []lintFinding{{LintDangerousFlag, 32, "--files0-from"}}, nil},
		{"untrusted git is not linted", "dangerous_flags.yaml", nil, []lintFinding{{LintDangerousFlag, 35, ""}}},
		{"writable shared root points at readonly", "profiles.yaml", []lintFinding{{LintWritableRoot, 7, `"shared"`}}, []lintFinding{{LintWritableRoot, 8, ""}, {LintWritableRoot, 6, ""}}},
		{"network points at its key", "profiles.yaml", []lintFinding{{LintNetwork, 22, "loopback"}}, nil},
		{"every threshold at its key", "profiles.yaml", []lintFinding{
			{LintLimit, 11, "timeout 2h0m0s"}, {LintLimit, 12, "kill_grace 1m0s"}, {LintLimit, 13, "memory 4GiB"},
			{LintLimit, 14, "pids 4096"}, {LintLimit, 15, "cpu_quota 4"}, {LintLimit, 16, "cpu_seconds 7200"},
			{LintLimit, 17, "open_files 65536"}, {LintLimit, 18, "file_size 2GiB"}, {LintLimit, 19, "tmpfs 2GiB"},
			{LintLimit, 20, "max_output 128MiB"}, {LintLimit, 21, "output_rate 32MiB"},
		}, nil},
		{"an unset limit points at the profile", "profiles.yaml", []lintFinding{{LintLimit, 10, "workspace_size unlimited"}}, nil},
		{"argument limits", "profiles.yaml", []lintFinding{{LintLimit, 42, "max_arg_bytes"}, {LintLimit, 42, "max_args 2048"}, {LintLimit, 42, "max_total_bytes"}}, nil},
		{"root uid, umask, tty, exec", "profiles.yaml", []lintFinding{{LintRunsAsRoot, 23, ""}, {LintUmask, 25, "0000"}, {LintTTY, 26, ""}, {LintWritableExec, 27, ""}}, nil},
		{"untrusted profile may have tty and exec", "profiles.yaml", nil, []lintFinding{{LintTTY, 31, ""}, {LintWritableExec, 32, ""}, {LintLimit, 33, ""}, {LintLimit, 29, ""}}},
		{"workspace size only where the workspace is mounted", "profiles.yaml", nil, []lintFinding{{LintLimit, 35, "workspace_size"}}},
		{"role granted everything", "roles.yaml", []lintFinding{{LintRoleEverything, 6, `"operator"`}, {LintRoleEverything, 7, `"admin"`}}, []lintFinding{{LintRoleEverything, 5, ""}, {LintRoleEverything, 8, ""}}},
		{"waiver above the rule", "waivers.yaml", nil, []lintFinding{{LintInterpreter, 13, ""}}},
		{"waiver on the rule's line", "waivers.yaml", nil, []lintFinding{{LintInterpreter, 14, ""}}},
		{"waiver without reason does not waive", "waivers.yaml", []lintFinding{{LintInterpreter, 15, ""}, {LintBadWaiver, 15, "no reason"}}, nil},
		{"waiver with unknown code", "waivers.yaml", []lintFinding{{LintInterpreter, 16, ""}, {LintBadWaiver, 16, "no_such_lint"}}, nil},
		{"unused waiver", "waivers.yaml", []lintFinding{{LintBadWaiver, 18, "waives nothing"}}, nil},
		{"a mark inside a string is not a waiver", "waivers.yaml", nil, []lintFinding{{LintBadWaiver, 18, "role_grants_everything"}}},
		{"waiver without code", "waivers.yaml", []lintFinding{{LintBadWaiver, 20, "no lint code"}}, nil},
	}
	cache := map[string]ErrorList{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := cache[tc.fixture]
			if !ok {
				got = Lint(lintFixture(t, filepath.Join("testdata", "lint", tc.fixture)), LintOptions{})
				cache[tc.fixture] = got
			}
			if tc.want == nil && tc.notWant == nil && len(got) != 0 {
				t.Fatalf("got %d findings, want none:\n%s", len(got), renderFindings(got))
			}
			for _, w := range tc.want {
				if !hasFinding(got, w) {
					t.Errorf("missing %s at line %d containing %q; got:\n%s", w.code, w.line, w.text, renderFindings(got))
				}
			}
			for _, w := range tc.notWant {
				if hasFinding(got, w) {
					t.Errorf("unexpected %s at line %d containing %q; got:\n%s", w.code, w.line, w.text, renderFindings(got))
				}
			}
		})
	}
}

func hasFinding(l ErrorList, f lintFinding) bool {
	return slices.ContainsFunc(l, func(e *Error) bool {
		return e.Code == f.code && e.Line == f.line && strings.Contains(e.Message, f.text)
	})
}

// TestLintShippedPolicies keeps the shipped policies strict-clean.
func TestLintShippedPolicies(t *testing.T) {
	for _, f := range []string{"default.yaml", "code-runner.yaml"} {
		t.Run(f, func(t *testing.T) {
			p := filepath.Join("..", "policies", f)
			s, err := Load(context.Background(), []string{p}, LoadOptions{StateDir: "/var/lib/execgate"})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if got := Lint(s, LintOptions{}); len(got) != 0 {
				t.Errorf("got findings, want none:\n%s", renderFindings(got))
			}
		})
	}
}

// TestLintWaiverNeedsTheText: without the file text no waiver applies, so
// a waived finding comes back (a lint run never trusts what it cannot read).
func TestLintWaiverNeedsTheText(t *testing.T) {
	s := lintFixture(t, filepath.Join("testdata", "lint", "waivers.yaml"))
	got := Lint(s, LintOptions{ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist }})
	if !hasFinding(got, lintFinding{LintInterpreter, 13, ""}) {
		t.Errorf("got no finding at line 13 without the waiver text:\n%s", renderFindings(got))
	}
	if hasFinding(got, lintFinding{LintBadWaiver, 18, ""}) {
		t.Errorf("got a waiver finding without the waiver text")
	}
}

func TestLintNilSet(t *testing.T) {
	if got := Lint(nil, LintOptions{}); got != nil {
		t.Errorf("Lint(nil) = %v, want nil", got)
	}
}

func TestProgramName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/python3.11", "python"},
		{"/usr/bin/python3", "python"},
		{"/usr/bin/vim.basic", "vim"},
		{"/usr/bin/perl5.36.0", "perl"},
		{"/usr/bin/lua5.4", "lua"},
		{"/usr/bin/Rscript", "rscript"},
		{"/usr/bin/git", "git"},
		{"/lib64/ld-linux-x86-64.so.2", "ld.so"},
		{"/usr/bin/ls", "ls"},
		{"/usr/bin/md5sum", "md5sum"},
		{"/usr/bin/sha256sum", "sha256sum"},
	}
	for _, tc := range tests {
		if got := programName(tc.in); got != tc.want {
			t.Errorf("programName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLintCatalogConsistent: every dangerous flag is a valid deny entry, so
// a policy can always follow the linter's advice.
func TestLintCatalogConsistent(t *testing.T) {
	for prog, flags := range dangerousFlags {
		seen := map[string]bool{}
		for _, f := range flags {
			if !validFlagName(f.Flag) {
				t.Errorf("%s: %q is not a valid deny entry", prog, f.Flag)
			}
			if seen[f.Flag] {
				t.Errorf("%s: %q listed twice", prog, f.Flag)
			}
			seen[f.Flag] = true
			if f.Why == "" {
				t.Errorf("%s: %q has no reason", prog, f.Flag)
			}
		}
	}
	codes := LintCodes()
	if !slices.IsSorted(codes) || len(slices.Compact(slices.Clone(codes))) != len(codes) {
		t.Errorf("LintCodes() = %v, want sorted and unique", codes)
	}
}

// FuzzParseWaivers: any text parses without panic, and every waiver the
// parser returns is either well-formed (known codes, a reason) or marked
// malformed.
func FuzzParseWaivers(f *testing.F) {
	for _, seed := range []string{
		"a: 1 # lint:waive network_enabled -- why\n",
		"# lint:waive role_grants_everything -- r\nadmin: {}\n",
		"x: \"# lint:waive runs_as_root -- in a string\"\n",
		"# lint:waive\n", "# lint:waive a,b -- \n", "k: |\n  # lint:waive x -- y\n",
		"- [# lint:waive\n", "a:\n  b: c\n  # lint:waive bad_waiver -- r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, w := range parseWaivers("f.yaml", []byte(text)) {
			if w.malformed != "" {
				continue
			}
			if w.reason == "" || len(w.codes) == 0 {
				t.Fatalf("well-formed waiver without reason or codes: %+v", w)
			}
			for _, c := range w.codes {
				if !slices.Contains(LintCodes(), c) || c == LintBadWaiver {
					t.Fatalf("well-formed waiver with unknown code %q", c)
				}
			}
			if w.line < 1 {
				t.Fatalf("waiver at line %d", w.line)
			}
		}
	})
}

// TestLintCatalogDocumented: docs/policy.md lists every program, flag and
// subcommand the strict linter knows.
func TestLintCatalogDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, "\n## Strict lints\n")
	if i < 0 {
		t.Fatal("docs/policy.md has no Strict lints section")
	}
	doc = doc[i:]
	if j := strings.Index(doc[1:], "\n## "); j >= 0 {
		doc = doc[:j+1]
	}
	for name := range interpreters {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("interpreter %q is not documented", name)
		}
	}
	for prog, flags := range dangerousFlags {
		row := ""
		for _, ln := range strings.Split(doc, "\n") {
			if strings.HasPrefix(ln, "| ") && strings.Contains(strings.SplitN(ln, "|", 3)[1], "`"+prog+"`") {
				row = ln
			}
		}
		if row == "" {
			t.Errorf("no dangerous-flags row for %q", prog)
			continue
		}
		for _, f := range flags {
			if !strings.Contains(row, "`"+f.Flag+"`") {
				t.Errorf("%s flag %q is not in its documented row", prog, f.Flag)
			}
		}
	}
	for _, subs := range dangerousSubcommands {
		for sc := range subs {
			if !strings.Contains(doc, "`"+sc+"`") {
				t.Errorf("dangerous subcommand %q is not documented", sc)
			}
		}
	}
}

// BenchmarkLintDefault lints the shipped default policy (what a CI check
// of a policy pull request pays).
func BenchmarkLintDefault(b *testing.B) {
	s := lintFixture(b, filepath.Join("..", "policies", "default.yaml"))
	b.ReportAllocs()
	for b.Loop() {
		if got := Lint(s, LintOptions{}); len(got) != 0 {
			b.Fatalf("findings: %v", got)
		}
	}
}

// FuzzLint: any policy that loads lints without panic, and every finding
// names a known code and a position in the file.
func FuzzLint(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "lint", "*.yaml"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadBytes("f.yaml", data, LoadOptions{SkipBinaryCheck: true, StateDir: "/var/lib/execgate"})
		if err != nil {
			return
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		read := func(string) ([]byte, error) { return data, nil }
		for _, e := range Lint(s, LintOptions{ReadFile: read}) {
			if !slices.Contains(LintCodes(), e.Code) {
				t.Fatalf("unknown code %q", e.Code)
			}
			if e.File != "f.yaml" || e.Line < 1 || e.Line > lines || e.Col < 1 {
				t.Fatalf("finding outside the file: %v", e)
			}
		}
	})
}

// TestForbiddenEnvDocumented: docs/policy.md lists every variable and
// prefix a client may never set.
func TestForbiddenEnvDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, "\n## env\n")
	j := strings.Index(doc, "\n## commands\n")
	if i < 0 || j < i {
		t.Fatal("docs/policy.md has no env section")
	}
	doc = doc[i:j]
	for name := range forbiddenClientEnv {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("forbidden variable %s is not documented", name)
		}
	}
	for _, p := range forbiddenClientEnvPrefixes {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("forbidden prefix %s is not documented", p)
		}
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/execgate/execgate/policy"
)

// runPolicyTest implements `execgate policy test [-run REGEX] [DIR|FILE]...`:
// it runs policy test files (policy_cases.go) and prints one PASS or FAIL
// line per case, then "N passed, N failed". Each test file decides against
// its policy with the workspace moved to a fresh temporary directory that
// holds the file's fixtures. Exit 0 when every case passed, 1 otherwise, 2
// on bad usage.
func runPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("execgate policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runRE := fs.String("run", "", "run only the cases whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print the decision trace of failing cases")
	stateDir := fs.String("state-dir", defaultStateDir, "the gateway's state directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: execgate policy test [-run REGEX] [-v] [DIR|FILE]...   (default: policies/tests)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	filter, err := regexp.Compile(*runRE)
	if err != nil {
		fmt.Fprintf(stderr, "execgate policy test: -run: %v\n", err)
		return exitUsage
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{filepath.Join("policies", "tests")}
	}
	files, err := expandPolicyPaths(paths)
	if err != nil {
		fmt.Fprintf(stderr, "execgate policy test: %v\n", err)
		return exitUsage
	}
	tr := &testRunner{ctx: ctx, out: stdout, filter: filter, verbose: *verbose,
		opts: loadOptions(*stateDir)}
	for _, f := range files {
		tr.runFile(f)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", tr.passed, tr.failed)
	if tr.failed > 0 || tr.passed == 0 {
		return exitFinding
	}
	return exitOK
}

// testRunner runs test files and counts cases.
type testRunner struct {
	ctx            context.Context
	out            io.Writer
	filter         *regexp.Regexp
	verbose        bool
	opts           policy.LoadOptions
	passed, failed int
}

// fileFail counts a test file that could not run as one failed case.
func (tr *testRunner) fileFail(name string, err error) {
	tr.failed++
	fmt.Fprintf(tr.out, "FAIL %s: %v\n", name, err)
}

func (tr *testRunner) runFile(name string) {
	f, err := policy.OpenRegular(name) // a FIFO would hang the run
	if err != nil {
		tr.fileFail(name, err)
		return
	}
	cf, err := readCaseFile(name, f)
	f.Close()
	if err != nil {
		tr.fileFail(name, err)
		return
	}
	set, err := policy.Load(tr.ctx, []string{cf.Policy}, tr.opts)
	if err != nil {
		var list policy.ErrorList
		if errors.As(err, &list) {
			err = fmt.Errorf("policy %s does not load:\n%w", cf.Policy, list)
		}
		tr.fileFail(name, err)
		return
	}
	tmp, err := os.MkdirTemp("", "execgate-policy-test-")
	if err != nil {
		tr.fileFail(name, err)
		return
	}
	defer os.RemoveAll(tmp)
	if _, ok := set.WorkspaceRoot(); ok {
		set, err = set.WithWorkspaceHost(filepath.Join(tmp, "workspaces", "{sub}"))
		if err == nil {
			err = makeFixtures(set, cf)
		}
		if err != nil {
			tr.fileFail(name, err)
			return
		}
	}
	for _, c := range cf.Cases {
		if tr.filter.MatchString(c.Name) {
			tr.runCase(set, cf.Name, c)
		}
	}
}

var fixtureSubjectRE = regexp.MustCompile(policy.DefaultSubjectPattern)

// makeFixtures creates the workspace of every well-formed subject the file
// names, and the fixture entries inside it.
func makeFixtures(set *policy.Set, cf *caseFile) error {
	subs := []string{}
	for _, c := range cf.Cases {
		subs = append(subs, c.Sub)
	}
	for s := range cf.Files {
		subs = append(subs, s)
	}
	slices.Sort(subs)
	for _, sub := range slices.Compact(subs) {
		if !fixtureSubjectRE.MatchString(sub) || sub == "." || sub == ".." {
			if len(cf.Files[sub]) > 0 {
				return fmt.Errorf("files: subject %q is not a valid subject", sub)
			}
			continue
		}
		ws, _ := set.WorkspaceHost(sub)
		if err := os.MkdirAll(ws, 0o755); err != nil {
			return fmt.Errorf("fixture workspace %s: %w", sub, err)
		}
		if err := makeWorkspaceFixtures(ws, cf.Files[sub]); err != nil {
			return fmt.Errorf("fixtures of %s: %w", sub, err)
		}
	}
	return nil
}

// makeWorkspaceFixtures creates one workspace's fixtures through an os.Root, so a
// fixture path that runs through an earlier symlink fixture cannot create
// anything outside the workspace.
func makeWorkspaceFixtures(ws string, fxs []fixture) error {
	root, err := os.OpenRoot(ws)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, fx := range fxs {
		if err := makeFixture(root, fx); err != nil {
			return fmt.Errorf("%s: %w", fx.Path, err)
		}
	}
	return nil
}

func makeFixture(root *os.Root, fx fixture) error {
	p := filepath.FromSlash(fx.Path)
	if dir := filepath.Dir(p); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch {
	case fx.Symlink != "":
		return root.Symlink(fx.Symlink, p)
	case fx.Dir:
		return root.MkdirAll(p, 0o755)
	}
	return root.WriteFile(p, []byte(fx.Content), 0o644)
}

func (tr *testRunner) runCase(set *policy.Set, file string, c *policyCase) {
	dec := set.Decide(tr.ctx, c.request())
	where := fmt.Sprintf("%s:%d", file, c.Line)
	if problem := checkCase(c, dec); problem != "" {
		tr.failed++
		fmt.Fprintf(tr.out, "FAIL %s: %s: %s\n", where, c.Name, problem)
		if tr.verbose {
			for _, t := range dec.Trace {
				fmt.Fprintf(tr.out, "     %-6s %s: %s\n", t.Outcome, ruleText(t.Rule), t.Detail)
			}
		}
		return
	}
	tr.passed++
	fmt.Fprintf(tr.out, "PASS %s: %s\n", where, c.Name)
}

// checkCase compares a decision with a case's expectations; "" means pass.
func checkCase(c *policyCase, d *policy.Decision) string {
	got := "deny (" + string(d.Reason) + ")"
	if d.Allowed {
		got = "allow"
	}
	detail := ""
	if n := len(d.Trace); n > 0 && !d.Allowed {
		detail = "; last rule " + ruleText(d.Trace[n-1].Rule) + ": " + d.Trace[n-1].Detail
	}
	switch {
	case c.Expect == "allow" && !d.Allowed:
		return fmt.Sprintf("got %s, want allow%s", got, detail)
	case c.Expect == "deny" && d.Allowed:
		return fmt.Sprintf("got allow with argv %s, want deny (%s)", quoteArgv(d.Argv), c.Reason)
	case c.Expect == "deny" && d.Reason != c.Reason:
		return fmt.Sprintf("got %s, want deny (%s)%s", got, c.Reason, detail)
	case c.Argv != nil && !slices.Equal(c.Argv, d.Argv):
		return fmt.Sprintf("got argv %s, want %s", quoteArgv(d.Argv), quoteArgv(c.Argv))
	case c.Profile != "" && (d.Profile == nil || d.Profile.Name != c.Profile):
		name := "<none>"
		if d.Profile != nil {
			name = d.Profile.Name
		}
		return fmt.Sprintf("got profile %s, want %s", name, c.Profile)
	}
	return ""
}

// knownReason reports whether r is a documented reason code.
func knownReason(r policy.ReasonCode) bool {
	return slices.Contains(policy.ReasonCodes(), r)
}

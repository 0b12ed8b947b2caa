package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

func TestParseCaseFile(t *testing.T) {
	cf, err := parseCaseFile("tests/t.yaml", []byte(`version: 1
policy: ../p.yaml
defaults: {sub: alice, roles: [viewer]}
files:
  alice: [a.txt, dir/, {path: l, symlink: /etc}, {path: c.txt, content: "hi"}]
cases:
  - {name: one, run: [ls, -l], expect: allow, argv: [/usr/bin/ls, -l], profile: small}
  - name: two
    sub: bob
    roles: [operator]
    cmdline: git -c x=y log
    env: {TZ: UTC}
    cwd: /work/sub
    tty: true
    expect: deny
    reason: flag_denied
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cf.Policy, filepath.Join("tests", "..", "p.yaml"); got != filepath.Clean(want) && got != want {
		t.Errorf("policy %q, want %q", got, want)
	}
	wantFx := []fixture{{Path: "a.txt"}, {Path: "dir", Dir: true}, {Path: "l", Symlink: "/etc"}, {Path: "c.txt", Content: "hi"}}
	if !slices.Equal(cf.Files["alice"], wantFx) {
		t.Errorf("fixtures %+v, want %+v", cf.Files["alice"], wantFx)
	}
	if len(cf.Cases) != 2 {
		t.Fatalf("got %d cases, want 2", len(cf.Cases))
	}
	one, two := cf.Cases[0], cf.Cases[1]
	if one.Sub != "alice" || !slices.Equal(one.Roles, []string{"viewer"}) || one.Line != 7 {
		t.Errorf("case one: sub %q roles %v line %d; want defaults and line 7", one.Sub, one.Roles, one.Line)
	}
	r := one.request()
	if r.Command != "ls" || !slices.Equal(r.Args, []string{"-l"}) || !r.Trace {
		t.Errorf("request %+v, want ls -l with a trace", r)
	}
	if two.Sub != "bob" || two.Reason != policy.ReasonFlagDenied || !two.TTY || two.Env["TZ"] != "UTC" || two.Cwd != "/work/sub" {
		t.Errorf("case two: %+v", two)
	}
	if r := two.request(); r.Cmdline != "git -c x=y log" || r.Command != "" {
		t.Errorf("request %+v, want the cmdline form", r)
	}
}

func TestParseCaseFileErrors(t *testing.T) {
	head := "version: 1\npolicy: p.yaml\ncases:\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "empty test file"},
		{"not yaml", "a: [", "did not find expected"},
		{"no version", "policy: p\ncases: [{name: a, run: [ls], expect: allow}]\n", `"version" is required`},
		{"bad version", "version: 2\npolicy: p\ncases: [{name: a, run: [ls], expect: allow}]\n", "version: must be 1"},
		{"no policy", "version: 1\ncases: [{name: a, run: [ls], expect: allow}]\n", `"policy" is required`},
		{"unknown key", "version: 1\npolicy: p\npolcy: x\ncases: [{name: a, run: [ls], expect: allow}]\n", `unknown key "polcy"`},
		{"no cases", "version: 1\npolicy: p\ncases: []\n", "non-empty list"},
		{"unknown case key", head + "  - {name: a, run: [ls], expect: allow, reson: x}\n", `unknown key "reson"`},
		{"no name", head + "  - {run: [ls], expect: allow}\n", `"name" is required`},
		{"no expect", head + "  - {name: a, run: [ls]}\n", `"expect" is required`},
		{"bad expect", head + "  - {name: a, run: [ls], expect: maybe}\n", "expect must be allow or deny"},
		{"deny without reason", head + "  - {name: a, run: [ls], expect: deny}\n", "needs a reason code"},
		{"unknown reason", head + "  - {name: a, run: [ls], expect: deny, reason: nope}\n", `unknown reason code "nope"`},
		{"deny with allowed", head + "  - {name: a, run: [ls], expect: deny, reason: allowed}\n", "cannot expect reason allowed"},
		{"deny with argv", head + "  - {name: a, run: [ls], expect: deny, reason: role_forbidden, argv: [x]}\n", "allow cases only"},
		{"both forms", head + "  - {name: a, run: [ls], cmdline: ls, expect: allow}\n", "exactly one of run and cmdline"},
		{"neither form", head + "  - {name: a, expect: allow}\n", "exactly one of run and cmdline"},
		{"empty run", head + "  - {name: a, run: [], expect: allow}\n", "at least the command name"},
		{"tty not bool", head + "  - {name: a, run: [ls], tty: yes please, expect: allow}\n", "expected true or false"},
		{"run not a list", head + "  - {name: a, run: ls, expect: allow}\n", "expected a list of strings"},
		{"alias", head + "  - &x {name: a, run: [ls], expect: allow}\n  - *x\n", "expected a mapping"},
		{"fixture escapes", "version: 1\npolicy: p\nfiles: {alice: [../x]}\ncases: [{name: a, run: [ls], expect: allow}]\n", "relative path inside the workspace"},
		{"fixture absolute", "version: 1\npolicy: p\nfiles: {alice: [/etc/x]}\ncases: [{name: a, run: [ls], expect: allow}]\n", "relative path inside the workspace"},
		{"fixture dot", "version: 1\npolicy: p\nfiles: {alice: [.]}\ncases: [{name: a, run: [ls], expect: allow}]\n", "relative path inside the workspace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCaseFile("t.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("got no error, want %q", tc.want)
			}
			if !errors.Is(err, errCaseFile) {
				t.Errorf("error %v does not match errCaseFile", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "t.yaml:") {
				t.Errorf("error %q, want t.yaml:line:col and %q", err, tc.want)
			}
		})
	}
}

// TestPolicyTestBadFiles: a test file that cannot run counts as a failure,
// never as a pass, and the run still closes with its summary.
func TestPolicyTestBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badCase := write("bad.yaml", "version: 1\npolicy: x.yaml\ncases: [{name: a}]\n")
	noPolicy := write("nopolicy.yaml", "version: 1\npolicy: missing.yaml\ncases: [{name: a, run: [ls], expect: allow}]\n")
	broken := write("broken.yaml", "version: 1\npolicy: "+mustAbs(t, "testdata/policy/broken.yaml")+"\ncases: [{name: a, run: [ls], expect: allow}]\n")
	for _, f := range []string{badCase, noPolicy, broken} {
		code, out, _ := runCLI(t, "policy", "test", f)
		if p, fails := summary(t, out); code != exitFinding || p != 0 || fails != 1 || !strings.Contains(out, "FAIL "+f) {
			t.Errorf("%s: exit %d, %d passed, %d failed; want 1, 0, 1 with a FAIL line:\n%s", f, code, p, fails, out)
		}
	}
	// A test file or a policy that is a FIFO fails at once, never hangs
	// (opening a FIFO waits for a writer).
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoPolicy := write("fifopolicy.yaml", "version: 1\npolicy: "+fifo+"\ncases: [{name: a, run: [ls], expect: allow}]\n")
	for _, args := range [][]string{{"policy", "test", fifo}, {"policy", "test", fifoPolicy}, {"policy", "check", fifo}} {
		done := make(chan string, 1)
		go func() {
			code, out, errOut := runCLI(t, args...)
			done <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
		}()
		select {
		case res := <-done:
			if strings.HasPrefix(res, "exit 0\n") || !strings.Contains(res, "named pipe") {
				t.Errorf("%v: got %s, want a failure naming the named pipe", args, res)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v has not returned after 10 s: it hangs on the FIFO", args)
		}
	}
	// A file whose policy does not load names the load errors.
	_, out, _ := runCLI(t, "policy", "test", broken)
	if !strings.Contains(out, "undefined_role") {
		t.Errorf("output does not show the policy's load errors:\n%s", out)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// FuzzParseCaseFile: any input parses or fails with a positioned error,
// never a panic, and what parses holds the format's invariants.
func FuzzParseCaseFile(f *testing.F) {
	for _, name := range []string{"testdata/policytests/pass.yaml", "testdata/policytests/fail.yaml", "../../policies/tests/code-runner.yaml"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\npolicy: p\nfiles: {a: [x/, {path: y, symlink: ../..}]}\ncases: [{name: a, run: [ls], expect: deny, reason: flag_denied}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := parseCaseFile("f.yaml", data)
		if err != nil {
			if !errors.Is(err, errCaseFile) || !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error without position or class: %v", err)
			}
			return
		}
		if len(cf.Cases) == 0 || cf.Policy == "" {
			t.Fatalf("parsed a file without cases or policy")
		}
		for _, c := range cf.Cases {
			if c.Expect != "allow" && c.Expect != "deny" {
				t.Fatalf("expect %q", c.Expect)
			}
			if c.Expect == "deny" && (c.Reason == "" || !knownReason(c.Reason) || c.Reason == policy.ReasonAllowed) {
				t.Fatalf("deny case with reason %q", c.Reason)
			}
			if len(c.Run) > 0 && c.Cmdline != "" {
				t.Fatalf("case %q has both run and cmdline", c.Name)
			}
		}
		for _, fxs := range cf.Files {
			for _, fx := range fxs {
				if fx.Path == "" || strings.HasPrefix(fx.Path, "/") || fx.Path == ".." || strings.HasPrefix(fx.Path, "../") || filepath.Clean(fx.Path) != fx.Path {
					t.Fatalf("fixture path %q leaves the workspace", fx.Path)
				}
			}
		}
	})
}

// TestPolicyTestFixturesStayInside: a fixture written through an earlier
// symlink fixture cannot create a file outside the workspace; the test
// file fails instead.
func TestPolicyTestFixturesStayInside(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "version: 1\npolicy: " + mustAbs(t, "testdata/policy/small.yaml") + "\n" +
		"files:\n  alice:\n    - {path: out, symlink: " + outside + "}\n    - {path: out/pwned, content: x}\n" +
		"cases: [{name: a, sub: alice, roles: [viewer], run: [echo, hi], expect: allow}]\n"
	name := filepath.Join(dir, "escape.yaml")
	if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "policy", "test", name)
	if code != exitFinding || !strings.Contains(out, "FAIL "+name) {
		t.Errorf("exit %d, want %d and a FAIL line:\n%s", code, exitFinding, out)
	}
	if _, err := os.Lstat(filepath.Join(outside, "pwned")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fixture escaped the workspace: stat err %v", err)
	}
}

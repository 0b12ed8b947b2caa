package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// The -update flag rewrites golden files under testdata/. It is registered
// here unless another test file of the package already did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// runCLI runs the binary's dispatch in-process, as main would.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func checkCLIGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if updatingGolden() {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (go test -update creates it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

var diagLineRE = regexp.MustCompile(`^[^:]+:\d+:\d+: [a-z0-9_]+: .+$`)

func TestPolicyCheck(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		golden   string // stdout golden file, "" for none
		wantOut  []string
	}{
		{name: "shipped policies are strict-clean", args: []string{"--strict", "../../policies"}, wantCode: 0},
		{name: "shipped default file", args: []string{"--strict", "../../policies/default.yaml"}, wantCode: 0},
		{name: "every load error at once", args: []string{"testdata/policy/broken.yaml"}, wantCode: 1, golden: "check_broken.golden",
			wantOut: []string{"undefined_role", "undefined_profile", "bad_regex", "binary_not_found", "sensitive_root"}},
		{name: "unknown keys with a hint", args: []string{"testdata/policy/typos.yaml"}, wantCode: 1, golden: "check_typos.golden",
			wantOut: []string{"unknown_key", "did you mean \"description\"", "bad_value"}},
		{name: "missing version", args: []string{"testdata/policy/noversion.yaml"}, wantCode: 1, golden: "check_noversion.golden",
			wantOut: []string{"missing_version"}},
		{name: "lax policy loads", args: []string{"testdata/policy/lax.yaml"}, wantCode: 0},
		{name: "lax policy fails strict", args: []string{"--strict", "testdata/policy/lax.yaml"}, wantCode: 1, golden: "check_lax_strict.golden",
			wantOut: []string{"interpreter_outside_untrusted", "dangerous_flag_not_denied", "network_enabled", "limit_above_threshold"}},
		{name: "directory checks each file", args: []string{"testdata/policy"}, wantCode: 1,
			wantOut: []string{"broken.yaml:", "noversion.yaml:"}},
		{name: "shipped files as one set collide", args: []string{"--set", "../../policies"}, wantCode: 1,
			wantOut: []string{"duplicate_name"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"policy", "check"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, errOut)
			}
			if tc.wantCode == 0 && out != "" {
				t.Errorf("stdout %q, want empty", out)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line != "" && !diagLineRE.MatchString(line) {
					t.Errorf("line %q is not file:line:col: code: message", line)
				}
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout misses %q:\n%s", w, out)
				}
			}
			if tc.golden != "" {
				checkCLIGolden(t, tc.golden, out)
			}
		})
	}
}

func TestPolicyCheckUsage(t *testing.T) {
	if code, _, _ := runCLI(t, "policy", "check", "--no-such-flag"); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
	code, _, errOut := runCLI(t, "policy", "check", "testdata/policy/does-not-exist.yaml")
	if code != exitFinding || !strings.Contains(errOut, "does-not-exist.yaml") {
		t.Errorf("missing file: exit %d, stderr %q; want %d naming the file", code, errOut, exitFinding)
	}
}

func TestPolicyExplain(t *testing.T) {
	small := "testdata/policy/small.yaml"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		golden   string
		wantOut  []string
	}{
		{name: "allowed git log", args: []string{"--policy", small, "--sub", "alice", "--roles", "operator", "--", "git", "log", "-n", "5"},
			golden: "explain_allowed.golden", wantOut: []string{"decision: allowed", `argv:     ["/usr/bin/git" "log" "--max-count=5"]`}},
		{name: "denied git -c", args: []string{"--policy", small, "--sub", "alice", "--roles", "operator", "--", "git", "-c", "core.pager=sh", "log"},
			wantCode: 1, golden: "explain_denied.golden", wantOut: []string{"decision: denied", "reason:   flag_denied"}},
		{name: "cmdline form", args: []string{"--policy", small, "--sub", "alice", "--roles", "viewer", "--cmdline", "echo 'a b'"},
			wantOut: []string{`argv:     ["/usr/bin/echo" "a b"]`}},
		{name: "role forbidden", args: []string{"--policy", small, "--sub", "alice", "--roles", "viewer", "--", "git", "log"},
			wantCode: 1, wantOut: []string{"reason:   role_forbidden"}},
		{name: "shipped default", args: []string{"--policy", "../../policies/default.yaml", "--sub", "alice", "--roles", "operator", "--", "git", "log", "-n", "5"},
			wantOut: []string{"rule:     commands.git.subcommands.log (../../policies/default.yaml:", "profile:  git"}},
		{name: "shipped code-runner", args: []string{"--policy", "../../policies/code-runner.yaml", "--sub", "bob", "--roles", "runner", "--", "python3", "-c", "print(1)"},
			wantOut: []string{"profile:  untrusted (untrusted true)", "network none"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"policy", "explain"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout misses %q:\n%s", w, out)
				}
			}
			if !strings.Contains(out, "trace:") {
				t.Errorf("no trace in:\n%s", out)
			}
			if tc.golden != "" {
				// The hash belongs to policy-core's canonical form; keep it out of the golden file.
				checkCLIGolden(t, tc.golden, hashRE.ReplaceAllString(out, "policy:   <hash>"))
			}
		})
	}
}

var hashRE = regexp.MustCompile(`policy:   [0-9a-f]{64}`)

// TestPolicyExplainHidesEnvValues: explain shows variable names, never
// values (a value may be a secret).
func TestPolicyExplainHidesEnvValues(t *testing.T) {
	code, out, _ := runCLI(t, "policy", "explain", "--policy", "testdata/policy/small.yaml", "--sub", "alice",
		"--roles", "viewer", "--env", "TZ=Europe/Paris", "--", "echo", "x")
	if code != exitOK {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if !strings.Contains(out, "TZ") || strings.Contains(out, "Europe/Paris") {
		t.Errorf("want the name TZ and not its value in:\n%s", out)
	}
}

func TestPolicyExplainJSON(t *testing.T) {
	code, out, _ := runCLI(t, "policy", "explain", "--json", "--policy", "testdata/policy/small.yaml", "--sub", "alice",
		"--roles", "operator", "--", "git", "log", "--oneline")
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	var d policy.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if !d.Allowed || d.Reason != policy.ReasonAllowed || len(d.Trace) == 0 {
		t.Errorf("got allowed %t reason %s trace %d, want allowed with a trace", d.Allowed, d.Reason, len(d.Trace))
	}
}

func TestPolicyExplainUsage(t *testing.T) {
	small := "testdata/policy/small.yaml"
	tests := []struct {
		name string
		args []string
	}{
		{"no policy", []string{"--sub", "a", "--", "echo"}},
		{"no request", []string{"--policy", small, "--sub", "a"}},
		{"both forms", []string{"--policy", small, "--cmdline", "echo", "--", "echo"}},
		{"broken policy", []string{"--policy", "testdata/policy/broken.yaml", "--", "ls"}},
		{"bad env flag", []string{"--policy", small, "--env", "NOEQUALS", "--", "echo"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, _ := runCLI(t, append([]string{"policy", "explain"}, tc.args...)...); code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", code, exitUsage, out)
			}
		})
	}
}

var summaryRE = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed$`)

func summary(t *testing.T, out string) (int, int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	p, _ := strconv.Atoi(m[1])
	f, _ := strconv.Atoi(m[2])
	return p, f
}

func TestPolicyTestRunner(t *testing.T) {
	t.Run("passing file", func(t *testing.T) {
		code, out, _ := runCLI(t, "policy", "test", "testdata/policytests/pass.yaml")
		if p, f := summary(t, out); code != exitOK || p != 4 || f != 0 {
			t.Errorf("exit %d, %d passed, %d failed; want 0, 4, 0:\n%s", code, p, f, out)
		}
	})
	t.Run("failing file", func(t *testing.T) {
		code, out, _ := runCLI(t, "policy", "test", "testdata/policytests/fail.yaml")
		if p, f := summary(t, out); code != exitFinding || p != 1 || f != 5 {
			t.Errorf("exit %d, %d passed, %d failed; want 1, 1, 5:\n%s", code, p, f, out)
		}
		for _, w := range []string{
			"FAIL testdata/policytests/fail.yaml:6: wrong expectation: got allow",
			"wrong reason: got deny (role_forbidden), want deny (flag_denied)",
			`wrong argv: got argv ["/usr/bin/echo" "hi"], want ["/usr/bin/echo" "bye"]`,
			"wrong profile: got profile small, want big",
			"denied but expected allow: got deny (role_forbidden), want allow",
		} {
			if !strings.Contains(out, w) {
				t.Errorf("output misses %q:\n%s", w, out)
			}
		}
	})
	t.Run("filter", func(t *testing.T) {
		_, out, _ := runCLI(t, "policy", "test", "-run", "^echo", "testdata/policytests/pass.yaml")
		if p, f := summary(t, out); p != 1 || f != 0 {
			t.Errorf("%d passed, %d failed; want 1, 0:\n%s", p, f, out)
		}
	})
	t.Run("shipped policy tests", func(t *testing.T) {
		code, out, _ := runCLI(t, "policy", "test", "../../policies/tests")
		p, f := summary(t, out)
		if code != exitOK || f != 0 || p < 150 {
			t.Errorf("exit %d, %d passed, %d failed; want 0 and every case passing:\n%s", code, p, f, out)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		if code, _, _ := runCLI(t, "policy", "test", "testdata/nope"); code != exitUsage {
			t.Errorf("exit %d, want %d", code, exitUsage)
		}
	})
}

func TestPolicyDiffCLI(t *testing.T) {
	base := "../../policy/testdata/diff/base.yaml"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"equivalent", []string{base, "../../policy/testdata/diff/reordered.yaml"}, exitOK, "no difference"},
		{"different", []string{base, "../../policy/testdata/diff/changed.yaml"}, exitFinding, "NEW allows what OLD did not"},
		{"one argument", []string{base}, exitUsage, ""},
		{"missing file", []string{base, "testdata/nope.yaml"}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"policy", "diff"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Errorf("exit %d, want %d; stdout misses %q?\n%s\n%s", code, tc.wantCode, tc.wantOut, out, errOut)
			}
		})
	}
	code, out, _ := runCLI(t, "policy", "diff", "--json", base, "../../policy/testdata/diff/changed.yaml")
	var changes []policy.Change
	if err := json.Unmarshal([]byte(out), &changes); err != nil || code != exitFinding || len(changes) == 0 {
		t.Errorf("--json: exit %d, err %v, %d changes", code, err, len(changes))
	}
}

func TestPolicyVerbs(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"policy"}, exitUsage},
		{[]string{"policy", "help"}, exitOK},
		{[]string{"policy", "frobnicate"}, exitUsage},
	}
	for _, tc := range tests {
		if code, _, _ := runCLI(t, tc.args...); code != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.want)
		}
	}
	_, out, _ := runCLI(t, "help")
	if !strings.Contains(out, "policy") {
		t.Errorf("execgate help does not list policy:\n%s", out)
	}
}

// TestPolicySchemaCommitted: policies/schema.json is exactly what
// `execgate policy schema` prints (go test -update rewrites it).
func TestPolicySchemaCommitted(t *testing.T) {
	code, out, errOut := runCLI(t, "policy", "schema")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if doc["$id"] != policy.SchemaID {
		t.Errorf("$id %v, want %s", doc["$id"], policy.SchemaID)
	}
	const committed = "../../policies/schema.json"
	if updatingGolden() {
		if err := os.WriteFile(committed, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("policies/schema.json differs from `execgate policy schema`: run `execgate policy schema > policies/schema.json` (or go test -update)")
	}
	if code, _, _ := runCLI(t, "policy", "schema", "extra"); code != exitUsage {
		t.Errorf("schema with an argument: exit %d, want %d", code, exitUsage)
	}
}

// TestPolicyCheckSeccompFiles: `policy check` loads every custom seccomp
// profile file a policy names and checks it against libseccomp's syscall
// table, the forbidden list and what the sandbox's PID 1 needs, reporting
// each problem at the profile's seccomp key.
func TestPolicyCheckSeccompFiles(t *testing.T) {
	needRoot(t) // custom seccomp files must be owned by root
	dir := t.TempDir()
	pid1 := `"read","write","close","rt_sigtimedwait","wait4","kill","exit_group","execve"`
	files := map[string]string{
		"good.json":      `{"allow":[` + pid1 + `,"openat","fstat","brk","mmap"]}`,
		"typo.json":      `{"allow":[` + pid1 + `,"opneat"]}`,
		"forbidden.json": `{"allow":[` + pid1 + `,"ptrace"]}`,
		"nopid1.json":    `{"allow":["read","write","exit_group","execve"]}`,
		"shadow.json":    "root:$6$SECRETHASH:19000:0:99999:7:::\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol := func(seccomp string) string {
		return "version: 1\nroles: {viewer: {}}\nprofiles:\n  p:\n    seccomp: " + seccomp +
			"\ndefaults: {profile: p}\ncommands:\n  echo: {path: /usr/bin/echo, roles: [viewer]}\n"
	}
	tests := []struct {
		name, seccomp string
		wantCode      int
		want          string // the one output line; "" for none
	}{
		{"valid file", filepath.Join(dir, "good.json"), 0, ""},
		{"misspelt syscall", filepath.Join(dir, "typo.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "typo.json") + `": bad seccomp profile: "opneat" is not a syscall known to libseccomp for amd64 (did you mean "openat"?)`},
		{"forbidden syscall", filepath.Join(dir, "forbidden.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "forbidden.json") + `": bad seccomp profile: "ptrace" is never allowed`},
		{"PID 1 cannot supervise", filepath.Join(dir, "nopid1.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "nopid1.json") + `": bad seccomp profile: the profile must allow close, rt_sigtimedwait, wait4, kill (the sandbox's PID 1 needs them)`},
		{"missing file", filepath.Join(dir, "missing.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "missing.json") + `" does not exist`},
		// The error gives a position, never the file's bytes.
		{"not JSON", filepath.Join(dir, "shadow.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "shadow.json") + `": bad seccomp profile: not valid JSON (syntax error at byte 1); want {"allow": ["read", ...]}`},
		{"root-only file", filepath.Join(dir, "private.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "private.json") + `": mode 0600 is not readable by others (want 0644)`},
		{"symlink", filepath.Join(dir, "link.json"), 1,
			`%s:5:5: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "link.json") + `": a symbolic link: not allowed`},
	}
	if err := os.WriteFile(filepath.Join(dir, "private.json"), []byte("root:SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "good.json"), filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("policy%d.yaml", i))
			if err := os.WriteFile(file, []byte(pol(tt.seccomp)), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, "policy", "check", file)
			if code != tt.wantCode {
				t.Errorf("got exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			want := ""
			if tt.want != "" {
				want = fmt.Sprintf(tt.want, file) + "\n"
				if !diagLineRE.MatchString(strings.TrimSpace(want)) {
					t.Fatalf("want line %q is not file:line:col: code: message", want)
				}
			}
			if stdout != want {
				t.Errorf("got stdout\n%s\nwant\n%s", stdout, want)
			}
			if strings.Contains(stdout+stderr, "SECRET") {
				t.Errorf("the output quotes a seccomp file's content:\n%s%s", stdout, stderr)
			}
		})
	}
}

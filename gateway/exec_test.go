package gateway

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

func TestExecEcho(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "echo", "args": []string{"hello", "world"}})
	if r.status != http.StatusOK {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	m := r.json(t)
	if m["stdout"] != "hello world\n" || m["exit_code"] != float64(0) || m["ended_by"] != "exit" {
		t.Errorf("got %v, want stdout 'hello world\\n', exit 0, ended_by exit", m)
	}
	if m["request_id"] != r.header.Get("X-Request-Id") || m["request_id"] == "" {
		t.Errorf("request_id %v, header %q", m["request_id"], r.header.Get("X-Request-Id"))
	}
	lines := env.auditFor(r.header.Get("X-Request-Id"))
	var types []string
	for _, l := range lines {
		types = append(types, l["type"].(string))
	}
	if got, want := strings.Join(types, ","), "decision,exec_start,exec_end"; got != want {
		t.Errorf("audit types %s, want %s", got, want)
	}
	// The decision line is the request's auth record.
	if lines[0]["kid"] != "k1" || lines[0]["auth_method"] != "jwt" {
		t.Errorf("decision %v, want kid k1 and auth_method jwt (the auth record)", lines[0])
	}
	for _, l := range lines {
		if l["decision_id"] == nil || l["decision_id"] != lines[0]["decision_id"] || l["subject"] != "alice" || l["remote_ip"] != "127.0.0.1" {
			t.Errorf("audit line %v: want the decision's id, subject and remote ip", l)
		}
	}
	if end := lines[len(lines)-1]; end["exit_code"] != float64(0) || end["ended_by"] != "exit" || end["stdout_bytes"] != float64(12) {
		t.Errorf("exec_end %v, want exit 0, ended_by exit, 12 stdout bytes", end)
	}
}

func TestExecCmdlineAndBase64(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	r := env.do("POST", "/v1/exec", tok, map[string]any{"cmdline": `printf '\377\376'`})
	if r.status != http.StatusOK {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	m := r.json(t)
	if m["stdout_encoding"] != "base64" {
		t.Fatalf("stdout_encoding %v, want base64 (%s)", m["stdout_encoding"], r.body)
	}
	got, _ := base64.StdEncoding.DecodeString(m["stdout"].(string))
	if string(got) != "\xff\xfe" {
		t.Errorf("stdout %q, want \\xff\\xfe", got)
	}
}

func TestExecWorkspaceFile(t *testing.T) {
	env := startServer(t, nil)
	dir := filepath.Join(env.ws, "alice")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "head", "args": []string{"-n", "1", "f.txt"}})
	if r.status != http.StatusOK || r.json(t)["stdout"] != "one\n" {
		t.Fatalf("status %d body %s, want one line", r.status, r.body)
	}
}

// TestReasonCodesOverHTTP reaches every policy reason code the REST API can
// reach. tty_not_allowed (REST has no terminal), bad_subject (the verifier
// refuses such tokens first: 401) and invalid_utf8 (a non-UTF-8 body is a
// 400 invalid_request with reason invalid_utf8, TestStrictJSON) cannot be
// reached as a 403.
func TestReasonCodesOverHTTP(t *testing.T) {
	env := startServer(t, nil)
	if err := os.MkdirAll(filepath.Join(env.ws, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	viewer, operator := env.token("alice", "viewer"), env.token("alice", "operator")
	long := strings.Repeat("a", 60)
	cases := []struct {
		reason string
		tok    string
		body   map[string]any
	}{
		{"unknown_command", viewer, map[string]any{"command": "rm", "args": []string{"-rf", "/"}}},
		{"unknown_command", viewer, map[string]any{"command": "/usr/bin/echo"}},
		{"role_forbidden", viewer, map[string]any{"command": "sleep", "args": []string{"1"}}},
		{"unknown_subcommand", operator, map[string]any{"command": "tool", "args": []string{"two"}}},
		{"flag_not_allowed", viewer, map[string]any{"command": "echo", "args": []string{"-x", "a"}}},
		{"flag_denied", viewer, map[string]any{"command": "echo", "args": []string{"-e", `\033[2J`}}},
		{"bad_flag_value", viewer, map[string]any{"command": "head", "args": []string{"-n", "abc", "f"}}},
		{"bad_argument", operator, map[string]any{"command": "sleep", "args": []string{"abc"}}},
		{"too_many_arguments", viewer, map[string]any{"command": "echo", "args": []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}}},
		{"too_few_arguments", viewer, map[string]any{"command": "cat"}},
		{"argument_too_long", viewer, map[string]any{"command": "echo", "args": []string{strings.Repeat("a", 100)}}},
		{"request_too_large", viewer, map[string]any{"command": "echo", "args": []string{long, long, long, long}}},
		{"control_character", viewer, map[string]any{"command": "echo", "args": []string{"a\x1b[2Jb"}}},
		{"shell_metacharacter", operator, map[string]any{"command": "sleep", "args": []string{"1;"}}},
		{"bad_cmdline", viewer, map[string]any{"cmdline": "echo 'unterminated"}},
		{"path_outside_root", viewer, map[string]any{"command": "cat", "args": []string{"../../etc/passwd"}}},
		{"path_outside_root", viewer, map[string]any{"command": "cat", "args": []string{"/etc/shadow"}}},
		{"path_not_found", viewer, map[string]any{"command": "cat", "args": []string{"nothere.txt"}}},
		{"env_not_allowed", viewer, map[string]any{"command": "echo", "env": map[string]string{"LD_PRELOAD": "/tmp/x.so"}}},
		{"env_not_allowed", viewer, map[string]any{"command": "echo", "env": map[string]string{"TZ": "$(id)"}}},
	}
	for _, tc := range cases {
		for _, path := range []string{"/v1/exec", "/v1/exec/check"} {
			r := env.do("POST", path, tc.tok, tc.body)
			id := r.header.Get("X-Request-Id")
			if path == "/v1/exec/check" {
				m := r.json(t)
				if r.status != 200 || m["allowed"] != false || m["reason"] != tc.reason {
					t.Errorf("%s %v: got %d %s, want allowed=false reason %s", path, tc.body, r.status, r.body, tc.reason)
				}
				continue
			}
			if r.status != http.StatusForbidden || r.errCode() != CodeForbidden || r.errReason() != tc.reason {
				t.Errorf("%s %v: got %d %s, want 403 forbidden reason %s", path, tc.body, r.status, r.body, tc.reason)
				continue
			}
			if strings.Contains(string(r.body), "rule") || strings.Contains(string(r.body), "policy.yaml") {
				t.Errorf("%s: the answer leaks the rule: %s", tc.reason, r.body)
			}
			var lines []map[string]any
			for _, l := range env.auditFor(id) {
				if l["type"] != "auth_success" {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || lines[0]["type"] != "decision" || lines[0]["allowed"] != false || lines[0]["reason"] != tc.reason || lines[0]["rule"] == nil {
				t.Errorf("%s: audit %v, want one decision line with the reason and the rule", tc.reason, lines)
			}
		}
	}
}

func TestCheckAllowedAndClientLimits(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	r := env.do("POST", "/v1/exec/check", tok, map[string]any{"command": "echo", "args": []string{"hi"}, "timeout_ms": 500, "max_output_bytes": 10})
	m := r.json(t)
	if r.status != 200 || m["allowed"] != true || m["reason"] != "allowed" {
		t.Fatalf("got %d %s, want allowed", r.status, r.body)
	}
	lim := m["limits"].(map[string]any)
	if lim["timeout_ms"] != float64(500) || lim["max_output_bytes"] != float64(10) {
		t.Errorf("limits %v, want the client's smaller asks", lim)
	}
	r = env.do("POST", "/v1/exec/check", tok, map[string]any{"command": "echo", "timeout_ms": 3600000, "max_output_bytes": 1 << 30})
	lim = r.json(t)["limits"].(map[string]any)
	if lim["timeout_ms"] != float64(10000) || lim["max_output_bytes"] != float64(64<<10) {
		t.Errorf("limits %v, want the profile's (10000 ms, 65536 bytes): never more than the policy", lim)
	}
	lines := env.auditFor(r.header.Get("X-Request-Id"))
	if len(lines) != 1 || lines[0]["dry_run"] != true {
		t.Errorf("audit %v, want one dry-run decision", lines)
	}
}

func TestExecClientLimits(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "operator")
	r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "echo", "args": []string{strings.Repeat("x", 50)}, "max_output_bytes": 8})
	m := r.json(t)
	if r.status != 200 || len(m["stdout"].(string)) > 8 || m["stdout_truncated"] != true {
		t.Errorf("got %s, want at most 8 bytes and stdout_truncated", r.body)
	}
	r = env.do("POST", "/v1/exec", tok, map[string]any{"command": "sleep", "args": []string{"5"}, "timeout_ms": 300})
	m = r.json(t)
	if r.status != 200 || m["ended_by"] != "timeout" {
		t.Errorf("got %s, want ended_by timeout", r.body)
	}
}

func TestExecStdin(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	if err := os.MkdirAll(filepath.Join(env.ws, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env.ws, "alice", "in"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// cat needs a path; "-" is not a path in the workspace, so feed stdin
	// through head of an empty file: stdin is accepted and ignored.
	r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "cat", "args": []string{"in"}, "stdin": "aGVsbG8=", "stdin_encoding": "base64"})
	if r.status != 200 {
		t.Errorf("got %d %s, want 200", r.status, r.body)
	}
	r = env.do("POST", "/v1/exec", tok, map[string]any{"command": "cat", "args": []string{"in"}, "stdin": "!!", "stdin_encoding": "base64"})
	if r.status != 400 || r.errCode() != CodeInvalidRequest {
		t.Errorf("bad base64: got %d %s, want 400 invalid_request", r.status, r.body)
	}
}

func TestCommandsByRole(t *testing.T) {
	env := startServer(t, nil)
	names := func(tok string) string {
		r := env.do("GET", "/v1/commands", tok, nil)
		var out []string
		for _, c := range r.json(t)["commands"].([]any) {
			out = append(out, c.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	if got, want := names(env.token("alice", "viewer")), "cat,echo,head,printf,true"; got != want {
		t.Errorf("viewer: got %s, want %s", got, want)
	}
	if got, want := names(env.token("alice", "operator")), "cat,echo,head,printf,sleep,tool,true"; got != want {
		t.Errorf("operator: got %s, want %s", got, want)
	}
	if got := names(env.token("alice")); got != "" {
		t.Errorf("no roles: got %s, want nothing", got)
	}
}

// TestExecutorDecidesAgain: a front whose policy allows what the
// executor's does not (out of sync, or compromised) still gets a denial.
func TestExecutorDecidesAgain(t *testing.T) {
	env := startServer(t, nil)
	data, err := os.ReadFile(filepath.Join(env.policyDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	strict, err := policy.LoadBytes("strict.yaml", bytes.Replace(data, []byte("  echo:\n"), []byte("  echo2:\n"), 1), policy.LoadOptions{StateDir: env.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	env.local.SetPolicy(strict) // only the executor's copy
	r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "echo", "args": []string{"x"}})
	if r.status != 403 || r.errReason() != "unknown_command" {
		t.Fatalf("got %d %s, want 403 unknown_command from the executor", r.status, r.body)
	}
	var decisions []any
	for _, l := range env.auditFor(r.header.Get("X-Request-Id")) {
		if l["type"] == "decision" {
			decisions = append(decisions, l["allowed"])
		}
	}
	if len(decisions) != 2 || decisions[0] != true || decisions[1] != false {
		t.Errorf("decisions audited %v, want the front's allow then the executor's deny", decisions)
	}
}

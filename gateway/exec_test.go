package gateway

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

package gateway

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestMetricsWired: what the issue names is counted by a real server doing
// real work, not only by the Metrics methods: an exec through the sandbox
// (exec count by command and outcome, exec latency, sandbox start latency,
// output bytes), a nonzero exit, a denial by reason, an auth failure by
// reason, and policy reloads by result.
func TestMetricsWired(t *testing.T) {
	reg := NewMetricsRegistry()
	env := startServer(t, func(_ *Config, deps *Deps) {
		deps.Registry, deps.Metrics = reg, NewMetrics(reg)
	})
	tok := env.token("alice", "viewer")
	if r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "echo", "args": []string{"hello"}}); r.status != 200 {
		t.Fatalf("exec: %d %s", r.status, r.body)
	}
	if r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "rm", "args": []string{"-rf", "/"}}); r.status != 403 {
		t.Fatalf("denied exec: got %d %s, want 403", r.status, r.body)
	}
	if r := env.do("POST", "/v1/exec/check", tok[:len(tok)-4]+"AAAA", map[string]any{"command": "echo"}); r.status != 401 {
		t.Fatalf("bad token: got %d, want 401", r.status)
	}
	if err := env.srv.ReloadPolicy(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	path := filepath.Join(env.policyDir, "policy.yaml")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(good, []byte("version: 1"), []byte("version: 1\nbogus: 1"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.ReloadPolicy(context.Background()); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	cases := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"execgate_exec_total", map[string]string{"command": "echo", "outcome": OutcomeOK}, 1},
		{"execgate_exec_duration_seconds", map[string]string{"command": "echo"}, 1},
		{"execgate_sandbox_start_seconds", nil, 1},
		{"execgate_output_bytes_total", map[string]string{"stream": "stdout"}, float64(len("hello\n"))},
		{"execgate_denials_total", nil, 1},
		{"execgate_auth_failures_total", nil, 1},
		{"execgate_policy_reloads_total", map[string]string{"result": "success"}, 1},
		{"execgate_policy_reloads_total", map[string]string{"result": "failure"}, 1},
	}
	for _, c := range cases {
		if got := metricValue(t, reg, c.name, c.labels); got < c.min {
			t.Errorf("%s%v: got %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if err := env.srv.sessions.wait(context.Background()); err != nil { // teardowns follow the answers
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "execgate_active_sandboxes", nil); got != 0 {
		t.Errorf("execgate_active_sandboxes after every run ended: got %v, want 0", got)
	}
}

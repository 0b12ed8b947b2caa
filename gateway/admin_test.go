package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAdminEndpoints(t *testing.T) {
	env := startServer(t, nil)
	admin, op := env.token("root", "admin"), env.token("alice", "operator")
	if r := env.do("GET", "/v1/health", op, nil); r.status != 403 {
		t.Errorf("operator on /v1/health: got %d, want 403", r.status)
	}
	r := env.do("GET", "/v1/health", admin, nil)
	m := r.json(t)
	if r.status != 200 || m["version"] != "test" || m["policy_hash"] == "" || m["active_sessions"] != float64(0) {
		t.Fatalf("health: got %d %s", r.status, r.body)
	}
	var wg sync.WaitGroup
	var run response
	wg.Go(func() {
		run = env.do("POST", "/v1/exec", op, map[string]any{"command": "sleep", "args": []string{"28"}})
	})
	waitFor(t, "a session", func() bool { return env.srv.sessions.count() == 1 })
	r = env.do("GET", "/v1/sessions", admin, nil)
	list := r.json(t)["sessions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["subject"] != "alice" || list[0].(map[string]any)["command"] != "sleep" {
		t.Fatalf("sessions: got %s", r.body)
	}
	id := list[0].(map[string]any)["id"].(string)
	if r := env.do("DELETE", "/v1/sessions/"+id, op, nil); r.status != 403 {
		t.Errorf("operator kill: got %d, want 403", r.status)
	}
	if r := env.do("DELETE", "/v1/sessions/"+id, admin, nil); r.status != 204 {
		t.Errorf("admin kill: got %d %s, want 204", r.status, r.body)
	}
	wg.Wait()
	if run.status != 200 || run.json(t)["ended_by"] != "killed" {
		t.Errorf("killed run: got %d %s, want ended_by killed", run.status, run.body)
	}
	if r := env.do("DELETE", "/v1/sessions/nothere", admin, nil); r.status != 404 {
		t.Errorf("kill unknown: got %d, want 404", r.status)
	}
	if r := env.do("POST", "/v1/admin/drain", admin, nil); r.status != 202 {
		t.Fatalf("drain: got %d %s", r.status, r.body)
	}
	if r := env.do("POST", "/v1/exec", op, map[string]any{"command": "echo"}); r.status != 503 || r.errCode() != CodeDraining {
		t.Errorf("exec while draining: got %d %s, want 503 draining", r.status, r.body)
	}
	if r := env.do("GET", "/readyz", "", nil); r.status != 503 {
		t.Errorf("readyz while draining: got %d, want 503", r.status)
	}
	var actions []string
	for _, l := range env.auditLines() {
		if l["type"] == "admin_action" {
			actions = append(actions, l["action"].(string))
		}
	}
	if got := strings.Join(actions, ","); got != "list_sessions,kill_session,kill_session,drain" {
		t.Errorf("audited admin actions %s, want list_sessions,kill_session,kill_session,drain", got)
	}
}

func TestAuditUnwritable(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("no /dev/full: %v", err)
	}
	var full *Auditor
	env := startServer(t, func(_ *Config, d *Deps) {
		var err error
		full, err = NewAuditor(AuditConfig{Path: "/dev/full", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		d.Audit = full
	})
	defer full.Close()
	if err := os.MkdirAll(filepath.Join(env.ws, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "echo", "args": []string{"x"}})
	if r.status != 503 || r.errCode() != CodeAuditUnavailable {
		t.Errorf("exec with an unwritable audit log: got %d %s, want 503 audit_unavailable", r.status, r.body)
	}
	if r := env.do("GET", "/readyz", "", nil); r.status != 503 {
		t.Errorf("readyz: got %d, want 503", r.status)
	}
	if env.local.List() != nil && len(env.local.List()) != 0 {
		t.Error("something runs")
	}
}

func TestReloadBrokenPolicyKeepsOld(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	before := env.srv.currentPolicy().Hash()
	path := filepath.Join(env.policyDir, "policy.yaml")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	broken := bytes.Replace(good, []byte("version: 1"), []byte("version: 1\nbogus_key: 1\nother_bogus_key: 2"), 1)
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.ReloadPolicy(context.Background()); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	if got := env.srv.currentPolicy().Hash(); got != before {
		t.Errorf("hash %s after a failed reload, want the old %s", got, before)
	}
	if r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "echo", "args": []string{"still"}}); r.status != 200 {
		t.Errorf("exec after a failed reload: got %d %s", r.status, r.body)
	}
	var failed map[string]any
	for _, l := range env.auditLines() {
		if l["type"] == "policy_reload" && l["allowed"] == false {
			failed = l
		}
	}
	if failed == nil || len(failed["policy_errors"].([]any)) < 2 {
		t.Errorf("failed reload audit %v, want every error listed", failed)
	}
	if !strings.Contains(env.logs.String(), "bogus_key") || !strings.Contains(env.logs.String(), "other_bogus_key") {
		t.Error("the log does not carry every reload error")
	}
	// A change on disk reloads by itself (polling): drop the echo command.
	fixed := bytes.Replace(good, []byte("  echo:\n"), []byte("  echo2:\n"), 1)
	if err := os.WriteFile(path, fixed, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poller to reload", func() bool { return env.srv.currentPolicy().Hash() != before })
	if r := env.do("POST", "/v1/exec/check", tok, map[string]any{"command": "echo"}); r.json(t)["reason"] != "unknown_command" {
		t.Errorf("after reload: got %s, want unknown_command", r.body)
	}
	// Executor re-decides with the new set too.
	if r := env.do("POST", "/v1/exec", tok, map[string]any{"command": "echo2", "args": []string{"new"}}); r.status != 200 {
		t.Errorf("new command: got %d %s", r.status, r.body)
	}
}

func TestReloadKeys(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	if err := os.WriteFile(env.keyFile, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.ReloadKeys(); err == nil {
		t.Fatal("an unusable key reloaded")
	}
	if r := env.do("GET", "/v1/commands", tok, nil); r.status != 200 {
		t.Errorf("old key after a failed reload: got %d", r.status)
	}
	if err := os.WriteFile(env.keyFile, []byte("a-brand-new-secret-of-enough-length-123"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if r := env.do("GET", "/v1/commands", tok, nil); r.status != 401 {
		t.Errorf("token of the rotated-out key: got %d, want 401", r.status)
	}
}

// leftoverSleeps lists host processes running "sleep <arg>".
func leftoverSleeps(arg string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasSuffix(b, []byte("sleep\x00"+arg+"\x00")) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestShutdownKillsAfterGrace(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.ShutdownGrace = 500 * time.Millisecond })
	op := env.token("alice", "operator")
	var wg sync.WaitGroup
	var long response
	wg.Go(func() {
		long = env.do("POST", "/v1/exec", op, map[string]any{"command": "sleep", "args": []string{"27"}})
	})
	// The sandbox's PID 1 (/.execgate/init ... -- sleep 27) matches too.
	waitFor(t, "the long run", func() bool { return len(leftoverSleeps("27")) >= 1 })
	env.stop()
	wg.Wait()
	if long.status != 200 || long.json(t)["ended_by"] != "killed" {
		t.Errorf("long run: got %s, want killed", long.body)
	}
	if p := leftoverSleeps("27"); len(p) != 0 {
		t.Errorf("processes left behind: %v", p)
	}
	if n := len(env.local.List()); n != 0 {
		t.Errorf("%d jobs still registered", n)
	}
	ents, _ := os.ReadDir(filepath.Join(sbDir, "state", "containers"))
	if len(ents) != 0 {
		t.Errorf("container state left behind: %v", ents)
	}
	var stop bool
	for _, l := range env.auditLines() {
		stop = stop || l["type"] == "server_stop"
	}
	if !stop {
		t.Error("no server_stop audit line")
	}
}

func TestShutdownLetsShortRunsFinish(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.ShutdownGrace = 8 * time.Second })
	op := env.token("alice", "operator")
	var wg sync.WaitGroup
	var run response
	wg.Go(func() {
		run = env.do("POST", "/v1/exec", op, map[string]any{"command": "sleep", "args": []string{"1"}})
	})
	waitFor(t, "the run", func() bool { return env.srv.sessions.count() == 1 })
	env.stop()
	wg.Wait()
	if run.status != 200 || run.json(t)["exit_code"] != float64(0) {
		t.Errorf("run within the grace: got %d %s, want exit 0", run.status, run.body)
	}
}

func TestMetricsListeners(t *testing.T) {
	reg := NewMetricsRegistry()
	env := startServer(t, func(cfg *Config, d *Deps) {
		d.Registry, d.Metrics = reg, NewMetrics(reg)
		cfg.MetricsListen = "" // behind the admin permission on the API listener
	})
	if r := env.do("GET", "/metrics", env.token("alice", "viewer"), nil); r.status != 403 {
		t.Errorf("/metrics as viewer: got %d, want 403", r.status)
	}
	env.do("POST", "/v1/exec/check", env.token("alice", "viewer"), map[string]any{"command": "nope"})
	r := env.do("GET", "/metrics", env.token("root", "admin"), nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`reason="unknown_command"`)) {
		t.Errorf("/metrics as admin: got %d, want 200 with the denial counted:\n%.400s", r.status, r.body)
	}
	stopping := env.srv.Stopping()
	env.stop()
	select {
	case <-stopping:
	default:
		t.Error("Stopping not closed at shutdown")
	}
}

func TestReloadKeysFromConfig(t *testing.T) {
	var keys []KeyConfig
	env := startServer(t, func(cfg *Config, d *Deps) {
		keys = cfg.JWT.Keys
		d.KeyConfigs = func() ([]KeyConfig, error) { return keys, nil }
	})
	f := filepath.Join(filepath.Dir(env.keyFile), "k2.key")
	secret2 := []byte("second-secret-second-secret-0123456789")
	if err := os.WriteFile(f, secret2, 0o600); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, KeyConfig{ID: "k2", File: f}) // rotation: both live
	if err := env.srv.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	k2 := &Key{ID: "k2", Algorithm: "HS256", Key: secret2, Secret: true}
	tok2, _, _ := NewSigner(k2, testIss, testAud).Sign("bob", []string{"viewer"}, time.Minute)
	for name, tok := range map[string]string{"old key": env.token("alice", "viewer"), "new key": tok2} {
		if r := env.do("GET", "/v1/commands", tok, nil); r.status != 200 {
			t.Errorf("%s after adding k2: got %d, want 200", name, r.status)
		}
	}
}

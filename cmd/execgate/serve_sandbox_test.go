package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/execgate/execgate/gateway"
	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// TestSandboxConfigCgroupWarmup checks that sandbox.cgroup_warmup of the
// config file reaches the sandbox Manager's configuration of execgate serve
// (the root executor builds its Manager from sandboxConfig).
func TestSandboxConfigCgroupWarmup(t *testing.T) {
	cases := []struct {
		name        string
		yaml        string
		wantDisable bool
	}{
		{"default on", "", false},
		{"explicitly on", "sandbox:\n  cgroup_warmup: true\n", false},
		{"off", "sandbox:\n  cgroup_warmup: false\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sb := serveSandboxConfig(t, dir, "instance: warmtest\n"+tc.yaml)
			if sb.DisableCgroupWarmup != tc.wantDisable {
				t.Errorf("DisableCgroupWarmup: got %v, want %v", sb.DisableCgroupWarmup, tc.wantDisable)
			}
			if sb.Instance != "warmtest" || sb.WorkspaceImageRoot != filepath.Join(dir, "state", "images") {
				t.Errorf("instance %q, image root %q: other settings lost", sb.Instance, sb.WorkspaceImageRoot)
			}
		})
	}
	// A wrong type is a config error naming the line, not a silent default.
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(conf, []byte("sandbox:\n  cgroup_warmup: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := parseServeFlags([]string{"--config", conf}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.buildConfig(); err == nil {
		t.Error("cgroup_warmup: maybe was accepted")
	}
}

// TestPolicyLoaderSeccompFile: serve's policy loader (start-up, SIGHUP and
// the file poller of both the front and the root executor) validates
// custom seccomp files, so a profile broken after start is refused at
// reload (gateway.ReloadPolicy keeps the old set) instead of failing every
// run.
func TestPolicyLoaderSeccompFile(t *testing.T) {
	needRoot(t) // custom seccomp files must be owned by root
	dir := t.TempDir()
	sc := filepath.Join(dir, "custom.json")
	pid1 := `"read","write","close","rt_sigtimedwait","wait4","kill","exit_group","execve"`
	write := func(p, data string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(sc, `{"allow":[`+pid1+`]}`)
	pol := filepath.Join(dir, "policy.yaml")
	write(pol, "version: 1\nroles: {viewer: {}}\nprofiles:\n  p:\n    seccomp: "+sc+
		"\ndefaults: {profile: p}\ncommands:\n  echo: {path: /usr/bin/echo, roles: [viewer]}\n")
	cfg := gateway.Default()
	cfg.Policy, cfg.StateDir = pol, filepath.Join(dir, "state")
	for _, front := range []bool{false, true} {
		write(sc, `{"allow":[`+pid1+`]}`)
		load := policyLoader(cfg, front)
		if _, err := load(t.Context()); err != nil {
			t.Fatalf("front=%v: valid profile: got %v, want no error", front, err)
		}
		write(sc, `{"allow":[`+pid1+`,"mount","opneat"]}`)
		_, err := load(t.Context())
		want := pol + `:5:5: bad_seccomp: seccomp profile file "` + sc + `": bad seccomp profile: "mount" is never allowed; "opneat" is not a syscall known to libseccomp for amd64 (did you mean "openat"?)`
		if err == nil || err.Error() != want {
			t.Errorf("front=%v: broken profile: got %v, want %s", front, err, want)
		}
	}
}

// TestSandboxConfigPathsAndReserve: sandbox.cgroup_parent and
// sandbox.min_free_bytes reach the root executor's Manager, and the free-
// space reserve covers the state directory and the audit log's directory.
func TestSandboxConfigPathsAndReserve(t *testing.T) {
	cases := []struct {
		name, yaml   string
		wantParent   string
		wantMinFree  uint64
		wantReserves func(dir string) []string
	}{
		{"defaults", "", "", sandbox.DefaultMinFreeBytes, func(dir string) []string { return []string{filepath.Join(dir, "state")} }},
		{"custom", "audit_log: /var/log/execgate/audit.log\nsandbox:\n  cgroup_parent: /system.slice/execgate.service/sandboxes\n  min_free_bytes: 1073741824\n",
			"/system.slice/execgate.service/sandboxes", 1 << 30,
			func(dir string) []string { return []string{filepath.Join(dir, "state"), "/var/log/execgate"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sb := serveSandboxConfig(t, dir, tc.yaml)
			if sb.CgroupParent != tc.wantParent || sb.MinFreeBytes != tc.wantMinFree {
				t.Errorf("got cgroup parent %q, min free %d; want %q, %d", sb.CgroupParent, sb.MinFreeBytes, tc.wantParent, tc.wantMinFree)
			}
			if got, want := sb.ReserveDirs, tc.wantReserves(dir); !slices.Equal(got, want) {
				t.Errorf("got reserve dirs %v, want %v", got, want)
			}
		})
	}
}

// refusingRunner is a Runner for tests that never run anything.
type refusingRunner struct{}

func (refusingRunner) Run(context.Context, executor.Job) (*policy.Decision, sandbox.Result, error) {
	return nil, sandbox.Result{}, errors.New("no runs in this test")
}

// TestReloadRejectsBadSeccompFile: the gateway built with serve's policy
// loader refuses a reload whose custom seccomp file became invalid: the
// old set keeps serving (nothing is pushed to the executor), and the
// refusal is audited with the bad_seccomp error. A fixed file reloads.
func TestReloadRejectsBadSeccompFile(t *testing.T) {
	needRoot(t) // custom seccomp files must be owned by root
	dir := t.TempDir()
	// A seccomp file must be readable by others (0644), the key by nobody.
	write := func(p, data string) {
		t.Helper()
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".key") {
			mode = 0o600
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	sc := filepath.Join(dir, "custom.json")
	pid1 := `"read","write","close","rt_sigtimedwait","wait4","kill","exit_group","execve"`
	write(sc, `{"allow":[`+pid1+`]}`)
	pol := filepath.Join(dir, "policy.yaml")
	write(pol, "version: 1\nroles: {viewer: {}}\nprofiles:\n  p:\n    seccomp: "+sc+
		"\ndefaults: {profile: p}\ncommands:\n  echo: {path: /usr/bin/echo, roles: [viewer]}\n")
	key := filepath.Join(dir, "k.key")
	write(key, "0123456789abcdef0123456789abcdef-x")
	cfg := gateway.Default()
	cfg.Policy, cfg.StateDir, cfg.MetricsListen = pol, filepath.Join(dir, "state"), ""
	cfg.JWT.Issuer, cfg.JWT.Audience = "i", "a"
	cfg.JWT.Keys = []gateway.KeyConfig{{ID: "k", File: key}}
	log := slog.New(slog.DiscardHandler)
	auditPath := filepath.Join(dir, "audit.log")
	aud, err := gateway.NewAuditor(gateway.AuditConfig{Path: auditPath, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()
	var installed []string
	srv, err := gateway.New(t.Context(), cfg, gateway.Deps{Runner: refusingRunner{}, Audit: aud, Logger: log,
		LoadPolicy: policyLoader(cfg, false), OnPolicy: func(s *policy.Set) { installed = append(installed, s.Hash()) }})
	if err != nil {
		t.Fatalf("gateway.New with a valid custom profile: %v", err)
	}
	write(sc, `{"allow":[`+pid1+`,"ptrace"]}`)
	if err := srv.ReloadPolicy(t.Context()); err == nil || !strings.Contains(err.Error(), `bad_seccomp: seccomp profile file "`+sc+`": bad seccomp profile: "ptrace" is never allowed`) {
		t.Errorf("reload with a forbidden syscall: got %v, want a bad_seccomp error", err)
	}
	if len(installed) != 1 {
		t.Errorf("got %d installed sets after the refused reload, want 1 (the old one keeps serving)", len(installed))
	}
	data, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"policy_reload"`) || !strings.Contains(string(data), `bad_seccomp`) {
		t.Errorf("audit log has no refused policy_reload with the bad_seccomp error:\n%s", data)
	}
	write(sc, `{"allow":[`+pid1+`,"openat"]}`)
	if err := srv.ReloadPolicy(t.Context()); err != nil {
		t.Errorf("reload with a fixed file: %v", err)
	}
	if len(installed) != 2 {
		t.Fatalf("got %d installed sets after the fixed reload, want 2", len(installed))
	}
	// Only the JSON changed: the hash (in every audit line) tells the two
	// allowlists apart.
	if installed[0] == installed[1] {
		t.Errorf("got the same policy hash %s after the seccomp file changed, want another", installed[0])
	}
}

// serveSandboxConfig writes a key and a config file (state_dir under dir,
// then yaml) into dir and returns the sandbox configuration execgate serve
// would build from them.
func serveSandboxConfig(t *testing.T, dir, yaml string) sandbox.Config {
	t.Helper()
	key := filepath.Join(dir, "k.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef-x"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "execgate.yaml")
	if err := os.WriteFile(conf, []byte("state_dir: "+filepath.Join(dir, "state")+"\n"+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := parseServeFlags([]string{"--config", conf, "--jwt-key", key}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.buildConfig()
	if err != nil {
		t.Fatalf("buildConfig: %v", err)
	}
	sb, err := sandboxConfig(cfg)
	if err != nil {
		t.Fatalf("sandboxConfig: %v", err)
	}
	return sb
}

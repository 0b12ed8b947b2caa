package gateway

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// TestPollReloadsOnSeccompFileEdit: the policy poller watches the custom
// seccomp files the serving set's profiles name. Editing only such a file
// (the policy YAML untouched) reloads the policy, the new hash covers the
// new allowlist, and the reload is audited with it; a broken edit is
// refused and the old set keeps serving.
func TestPollReloadsOnSeccompFileEdit(t *testing.T) {
	env, file := seccompServer(t)
	pid1 := `"read","write","close","rt_sigtimedwait","wait4","kill","exit_group","execve"`
	writeJSON := func(data string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(`{"allow":[` + pid1 + `]}`)
	path := filepath.Join(env.policyDir, "policy.yaml")
	pol, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pol = bytes.Replace(pol, []byte("\nprofiles:\n"), []byte("\nprofiles:\n  custom:\n    inherits: standard\n    seccomp: "+file+"\n"), 1)
	hash := func() string { return env.srv.currentPolicy().Hash() }
	h0 := hash()
	if err := os.WriteFile(path, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poller to load the profile with the custom file", func() bool { return hash() != h0 })
	h1 := hash()
	if got := env.srv.currentPolicy().SeccompFiles(); len(got) != 1 || got[0] != file {
		t.Fatalf("got seccomp files %v, want [%s]", got, file)
	}
	// Only the JSON changes.
	writeJSON(`{"allow":[` + pid1 + `,"openat"]}`)
	waitFor(t, "the poller to reload after the seccomp file changed", func() bool { return hash() != h1 })
	h2 := hash()
	// (The set is installed before the reload is audited.)
	waitFor(t, "an allowed policy_reload audited with the new hash", func() bool {
		for _, l := range env.auditLines() {
			if l["type"] == "policy_reload" && l["allowed"] == true && l["policy_hash"] == h2 {
				return true
			}
		}
		return false
	})
	// A broken edit of the file alone is refused; the set stays.
	writeJSON(`{"allow":[` + pid1 + `,"ptrace"]}`)
	waitFor(t, "the refused reload to be audited", func() bool {
		for _, l := range env.auditLines() {
			if l["type"] == "policy_reload" && l["allowed"] == false {
				return true
			}
		}
		return false
	})
	if got := hash(); got != h2 {
		t.Errorf("after a refused reload: got hash %s, want the old %s", got, h2)
	}
}

// seccompServer starts a server whose loader checks custom seccomp files as
// serve's does, and returns it with the path of a custom profile file to
// write (in a root-owned 0755 directory beside the policy directory).
func seccompServer(t *testing.T) (*testEnv, string) {
	t.Helper()
	needRoot(t)
	env := startServer(t, func(cfg *Config, d *Deps) {
		d.LoadPolicy = func(ctx context.Context) (*policy.Set, error) {
			return policy.Load(ctx, []string{cfg.Policy}, policy.LoadOptions{StateDir: cfg.StateDir, CheckSeccompFile: sandbox.CheckSeccompProfile})
		}
	})
	dir := filepath.Join(filepath.Dir(env.policyDir), "seccomp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return env, filepath.Join(dir, "custom.json")
}

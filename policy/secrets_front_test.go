package policy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadWithoutSecrets: the unprivileged front cannot read the root-owned
// secrets file and must not need to. WithoutSecrets loads the same rules
// with no secret value anywhere in the set, and decides the same way.
func TestLoadWithoutSecrets(t *testing.T) {
	needRoot(t) // a secrets file must be owned by root
	const secret = "front-must-never-hold-this"
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	writeFile(t, secrets, "API="+secret+"\n", 0o600)
	unreadable := filepath.Join(dir, "absent")
	policyFor := func(file string) string {
		return "version: 1\nsecrets_file: " + file + "\nroles: {viewer: {}}\nprofiles: {p: {}}\ndefaults: {profile: p}\n" +
			"commands:\n  echo:\n    path: /usr/bin/echo\n    roles: [viewer]\n    env: {secrets: {API_KEY: API}}\n"
	}
	req := Request{Subject: "alice", Roles: []string{"viewer"}, Command: "echo"}

	full, err := LoadBytes("p.yaml", []byte(policyFor(secrets)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file string }{
		{"readable secrets file", secrets},
		{"secrets file the front cannot open", unreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front, err := LoadBytes("p.yaml", []byte(policyFor(tc.file)), LoadOptions{WithoutSecrets: true})
			if err != nil {
				t.Fatalf("got %v, want the set to load without reading secrets", err)
			}
			d := front.Decide(context.Background(), req)
			if !d.Allowed {
				t.Fatalf("got %s, want allowed", d.Reason)
			}
			if env := strings.Join(d.Env, "\n"); strings.Contains(env, secret) {
				t.Errorf("got the secret value in the front's Env %q, want none", env)
			}
			if got, want := strings.Join(d.EnvKeys, ","), strings.Join(full.Decide(context.Background(), req).EnvKeys, ","); got != want {
				t.Errorf("env keys: got %s, want %s (the same names as the full set)", got, want)
			}
		})
	}
	if _, err := LoadBytes("p.yaml", []byte(policyFor(unreadable)), LoadOptions{}); err == nil {
		t.Error("full load with a missing secrets file: got nil error, want a load error")
	}
}

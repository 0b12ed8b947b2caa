package policy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecisionFormatHidesSecrets: however a decision is printed or logged
// (fmt verbs, slog's text and JSON handlers), a secret value of its
// environment never appears; the variable names may.
func TestDecisionFormatHidesSecrets(t *testing.T) {
	needRoot(t) // a secrets file must be owned by root
	const secret = "s3cr3t-VALUE-never-printed"
	secrets := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, secrets, "API="+secret+"\n", 0o600)
	src := "version: 1\nsecrets_file: " + secrets + "\nroles: {viewer: {}}\nprofiles: {p: {}}\ndefaults: {profile: p}\n" +
		"commands:\n  echo:\n    path: /usr/bin/echo\n    roles: [viewer]\n    env: {secrets: {API_KEY: API}}\n"
	s, err := LoadBytes("p.yaml", []byte(src), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"viewer"}, Command: "echo"})
	if !d.Allowed || !strings.Contains(strings.Join(d.Env, "\n"), secret) {
		t.Fatalf("fixture: got %s with env keys %v, want allowed with the secret in Env", d.Reason, d.EnvKeys)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("decided", "decision", d, "value", *d)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("decided", "decision", d, "value", *d)
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", d), "%+v": fmt.Sprintf("%+v", d), "%#v": fmt.Sprintf("%#v", d),
		"%v of the value": fmt.Sprintf("%v", *d), "%+v of the value": fmt.Sprintf("%+v", *d),
		"slog text": text.String(), "slog JSON": js.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s: got the secret value in %q, want it hidden", name, out)
		}
		if !strings.Contains(out, "API_KEY") {
			t.Errorf("%s: got %q, want the variable name API_KEY", name, out)
		}
	}
}

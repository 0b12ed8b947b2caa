package sandbox

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestSpecNeverPrintsEnvValues tries every formatting route a log line or
// error message could take and fails if a secret value shows up.
func TestSpecNeverPrintsEnvValues(t *testing.T) {
	const secret = "sk-live-0123456789abcdef"
	spec := Spec{ID: "r1", Subject: "alice", Argv: []string{"/usr/bin/true"}, Env: []string{"API_KEY=" + secret, "HOME=/work"}}

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("run", "spec", spec)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("run", "spec", spec)
	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", spec),
		"%+v":      fmt.Sprintf("%+v", spec),
		"%#v":      fmt.Sprintf("%#v", spec),
		"%s":       fmt.Sprintf("%-1s", spec),
		"pointer":  fmt.Sprintf("%v", &spec),
		"slogtext": text.String(),
		"slogjson": js.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s: got %q, want no secret value", name, out)
		}
		if !strings.Contains(out, "API_KEY") {
			t.Errorf("%s: got %q, want the variable name API_KEY", name, out)
		}
	}
}

package gateway

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigRedact: the redact section of the configuration reaches the
// audit log serve writes (Config.AuditConfig): an extra pattern (with a
// "secret" group), an extra secret flag and an extra secret env name hide
// their values, the built-in detectors stay on, and a bad pattern refuses
// the configuration naming the key.
func TestConfigRedact(t *testing.T) {
	dir := t.TempDir()
	body := "policy: /etc/execgate/policies\nstate_dir: " + dir + "\nredact:\n" +
		"  patterns: ['pin:(?P<secret>[0-9]+)']\n  secret_flags: ['--?passphrase']\n  secret_env_keys: ['^MY_APP_PIN$']\n"
	cfg, err := LoadConfig(writeConfig(t, body, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	acfg, err := cfg.AuditConfig(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuditor(acfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Type: EventExecStart, RequestID: "r1", Command: "tool",
		Args: []string{"unlock", "pin:4711", "--passphrase", "open sesame", "--token", "tok123", "keep-me"},
		Env:  map[string]string{"MY_APP_PIN": "8080", "LANG": "C"}}
	if err := a.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	line := string(data)
	for _, secret := range []string{"4711", "open sesame", "tok123", "8080"} {
		if strings.Contains(line, secret) {
			t.Errorf("secret %q reached the audit log: %s", secret, line)
		}
	}
	for _, kept := range []string{"pin:[REDACTED]", "keep-me", `"LANG":"C"`} {
		if !strings.Contains(line, kept) {
			t.Errorf("want %q in the audit line: %s", kept, line)
		}
	}

	bad := "policy: /etc/execgate/policies\nstate_dir: " + dir + "\nredact:\n  patterns: ['(unclosed']\n"
	_, err = LoadConfig(writeConfig(t, bad, 0o600))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "redact" {
		t.Errorf("bad pattern: got %v, want a ConfigError on redact", err)
	}
}

package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

func writeConfig(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "execgate.yaml")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExampleConfigIsTheDefaults keeps deploy/execgate.example.yaml honest:
// it documents every setting at its real default.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	data, err := os.ReadFile("../deploy/execgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(writeConfig(t, string(data), 0o600))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	want := Default()
	norm := func(c *Config) {
		c.JWT.Keys, c.Auth.APIKeys, c.Auth.Users = nil, nil, nil
		for _, l := range []*[]string{&c.Network.TrustedProxies, &c.Network.Allow, &c.Network.Block, &c.Network.AdminBlock, &c.Network.WSAllow, &c.Network.WSBlock, &c.Network.MetricsAllow, &c.Network.MetricsBlock, &c.HTTP.CORSOrigins,
			&c.Redact.Patterns, &c.Redact.SecretFlags, &c.Redact.SecretEnvKeys} {
			if len(*l) == 0 {
				*l = nil
			}
		}
	}
	norm(&cfg)
	norm(&want)
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example config differs from Default():\n got %+v\nwant %+v", cfg, want)
	}
	// Every key of the Config type appears in the example.
	for _, key := range yamlKeys(reflect.TypeOf(Config{})) {
		if !strings.Contains(string(data), "\n"+key+":") && !strings.Contains(string(data), " "+key+":") {
			t.Errorf("setting %q is not documented in the example", key)
		}
	}
}

func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() != "time" {
			out = append(out, yamlKeys(f.Type)...)
		}
	}
	return out
}

func TestLoadConfigErrors(t *testing.T) {
	cases := []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"unknown key", "listen: 127.0.0.1:1\nlisten_addr: x\n", 0o600, ":2: field listen_addr not found"},
		{"unknown nested key", "jwt:\n  leeway: 1s\n  alg: none\n", 0o600, ":3: field alg not found"},
		{"wrong type", "limits:\n  max_sessions: many\n", 0o600, ":2: cannot unmarshal"},
		{"bad duration", "shutdown_grace: forever\n", 0o600, ":1:"},
		{"readable by group", "listen: 127.0.0.1:1\n", 0o640, "readable or writable by group or others"},
		{"readable by others", "listen: 127.0.0.1:1\n", 0o604, "readable or writable by group or others"},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: x\n", 0o600, "more than one YAML document"},
		{"bad CIDR", "network:\n  allow: [10.0.0.0/33]\n", 0o600, "network.allow"},
		{"bad rate", "limits:\n  exec_per_ip: lots\n", 0o600, "limits.exec_per_ip"},
		{"zero rate", "limits:\n  exec_per_ip: 0-M\n", 0o600, "limits.exec_per_ip"},
		{"cors star", "http:\n  cors_origins: ['*']\n", 0o600, "http.cors_origins"},
		{"ttl over max", "auth:\n  token_ttl: 2h\n", 0o600, "auth.token_ttl"},
		{"leeway too big", "jwt:\n  leeway: 1h\n", 0o600, "jwt.leeway"},
		{"tls half", "tls:\n  cert_file: /x\n", 0o600, "cert_file and key_file"},
		{"lockout thresholds", "auth:\n  lockout:\n    pair_threshold: 10\n    ip_threshold: 5\n", 0o600, "auth.lockout"},
		{"sessions", "limits:\n  max_sessions: 1\n  max_sessions_per_user: 2\n", 0o600, "max_sessions_per_user"},
		{"bad listen", "listen: nonsense\n", 0o600, "listen"},
		{"http redis", "limits:\n  redis_url: http://x\n", 0o600, "redis_url"},
		{"relative cgroup parent", "sandbox:\n  cgroup_parent: execgate/x\n", 0o600, `sandbox.cgroup_parent: cgroup parent "execgate/x": want an absolute path`},
		{"root cgroup parent", "sandbox:\n  cgroup_parent: /\n", 0o600, `sandbox.cgroup_parent: cgroup parent "/": must not be the root cgroup`},
		{"cgroup parent with ..", "sandbox:\n  cgroup_parent: /execgate/../system.slice\n", 0o600, "no . or .. component"},
		{"unclean cgroup parent", "sandbox:\n  cgroup_parent: /execgate//x/\n", 0o600, "want a clean path"},
		{"cgroup parent named like a container", "sandbox:\n  cgroup_parent: /execgate/eg-7\n", 0o600, "may not start with eg-"},
		{"instance named like a container cgroup", "instance: eg-1\n", 0o600, `instance: cgroup parent "/execgate/eg-1": a component may not start with eg-`},
		{"relative state_dir", "state_dir: var/lib/execgate\n", 0o600, `state_dir: "var/lib/execgate": want an absolute path`},
		{"relative audit_log", "audit_log: audit.log\n", 0o600, `audit_log: "audit.log": want an absolute path`},
		{"reserve off", "sandbox:\n  min_free_bytes: 0\n", 0o600, "sandbox.min_free_bytes: must be at least 1048576 (1 MiB), got 0"},
		{"reserve negative", "sandbox:\n  min_free_bytes: -1\n", 0o600, ":2: cannot unmarshal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body, tc.mode)
			_, err := LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want an ErrConfig containing %q", err, tc.want)
			}
			if strings.HasPrefix(tc.want, ":") && !strings.Contains(err.Error(), p+tc.want[:2]) {
				t.Errorf("error %q does not name %s with its line", err, p)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, ErrConfig) {
		t.Errorf("missing file: got %v, want ErrConfig", err)
	}
	cfg, err := LoadConfig(writeConfig(t, "", 0o600))
	if err != nil || cfg.Listen != Default().Listen {
		t.Errorf("empty file: got %v, %v; want the defaults", cfg.Listen, err)
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "127.8.0.1:1": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:1": false, "10.0.0.1:1": false, "bad": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestNewRefusesBadSetups(t *testing.T) {
	dir := t.TempDir()
	base := testConfig(t, dir)
	cases := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no keys", func(c *Config) { c.JWT.Keys = nil }},
		{"key readable by others", func(c *Config) {
			p := filepath.Join(dir, "open.key")
			_ = os.WriteFile(p, testSecret, 0o644)
			_ = os.Chmod(p, 0o644)
			c.JWT.Keys = []KeyConfig{{ID: "k", File: p}}
		}},
		{"no issuer", func(c *Config) { c.JWT.Issuer = "" }},
		{"signing key not among jwt keys", func(c *Config) { c.Auth.SigningKey = KeyConfig{ID: "other", File: c.JWT.Keys[0].File} }},
		{"bad user hash", func(c *Config) { c.Auth.Users = []User{{Username: "a", PasswordHash: "plain"}} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.JWT.Keys = append([]KeyConfig(nil), base.JWT.Keys...)
			tc.mutate(&cfg)
			loaded := false
			load := func(context.Context) (*policy.Set, error) {
				loaded = true
				return nil, errors.New("not reached")
			}
			_, err := New(t.Context(), cfg, Deps{Runner: nilRunner{}, Audit: discardAudit{}, Logger: discardLogger(), LoadPolicy: load})
			if err == nil || loaded {
				t.Fatalf("got %v (policy loaded: %v), want New to fail before loading the policy", err, loaded)
			}
		})
	}
}

package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const minimalPolicy = `version: 1
roles: {viewer: {}}
profiles: {p: {}}
defaults: {profile: p}
commands:
  echo: {path: /usr/bin/echo, roles: [viewer]}
`

func TestLoadMinimal(t *testing.T) {
	s, err := LoadBytes("min.yaml", []byte(minimalPolicy), LoadOptions{})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	c, ok := s.Command("echo")
	if !ok || c.Path != "/usr/bin/echo" || c.Profile != "p" {
		t.Fatalf("got %+v, want echo with profile p", c)
	}
	p, _ := s.Profile("p")
	want := defaultProfile()
	want.Name = "p"
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got profile %+v, want the defaults %+v", p, want)
	}
	if c.Limits != defaultLimits() {
		t.Errorf("got limits %+v, want %+v", c.Limits, defaultLimits())
	}
}

// loadErr loads src and returns its errors (nil when it loads).
func loadErr(t *testing.T, src string, opts LoadOptions) ErrorList {
	t.Helper()
	_, err := LoadBytes("p.yaml", []byte(src), opts)
	if err == nil {
		return nil
	}
	var el ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("got %T %v, want ErrorList", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	return el
}

func hasCode(el ErrorList, code, msgPart string) bool {
	for _, e := range el {
		if e.Code == code && strings.Contains(e.Message, msgPart) {
			return true
		}
	}
	return false
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	secretsOK := filepath.Join(dir, "secrets")
	secretsOpen := filepath.Join(dir, "secrets-open")
	writeFile(t, secretsOK, "API=xyz\n", 0o600)
	writeFile(t, secretsOpen, "API=xyz\n", 0o644)
	withCmd := func(cmd string) string {
		return "version: 1\nroles: {viewer: {}}\nprofiles: {p: {}}\ndefaults: {profile: p}\ncommands:\n  x:\n    path: /usr/bin/echo\n    roles: [viewer]\n" + cmd
	}
	tests := []struct {
		name, src string
		opts      LoadOptions
		code, msg string
	}{
		{"empty", "", LoadOptions{}, CodeMissingVersion, ""},
		{"missing version", "roles: {}\n", LoadOptions{}, CodeMissingVersion, ""},
		{"bad version", "version: 2\n", LoadOptions{}, CodeBadVersion, "unsupported version 2"},
		{"version string", "version: one\n", LoadOptions{}, CodeType, "expected a decimal integer"},
		{"syntax", "version: 1\nroles: [\n", LoadOptions{}, CodeSyntax, ""},
		{"deep nesting", "version: " + strings.Repeat("[", 100000), LoadOptions{}, CodeSyntax, "depth"},
		{"deep mappings", "version: 1\nroles: " + strings.Repeat("{a: ", 50000), LoadOptions{}, CodeSyntax, "depth"},
		{"custom tag", "version: 1\nroles: {v: !evil {}}\n", LoadOptions{}, CodeType, "tag"},
		{"binary tag", "version: 1\nsecrets_file: !!binary L2V0Yy9zaGFkb3c=\n", LoadOptions{}, CodeType, "tag"},
		{"two documents", "version: 1\n---\nversion: 1\n", LoadOptions{}, CodeSyntax, "one YAML document"},
		{"not a mapping", "- a\n", LoadOptions{}, CodeType, "expected a mapping"},
		{"unknown top key", strings.Replace(minimalPolicy, "commands:", "comands:", 1), LoadOptions{}, CodeUnknownKey, `did you mean "commands"`},
		{"unknown command key", withCmd("    rolse: [viewer]\n"), LoadOptions{}, CodeUnknownKey, `did you mean "roles"`},
		{"unknown key no hint", withCmd("    zzzzzzzzzz: 1\n"), LoadOptions{}, CodeUnknownKey, "known keys"},
		{"duplicate key", withCmd("    path: /usr/bin/cat\n"), LoadOptions{}, CodeDuplicateKey, `"path"`},
		{"anchor", "version: 1\nroles: &r {viewer: {}}\n", LoadOptions{}, CodeAlias, ""},
		{"alias", "version: 1\nroles: {a: &x {}, b: *x}\n", LoadOptions{}, CodeAlias, ""},
		{"merge key", "version: 1\nroles:\n  a:\n    <<: {description: x}\n", LoadOptions{}, CodeAlias, ""},
		{"type int", strings.Replace(minimalPolicy, "p: {}", "p: {pids: abc}", 1), LoadOptions{}, CodeType, "pids"},
		{"type bool", strings.Replace(minimalPolicy, "p: {}", "p: {tty: yes}", 1), LoadOptions{}, CodeType, "true or false"},
		{"bad size", strings.Replace(minimalPolicy, "p: {}", "p: {memory: 12 parsecs}", 1), LoadOptions{}, CodeBadValue, "invalid size"},
		{"bad duration", strings.Replace(minimalPolicy, "p: {}", "p: {timeout: forever}", 1), LoadOptions{}, CodeBadValue, "invalid duration"},
		{"bad umask", strings.Replace(minimalPolicy, "p: {}", `p: {umask: "0999"}`, 1), LoadOptions{}, CodeBadValue, "invalid umask"},
		{"bad network", strings.Replace(minimalPolicy, "p: {}", "p: {network: host}", 1), LoadOptions{}, CodeBadValue, "network"},
		{"seccomp missing file", strings.Replace(minimalPolicy, "p: {}", "p: {seccomp: /nonexistent/sc.json}", 1), LoadOptions{}, CodeBadSeccomp, ""},
		{"seccomp bad name", strings.Replace(minimalPolicy, "p: {}", "p: {seccomp: loose}", 1), LoadOptions{}, CodeBadSeccomp, ""},
		{"memory too small", strings.Replace(minimalPolicy, "p: {}", "p: {memory: 1KiB}", 1), LoadOptions{}, CodeBadValue, "memory"},
		{"undefined role", strings.Replace(minimalPolicy, "roles: [viewer]", "roles: [viewr]", 1), LoadOptions{}, CodeUndefinedRole, "viewr"},
		{"role grants nothing", strings.Replace(minimalPolicy, "viewer: {}", "viewer: {}, idle: {}", 1), LoadOptions{}, CodeRoleGrantsNone, "idle"},
		{"role includes undeclared", strings.Replace(minimalPolicy, "viewer: {}", "viewer: {includes: [ghost]}", 1), LoadOptions{}, CodeUndefinedRole, "ghost"},
		{"role cycle", strings.Replace(minimalPolicy, "viewer: {}", "viewer: {}, a: {includes: [b]}, b: {includes: [a]}", 1), LoadOptions{}, CodeRoleCycle, ""},
		{"unknown permission", strings.Replace(minimalPolicy, "viewer: {}", "viewer: {permissions: [root]}", 1), LoadOptions{}, CodeBadValue, "permission"},
		{"undefined profile", withCmd("    profile: nope\n"), LoadOptions{}, CodeUndefinedProfile, "nope"},
		{"no profile", "version: 1\nroles: {v: {}}\ncommands: {x: {path: /usr/bin/echo, roles: [v]}}\n", LoadOptions{}, CodeUndefinedProfile, "no profile"},
		{"profile cycle", strings.Replace(minimalPolicy, "p: {}", "p: {inherits: q}, q: {inherits: p}", 1), LoadOptions{}, CodeProfileCycle, ""},
		{"profile inherits undeclared", strings.Replace(minimalPolicy, "p: {}", "p: {inherits: q}", 1), LoadOptions{}, CodeUndefinedProfile, "q"},
		{"mount undeclared root", strings.Replace(minimalPolicy, "p: {}", "p: {mounts: [ws]}", 1), LoadOptions{}, CodeUndefinedRoot, "ws"},
		{"no roles", "version: 1\nroles: {v: {}}\nprofiles: {p: {}}\ndefaults: {profile: p}\ncommands: {x: {path: /usr/bin/echo}, y: {path: /usr/bin/echo, roles: [v]}}\n", LoadOptions{}, CodeRequired, "no roles"},
		{"bad command name", strings.Replace(minimalPolicy, "echo:", "../echo:", 1), LoadOptions{}, CodeBadName, ""},
		{"relative binary", strings.Replace(minimalPolicy, "/usr/bin/echo", "bin/echo", 1), LoadOptions{}, CodeBadPath, ""},
		{"binary outside /usr", strings.Replace(minimalPolicy, "/usr/bin/echo", "/opt/tools/echo", 1), LoadOptions{}, CodeBadPath, "sandbox mounts"},
		{"binary under /usr prefix lookalike", strings.Replace(minimalPolicy, "/usr/bin/echo", "/usrx/echo", 1), LoadOptions{}, CodeBadPath, ""},
		{"binary not found", strings.Replace(minimalPolicy, "/usr/bin/echo", "/usr/bin/no-such-binary", 1), LoadOptions{}, CodeBinaryNotFound, ""},
		{"binary is a directory", strings.Replace(minimalPolicy, "/usr/bin/echo", "/usr/bin", 1), LoadOptions{}, CodeBinaryNotFound, ""},
		{"sha256 mismatch", withCmd("    sha256: " + strings.Repeat("0", 64) + "\n"), LoadOptions{}, CodeSHA256Mismatch, "pins"},
		{"sha256 malformed", withCmd("    sha256: abc\n"), LoadOptions{}, CodeBadValue, "sha256"},
		{"bad regex", withCmd("    flags: [{names: [--x], type: regex, pattern: '(['}]\n"), LoadOptions{}, CodeBadRegex, ""},
		{"regex breaking out of the anchors", withCmd("    flags: [{names: [--x], type: regex, pattern: 'a)|(.*'}]\n"), LoadOptions{}, CodeBadRegex, ""},
		{"empty regex", withCmd("    flags: [{names: [--x], type: regex}]\n"), LoadOptions{}, CodeBadRegex, ""},
		{"bad flag name", withCmd("    flags: [{names: [x]}]\n"), LoadOptions{}, CodeBadFlag, ""},
		{"bad flag name equals", withCmd("    flags: [{names: [--x=y]}]\n"), LoadOptions{}, CodeBadFlag, ""},
		{"duplicate flag", withCmd("    flags: [{names: [-x]}, {names: [-x]}]\n"), LoadOptions{}, CodeDuplicateFlag, ""},
		{"word flag with bundle", withCmd("    bundle: true\n    flags: [{names: [-name]}]\n"), LoadOptions{}, CodeBadFlag, "ambiguous"},
		{"bad deny", withCmd("    deny: [exec]\n"), LoadOptions{}, CodeBadFlag, "deny"},
		{"unknown type", withCmd("    flags: [{names: [-x], type: float}]\n"), LoadOptions{}, CodeBadValue, "unknown type"},
		{"key of other type", withCmd("    flags: [{names: [-x], type: enum, values: [a], min: 1}]\n"), LoadOptions{}, CodeBadValue, `"min" does not apply`},
		{"enum without values", withCmd("    flags: [{names: [-x], type: enum}]\n"), LoadOptions{}, CodeBadValue, "values"},
		{"int min above max", withCmd("    flags: [{names: [-x], type: int, min: 5, max: 1}]\n"), LoadOptions{}, CodeBadValue, "above"},
		{"path without roots", withCmd("    flags: [{names: [-x], type: path}]\n"), LoadOptions{}, CodeRequired, "roots"},
		{"path undeclared root", withCmd("    flags: [{names: [-x], type: path, roots: [ws]}]\n"), LoadOptions{}, CodeUndefinedRoot, "ws"},
		{"bad form", withCmd("    flags: [{names: [-x], type: text, forms: [glued]}]\n"), LoadOptions{}, CodeBadValue, "form"},
		{"positional without type", withCmd("    positionals: {items: [{max_len: 3}]}\n"), LoadOptions{}, CodeBadValue, "positional needs"},
		{"positional none", withCmd("    positionals: {items: [{type: none}]}\n"), LoadOptions{}, CodeBadValue, "positional needs"},
		{"positional max without rest", withCmd("    positionals: {max: 3}\n"), LoadOptions{}, CodeBadValue, "no rest"},
		{"positional min above max", withCmd("    positionals: {min: 2, max: 1, rest: {type: text}}\n"), LoadOptions{}, CodeBadValue, "above"},
		{"bad end_of_options", withCmd("    end_of_options: '-'\n"), LoadOptions{}, CodeBadValue, "end_of_options"},
		{"bad order", withCmd("    order: random\n"), LoadOptions{}, CodeBadValue, "order"},
		{"order with marker", withCmd("    order: positionals_first\n    end_of_options: '--'\n"), LoadOptions{}, CodeBadValue, "positionals_first"},
		{"subcommands and positionals", withCmd("    positionals: {rest: {type: text}}\n    subcommands: {a: {}}\n"), LoadOptions{}, CodeBadValue, "subcommands"},
		{"bad subcommand name", withCmd("    subcommands: {'-a': {}}\n"), LoadOptions{}, CodeBadName, ""},
		{"null subcommand", withCmd("    subcommands: {a: }\n"), LoadOptions{}, CodeType, "null"},
		{"null command", "version: 1\nroles: {v: {}}\ncommands: {x: }\n", LoadOptions{}, CodeType, "null"},
		{"bad limits", withCmd("    limits: {max_args: -1}\n"), LoadOptions{}, CodeBadValue, "max_args"},
		{"client LD_PRELOAD", withCmd("    env: {client: {LD_PRELOAD: {pattern: '.*'}}}\n"), LoadOptions{}, CodeEnvForbidden, "LD_PRELOAD"},
		{"client GIT_DIR", withCmd("    env: {client: {GIT_DIR: {pattern: '.*'}}}\n"), LoadOptions{}, CodeEnvForbidden, "GIT_DIR"},
		{"client PATH", "version: 1\nenv: {client: {PATH: {pattern: '.*'}}}\n", LoadOptions{}, CodeEnvForbidden, "PATH"},
		{"client lower ld", withCmd("    env: {client: {ld_preload: {pattern: '.*'}}}\n"), LoadOptions{}, CodeEnvForbidden, ""},
		{"client var bad regex", withCmd("    env: {client: {TZ: {pattern: '('}}}\n"), LoadOptions{}, CodeBadRegex, ""},
		{"client var no pattern", withCmd("    env: {client: {TZ: {}}}\n"), LoadOptions{}, CodeRequired, "pattern"},
		{"env bad name", withCmd("    env: {set: {'A-B': x}}\n"), LoadOptions{}, CodeBadEnv, ""},
		{"env twice", withCmd("    env: {set: {TZ: x}, client: {TZ: {pattern: x}}}\n"), LoadOptions{}, CodeBadEnv, "also"},
		{"secret without file", withCmd("    env: {secrets: {API_KEY: API}}\n"), LoadOptions{}, CodeSecretMissing, "secrets_file"},
		{"secrets file open mode", "secrets_file: " + secretsOpen + "\n" + withCmd("    env: {secrets: {API_KEY: API}}\n"), LoadOptions{}, CodeSecretsFile, "0644"},
		{"secrets file missing", "secrets_file: " + dir + "/none\n" + withCmd(""), LoadOptions{}, CodeSecretsFile, ""},
		{"secret key missing", "secrets_file: " + secretsOK + "\n" + withCmd("    env: {secrets: {API_KEY: NOPE}}\n"), LoadOptions{}, CodeSecretMissing, "NOPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "secrets file open mode" || tt.name == "secret key missing" {
				needRoot(t) // a secrets file must be owned by root
			}
			el := loadErr(t, tt.src, tt.opts)
			if !hasCode(el, tt.code, tt.msg) {
				t.Fatalf("got errors:\n%v\nwant code %s with %q", el, tt.code, tt.msg)
			}
			for _, e := range el {
				if e.File != "p.yaml" || e.Line < 1 || e.Col < 1 {
					t.Errorf("error without position: %+v", e)
				}
			}
		})
	}
}

func writeFile(t *testing.T, name, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRoots(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	policy := func(roots string) string {
		return "version: 1\nroles: {v: {}}\nprofiles: {p: {}}\ndefaults: {profile: p}\ncommands: {x: {path: /usr/bin/echo, roles: [v]}}\nroots:\n" + roots
	}
	ws := "  ws: {workspace: true, host: '" + dir + "/ws/{sub}', target: /work}\n"
	tests := []struct {
		name, roots string
		code, msg   string
	}{
		{"ok", ws + "  docs: {host: " + dir + "/docs, target: /docs}\n", "", ""},
		{"root is /", "  r: {host: /, target: /r}\n", CodeSensitiveRoot, ""},
		{"root /etc", "  r: {host: /etc, target: /r}\n", CodeSensitiveRoot, "/etc"},
		{"root inside /etc", "  r: {host: /etc/ssh, target: /r}\n", CodeSensitiveRoot, "/etc"},
		{"root /proc/self", "  r: {host: /proc/self, target: /r}\n", CodeSensitiveRoot, "/proc"},
		{"root /root", "  r: {host: /root, target: /r}\n", CodeSensitiveRoot, "/root"},
		{"root /sys", "  r: {host: /sys, target: /r}\n", CodeSensitiveRoot, "/sys"},
		{"root /dev", "  r: {host: /dev, target: /r}\n", CodeSensitiveRoot, "/dev"},
		{"root /boot", "  r: {host: /boot, target: /r}\n", CodeSensitiveRoot, "/boot"},
		{"root over state dir", "  r: {host: " + dir + ", target: /r}\n", CodeSensitiveRoot, "state"},
		{"root is state dir", "  r: {host: " + state + ", target: /r}\n", CodeSensitiveRoot, "state"},
		{"root over workspaces", ws + "  r: {host: " + dir + "/ws, target: /r}\n", CodeSensitiveRoot, "workspaces"},
		{"root inside workspaces", ws + "  r: {host: " + dir + "/ws/bob, target: /r}\n", CodeSensitiveRoot, "workspaces"},
		{"sibling of workspaces is fine", ws + "  r: {host: " + dir + "/ws2, target: /r}\n", "", ""},
		{"etc prefix is not /etc", "  r: {host: /etcetera, target: /r}\n", "", ""},
		{"unclean host", "  r: {host: " + dir + "/a/../b, target: /r}\n", CodeBadRoot, "clean"},
		{"relative host", "  r: {host: data, target: /r}\n", CodeBadRoot, "absolute"},
		{"template outside workspace", "  r: {host: '" + dir + "/{sub}', target: /r}\n", CodeBadRoot, "placeholders"},
		{"sub not a component", "  ws: {workspace: true, host: '" + dir + "/ws/u-{sub}', target: /work}\n", CodeBadRoot, "whole component"},
		{"sub twice", "  ws: {workspace: true, host: '" + dir + "/{sub}/{sub}', target: /work}\n", CodeBadRoot, "exactly one"},
		{"workspace under /", "  ws: {workspace: true, host: '/{sub}', target: /work}\n", CodeSensitiveRoot, ""},
		{"workspace under /etc", "  ws: {workspace: true, host: '/etc/ws/{sub}', target: /work}\n", CodeSensitiveRoot, "/etc"},
		{"workspace read-only", "  ws: {workspace: true, readonly: true, host: '" + dir + "/ws/{sub}', target: /work}\n", CodeBadRoot, "writable"},
		{"two workspaces", ws + "  ws2: {workspace: true, host: '" + dir + "/w2/{sub}', target: /w2}\n", CodeBadRoot, "only one"},
		{"target /", "  r: {host: " + dir + "/d, target: /}\n", CodeBadRoot, ""},
		{"target /usr", "  r: {host: " + dir + "/d, target: /usr/local}\n", CodeBadRoot, "/usr"},
		{"target relative", "  r: {host: " + dir + "/d, target: work}\n", CodeBadRoot, ""},
		{"nested targets", "  a: {host: " + dir + "/a, target: /data}\n  b: {host: " + dir + "/b, target: /data/b}\n", CodeBadRoot, "overlaps the target"},
		{"host is a file", "  r: {host: /usr/bin/echo, target: /r}\n", CodeBadRoot, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el := loadErr(t, policy(tt.roots), LoadOptions{StateDir: state})
			if tt.code == "" {
				if len(el) > 0 {
					t.Fatalf("got errors:\n%v\nwant none", el)
				}
				return
			}
			if !hasCode(el, tt.code, tt.msg) {
				t.Fatalf("got errors:\n%v\nwant code %s with %q", el, tt.code, tt.msg)
			}
		})
	}
}

func TestLoadAllErrorsSortedWithPositions(t *testing.T) {
	src := `version: 1
roles:
  viewer: {}
profiles:
  p: {pids: many}
commands:
  x:
    path: /usr/bin/echo
    roles: [viewer]
    profile: p
    flgs: []
  y:
    path: /usr/bin/echo
    roles: [ghost]
    profile: p
`
	el := loadErr(t, src, LoadOptions{})
	got := el.Error()
	want := strings.Join([]string{
		`p.yaml:5:13: type: profiles.p.pids: expected a decimal integer, got "many"`,
		`p.yaml:11:5: unknown_key: commands.x: unknown key "flgs" (did you mean "flags"?)`,
		`p.yaml:14:13: undefined_role: role "ghost" is not declared under roles`,
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Decoding and validation errors are reported together.
	src = strings.Replace(strings.Replace(src, "pids: many", "pids: 5", 1), "flgs: []", "flags: [{names: [--a], type: regex, pattern: '('}]", 1)
	el = loadErr(t, src, LoadOptions{})
	if len(el) != 2 || el[0].Code != CodeBadRegex || el[0].Line != 11 || el[1].Code != CodeUndefinedRole || el[1].Line != 14 || el[1].Col != 13 {
		t.Errorf("got\n%v\nwant bad_regex at line 11 and undefined_role at 14:13", el)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b.yaml"), "version: 1\nroles: {v: {}}\nprofiles: {p: {}}\ncommands: {echo: {path: /usr/bin/echo, roles: [v], profile: p}}\n", 0o644)
	writeFile(t, filepath.Join(dir, "c.yml"), "version: 1\ncommands: {cat: {path: /usr/bin/cat, roles: [v], profile: p}}\n", 0o644)
	writeFile(t, filepath.Join(dir, "notes.txt"), "not policy", 0o644)
	s, err := Load(context.Background(), []string{dir}, LoadOptions{})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	if got := s.Files(); len(got) != 2 || filepath.Base(got[0]) != "b.yaml" || filepath.Base(got[1]) != "c.yml" {
		t.Errorf("got files %v, want b.yaml, c.yml", got)
	}
	if _, ok := s.Command("cat"); !ok {
		t.Errorf("command from the second file is missing")
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), "version: 1\ncommands: {echo: {path: /usr/bin/echo, roles: [v], profile: p}}\n", 0o644)
	_, err = Load(context.Background(), []string{dir}, LoadOptions{})
	var el ErrorList
	if !errors.As(err, &el) || !hasCode(el, CodeDuplicateName, "a.yaml:2:") || !strings.HasSuffix(el[0].File, "b.yaml") {
		t.Errorf("got %v, want duplicate_name in b.yaml naming a.yaml:2", err)
	}
	if _, err := Load(context.Background(), []string{filepath.Join(dir, "missing")}, LoadOptions{}); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("got %v, want an I/O error", err)
	}
	empty := t.TempDir()
	if _, err := Load(context.Background(), []string{empty}, LoadOptions{}); !errors.Is(err, ErrNoFiles) {
		t.Errorf("got %v, want ErrNoFiles", err)
	}
}

func TestLoadSHA256Pin(t *testing.T) {
	data, err := os.ReadFile("/usr/bin/echo")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	src := strings.Replace(minimalPolicy, "roles: [viewer]}", "roles: [viewer], sha256: "+hex.EncodeToString(sum[:])+"}", 1)
	if _, err := LoadBytes("p.yaml", []byte(src), LoadOptions{}); err != nil {
		t.Errorf("got %v, want the right pin to load", err)
	}
}

func TestLoadSecrets(t *testing.T) {
	needRoot(t) // a secrets file must be owned by root
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	writeFile(t, secrets, "# comment\n\nAPI=s3cr3t=x\nOTHER=1\n", 0o600)
	src := "secrets_file: " + secrets + "\n" + strings.Replace(minimalPolicy, "roles: [viewer]}", "roles: [viewer], env: {secrets: {API_KEY: API}}}", 1)
	s, err := LoadBytes("p.yaml", []byte(src), LoadOptions{})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	d := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"viewer"}, Command: "echo", Trace: true})
	if !d.Allowed || len(d.Env) != 1 || d.Env[0] != "API_KEY=s3cr3t=x" {
		t.Fatalf("got %+v, want API_KEY=s3cr3t=x in env", d)
	}
	for _, a := range d.Argv {
		if strings.Contains(a, "s3cr3t") {
			t.Errorf("secret in argv %q", d.Argv)
		}
	}
	for _, st := range d.Trace {
		if strings.Contains(st.Detail, "s3cr3t") {
			t.Errorf("secret in trace %q", st.Detail)
		}
	}
	if strings.Contains(s.Hash(), "s3cr3t") || d.EnvKeys[0] != "API_KEY" {
		t.Errorf("got env keys %v", d.EnvKeys)
	}
	if js, _ := json.Marshal(d); strings.Contains(string(js), "s3cr3t") {
		t.Errorf("decision JSON carries the secret: %s", js)
	}
	c, _ := s.Command("echo")
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(verb, *c); strings.Contains(out, "s3cr3t") {
			t.Errorf("printing a command with %s leaks the secret: %s", verb, out)
		}
	}
	if err := os.Chown(secrets, 1000, 0); err != nil {
		t.Fatal(err)
	}
	el := loadErr(t, src, LoadOptions{})
	if !hasCode(el, CodeSecretsFile, "root") {
		t.Errorf("got %v, want secrets_file not owned by root", el)
	}
	for _, e := range el {
		if strings.Contains(e.Message, "s3cr3t") {
			t.Errorf("secret value in load error %q", e.Message)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(secrets, link); err != nil {
		t.Fatal(err)
	}
	el = loadErr(t, strings.Replace(src, secrets, link, 1), LoadOptions{})
	if !hasCode(el, CodeSecretsFile, "") {
		t.Errorf("got %v, want secrets_file error for a symlink", el)
	}
}

func TestHashCanonical(t *testing.T) {
	a := `version: 1
roles: {viewer: {}, op: {includes: [viewer]}}
profiles: {p: {memory: 128MiB, timeout: 10s}}
defaults: {profile: p}
commands:
  ls: {path: /usr/bin/ls, roles: [viewer, op], flags: [{names: [-l]}, {names: [-a, --all]}], deny: [-Z, -R]}
  cat: {path: /usr/bin/cat, roles: [viewer]}
`
	b := `# the same policy, reordered and respelled
version: 1
commands:
  cat: {roles: [viewer], path: /usr/bin/cat}
  ls:
    deny: [-R, -Z]
    flags:
      - names: [--all, -a]
      - names: [-l]
    roles: [op, viewer]
    path: /usr/bin/ls
profiles:
  p: {timeout: 10000ms, memory: 134217728}
defaults: {profile: p}
roles:
  op: {includes: [viewer]}
  viewer: {}
`
	sa, err := LoadBytes("a.yaml", []byte(a), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := LoadBytes("b.yaml", []byte(b), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sa.Hash() != sb.Hash() {
		t.Errorf("got different hashes %s and %s for equivalent files", sa.Hash(), sb.Hash())
	}
	sc, err := LoadBytes("c.yaml", []byte(strings.Replace(a, "128MiB", "129MiB", 1)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Hash() == sa.Hash() {
		t.Errorf("a changed limit did not change the hash")
	}
}

func TestProfileInheritance(t *testing.T) {
	src := `version: 1
roles: {v: {}}
roots: {ws: {workspace: true, host: "/srv/eg/ws/{sub}", target: /work}}
profiles:
  base: {timeout: 5s, memory: 64MiB, mounts: [ws], network: loopback}
  mid: {inherits: base, memory: 128MiB, untrusted: true}
  top: {inherits: mid, seccomp: strict, umask: "0022", max_output: 2MiB}
defaults: {profile: top}
commands: {x: {path: /usr/bin/echo, roles: [v]}}
`
	s, err := LoadBytes("p.yaml", []byte(src), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Profile("top")
	if p.Timeout.Seconds() != 5 || p.MemoryBytes != 128<<20 || !p.Untrusted || p.Seccomp != "strict" ||
		p.Umask != 0o022 || p.MaxOutputBytes != 2<<20 || p.Network != NetworkLoopback || p.Pids != 64 {
		t.Errorf("got %+v, want inherited values", p)
	}
	if m := s.ProfileMounts("top"); len(m) != 1 || m[0] != "ws" {
		t.Errorf("got mounts %v, want [ws]", m)
	}
}

func TestStateDirPlaceholderAndSource(t *testing.T) {
	state := t.TempDir()
	src := "version: 1\nroles: {v: {}}\nroots: {ws: {workspace: true, host: '{state}/workspaces/{sub}', target: /work}}\n" +
		"profiles: {p: {mounts: [ws]}}\ndefaults: {profile: p}\ncommands: {x: {path: /usr/bin/echo, roles: [v], deny: [-e]}}\n"
	s, err := LoadBytes("p.yaml", []byte(src), LoadOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Roots()[0].Host; got != state+"/workspaces/{sub}" {
		t.Errorf("got host %q, want %q", got, state+"/workspaces/{sub}")
	}
	if el := loadErr(t, src, LoadOptions{}); !hasCode(el, CodeBadRoot, "{state}") {
		t.Errorf("got %v, want bad_root without a state dir", el)
	}
	over := strings.Replace(src, "'{state}/workspaces/{sub}'", "'{state}/w/{sub}', target: /work}, st: {host: '{state}'", 1)
	over = strings.Replace(over, "target: /work}}", "target: /st}}", 1)
	if el := loadErr(t, over, LoadOptions{StateDir: state}); !hasCode(el, CodeSensitiveRoot, "state") {
		t.Errorf("got %v, want sensitive_root for {state} itself", el)
	}
	ref, ok := s.Source("commands.x.deny[0]")
	if !ok || ref.File != "p.yaml" || ref.Line != 6 || ref.Col != 56 {
		t.Errorf("got %+v, %v; want p.yaml:6:56", ref, ok)
	}
}

func TestLoadCanceled(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), minimalPolicy, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, []string{dir}, LoadOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestLoadCheckSeccompFile: LoadOptions.CheckSeccompFile is called once per
// custom file, on its content (not for missing files or built-in names),
// and its error is a one-line bad_seccomp error at each profile's seccomp
// key.
func TestLoadCheckSeccompFile(t *testing.T) {
	dir := rootDir(t)
	good, bad := writeSC(t, dir, "good.json", "good", 0o644), writeSC(t, dir, "bad.json", "bad", 0o644)
	var calls []string
	check := func(data []byte) error {
		calls = append(calls, string(data))
		if string(data) == "bad" {
			return errors.Join(errors.New(`"opneat" is not a syscall (did you mean "openat"?)`), errors.New(`"mount" is never allowed`))
		}
		return nil
	}
	src := strings.Replace(minimalPolicy, "profiles: {p: {}}", "profiles:\n  p: {}\n  a: {seccomp: "+bad+"}\n  b: {seccomp: "+bad+"}\n  c: {seccomp: "+good+"}\n  d: {seccomp: strict}\n  e: {seccomp: "+filepath.Join(dir, "missing.json")+"}", 1)
	_, err := LoadBytes("sc.yaml", []byte(src), LoadOptions{CheckSeccompFile: check})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	want := []string{
		`sc.yaml:5:7: bad_seccomp: seccomp profile file "` + bad + `": "opneat" is not a syscall (did you mean "openat"?); "mount" is never allowed`,
		`sc.yaml:6:7: bad_seccomp: seccomp profile file "` + bad + `": "opneat" is not a syscall (did you mean "openat"?); "mount" is never allowed`,
		`sc.yaml:9:7: bad_seccomp: seccomp profile file "` + filepath.Join(dir, "missing.json") + `" does not exist`,
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(calls, ",") != "bad,good" {
		t.Errorf("got calls %v, want one per existing custom file: bad, good", calls)
	}
	// Without the hook the same files load (read and their mode checked).
	src = strings.Replace(minimalPolicy, "p: {}", "p: {seccomp: "+bad+"}", 1)
	if _, err := LoadBytes("sc.yaml", []byte(src), LoadOptions{}); err != nil {
		t.Errorf("without CheckSeccompFile: got %v, want no error", err)
	}
}

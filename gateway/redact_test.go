package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Secrets planted in tests. None may ever appear in an audit line.
const (
	testJWT      = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
	testPassword = "hunter2-Sup3rS3cret"
	testAWSKeyID = "AKIAIOSFODNN7EXAMPLE"
	testAWSKey   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testGitHub   = "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB"
	testPEMBody  = "MIIEowIBAAKCAQEA7bq3sEcReTkEyBoDy"
)

func TestRedactString(t *testing.T) {
	r := DefaultRedactor()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "log -n 5", "log -n 5"},
		{"empty", "", ""},
		{"password=", "password=" + testPassword, "password=[REDACTED]"},
		{"--password=", "--password=" + testPassword, "--password=[REDACTED]"},
		{"db_password: quoted", `db_password: "` + testPassword + `"`, "db_password: [REDACTED]"},
		{"token= in a query", "https://x/?a=1&token=" + testPassword + "&b=2", "https://x/?a=1&token=[REDACTED]&b=2"},
		{"api-key=", "--api-key=" + testPassword, "--api-key=[REDACTED]"},
		{"aws secret", "aws_secret_access_key=" + testAWSKey, "aws_secret_access_key=[REDACTED]"},
		{"aws key id", "id " + testAWSKeyID + " end", "id [REDACTED] end"},
		{"bearer", "Authorization: Bearer " + testPassword, "Authorization: [REDACTED]"},
		{"bearer alone", "Bearer abcdefgh12345678", "Bearer [REDACTED]"},
		{"jwt", "x " + testJWT + " y", "x [REDACTED] y"},
		{"jwt without signature", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "[REDACTED]"},
		{"url credentials", "https://bob:" + testPassword + "@git.example.com/r.git", "https://bob:[REDACTED]@git.example.com/r.git"},
		{"github token", "GH " + testGitHub, "GH [REDACTED]"},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\n" + testPEMBody + "\n-----END RSA PRIVATE KEY-----", "[REDACTED]"},
		{"cut private key", "k=-----BEGIN PRIVATE KEY-----\n" + testPEMBody, "k=[REDACTED]"},
		{"author is not auth", "--author=alice", "--author=alice"},
		{"json password", `{"user":"bob","password": "` + testPassword + `"}`, `{"user":"bob","password": [REDACTED]}`},
		{"x-api-key header", "X-Api-Key: " + testPassword, "X-Api-Key: [REDACTED]"},
		{"db_pass", "db_pass=" + testPassword, "db_pass=[REDACTED]"},
		{"passes is not a password", "--passes=3", "--passes=3"},
		{"token scheme", "Authorization token " + testGitHub, "Authorization token [REDACTED]"},
		{"short bearer kept", "bearer abc", "bearer abc"},
		{"prose after token kept", "token signature is invalid", "token signature is invalid"},
		{"long letters bearer", "Bearer abcdefghijklmnopqrstuvwxyz", "Bearer [REDACTED]"},
		{"google key", "AIza" + strings.Repeat("x", 35), "[REDACTED]"},
		{"slack", "xoxb-1234567890-abcdef", "[REDACTED]"},
		{"sk inside a word", "risk-assessment-of-the-quarter", "risk-assessment-of-the-quarter"},
		{"url without password", "https://bob@git.example.com/r.git", "https://bob@git.example.com/r.git"},
		{"scheme colon is not a key", "https://example.com/key", "https://example.com/key"},
		{"encrypted private key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY----- tail", "[REDACTED] tail"},
		{"public key kept", "-----BEGIN PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----"},
		{"home", "/home/alice/repo", "~/repo"},
		{"home alone", "/home/alice", "~"},
		{"root home", "/root/.ssh/id_rsa", "~/.ssh/id_rsa"},
		{"root alone", "/root", "~"},
		{"home in flag", "--dir=/home/bob/x", "--dir=~/x"},
		{"two homes", "/home/a/x /root/y", "~/x ~/y"},
		{"not a home", "/homework/x /rooted /var/home/x", "/homework/x /rooted /var/home/x"},
		{"home dir root only", "/home/", "/home/"},
		{"nested home", "/home/a/home/b", "~/home/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactArgs(t *testing.T) {
	r := DefaultRedactor()
	tests := []struct {
		name     string
		in, want []string
	}{
		{"nil", nil, nil},
		{"plain", []string{"log", "-n", "5"}, []string{"log", "-n", "5"}},
		{"flag then secret", []string{"--password", testPassword, "x"}, []string{"--password", Redacted, "x"}},
		{"short flag style", []string{"-token", testPassword}, []string{"-token", Redacted}},
		{"db-password", []string{"--db-password", testPassword}, []string{"--db-password", Redacted}},
		{"flag=secret", []string{"--token=" + testPassword}, []string{"--token=[REDACTED]"}},
		{"last arg flag", []string{"--password"}, []string{"--password"}},
		{"jwt argument", []string{"curl", "-H", "Authorization: Bearer " + testJWT}, []string{"curl", "-H", "Authorization: [REDACTED]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Args(tt.in)
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") || (got == nil) != (tt.want == nil) {
				t.Errorf("Args(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	in := []string{"--password", testPassword}
	_ = r.Args(in)
	if in[1] != testPassword {
		t.Errorf("Args modified its input: %q", in)
	}
}

func TestRedactCmdline(t *testing.T) {
	r := DefaultRedactor()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "git log -n 5", "git log -n 5"},
		{"flag then word", "mysql --password " + testPassword + " db", "mysql --password [REDACTED] db"},
		{"flag then quoted words", "x --token 'a b c' y", "x --token [REDACTED] y"},
		{"flag then double quoted", `x --secret "a b" y`, "x --secret [REDACTED] y"},
		{"unterminated quote", "x --token 'a b", "x --token [REDACTED]"},
		{"single quoted word", "x --token 'ab' y", "x --token [REDACTED] y"},
		{"flag last", "x --password", "x --password"},
		{"flag=value", "x --password=" + testPassword, "x --password=[REDACTED]"},
		{"home", "ls /home/alice/x", "ls ~/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Cmdline(tt.in); got != tt.want {
				t.Errorf("Cmdline(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactEnv(t *testing.T) {
	r := DefaultRedactor()
	got := r.Env(map[string]string{
		"GITHUB_TOKEN":          testGitHub,
		"PGPASSWORD":            "plainlooking",
		"AWS_SECRET_ACCESS_KEY": testAWSKey,
		"LANG":                  "C.UTF-8",
		"GIT_DIR":               "/home/alice/repo/.git",
		"NOTE":                  "password=" + testPassword,
	})
	want := map[string]string{
		"GITHUB_TOKEN":          Redacted,
		"PGPASSWORD":            Redacted,
		"AWS_SECRET_ACCESS_KEY": Redacted,
		"LANG":                  "C.UTF-8",
		"GIT_DIR":               "~/repo/.git",
		"NOTE":                  "password=[REDACTED]",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Env[%s] = %q, want %q", k, got[k], w)
		}
	}
}

func TestRedactConfig(t *testing.T) {
	r, err := NewRedactor(RedactConfig{
		Patterns:      []string{`corp-[0-9]{6}`, `pin:(?P<secret>[0-9]+)`},
		SecretFlags:   []string{`-k`},
		SecretEnvKeys: []string{`^CORP_`},
		MaxField:      32,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"id corp-123456", "id [REDACTED]"},
		{"pin:1234", "pin:[REDACTED]"},
		{strings.Repeat("a", 40), "...[truncated 40 bytes]"},
		{"x " + strings.Repeat("a", 40), "x...[truncated 41 bytes]"},
		{"/home/alice/" + strings.Repeat("b", 40), "~...[truncated 41 bytes]"},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := r.Args([]string{"-k", "abc"}); got[1] != Redacted {
		t.Errorf("Args(-k abc) = %q, want the value redacted", got)
	}
	if got := r.Env(map[string]string{"CORP_ID": "x"}); got["CORP_ID"] != Redacted {
		t.Errorf("Env(CORP_ID) = %q, want redacted", got["CORP_ID"])
	}
	for _, bad := range []RedactConfig{{Patterns: []string{"("}}, {SecretFlags: []string{"[z-a]"}}, {SecretEnvKeys: []string{"*"}}} {
		if _, err := NewRedactor(bad); err == nil {
			t.Errorf("NewRedactor(%+v): got nil error, want one", bad)
		}
	}
}

// TestRedactBounds checks that hostile sizes are bounded in the output.
func TestRedactBounds(t *testing.T) {
	r := DefaultRedactor()
	huge := strings.Repeat("password=x ", 100_000)
	if got := r.String(huge); len(got) > DefaultRedactMaxField+64 {
		t.Errorf("String of %d bytes gave %d bytes, want at most %d", len(huge), len(got), DefaultRedactMaxField+64)
	}
	args := strings.Split(strings.Repeat("a ", 100_000), " ")
	got := r.Args(args)
	if len(got) != maxListItems+1 || !strings.HasPrefix(got[maxListItems], "...[") {
		t.Errorf("Args of %d items gave %d items (last %q), want %d and a marker", len(args), len(got), got[len(got)-1], maxListItems+1)
	}
	big := []string{strings.Repeat("b", 4000), strings.Repeat("c", 4000), strings.Repeat("d", 4000), strings.Repeat("e", 4000), strings.Repeat("f", 4000), "g"}
	total := 0
	for _, a := range r.Args(big) {
		total += len(a)
	}
	if total > 5*DefaultRedactMaxField {
		t.Errorf("Args kept %d bytes, want at most %d", total, 5*DefaultRedactMaxField)
	}
	env := map[string]string{}
	for i := range 1000 {
		env[fmt.Sprintf("V%04d", i)] = "x"
	}
	if got := r.Env(env); len(got) != maxEnvItems+1 || got["..."] == "" {
		t.Errorf("Env of %d variables gave %d, want %d with a \"...\" entry", len(env), len(got), maxEnvItems+1)
	}
}

// BenchmarkRedactHostile measures redaction of 1 MiB strings built to make
// the detectors work (the gateway's body limit is 1 MiB).
func BenchmarkRedactHostile(b *testing.B) {
	units := []string{"a", "password=", "eyJaaaaaaaaaaaa.", "x://a:b@", "Bearer ", "AKIA", "-----BEGIN PRIVATE KEY-----", "/home/"}
	for _, u := range units {
		s := strings.Repeat(u, (1<<20)/len(u))
		b.Run(strings.Trim(u, " -=:/@."), func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				_ = applySpans(s, builtinSpans(s))
			}
		})
	}
}

// TestAuditNoSecretsInFile plants secrets everywhere Record redacts, then
// greps the file for them.
func TestAuditNoSecretsInFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	ev := Event{
		Type:      EventExecStart,
		Subject:   "alice",
		Command:   "curl",
		UserAgent: "tool/1.0 (token=" + testPassword + ")",
		Args: []string{"-H", "Authorization: Bearer " + testJWT, "--password", testPassword,
			"https://u:" + testPassword + "@example.com/", testAWSKeyID, "--key=" + testAWSKey,
			"/home/alice/secret-project/file"},
		Argv:    []string{"/usr/bin/curl", "--token", testGitHub},
		Cmdline: "curl --password '" + testPassword + " x' --oauth2-bearer " + testJWT,
		Env: map[string]string{"AWS_SECRET_ACCESS_KEY": testAWSKey, "API_TOKEN": testGitHub,
			"CFG": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + testPEMBody + "\n-----END OPENSSH PRIVATE KEY-----"},
		Message: "Bearer " + testJWT,
		Error:   "dial https://u:" + testPassword + "@host: refused",
	}
	if err := a.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := string(data)
	for _, secret := range []string{testJWT, "eyJ", testPassword, testAWSKeyID, testAWSKey, testGitHub, testPEMBody, "/home/alice"} {
		if strings.Contains(line, secret) {
			t.Errorf("audit line contains %q:\n%s", secret, line)
		}
	}
	if ev.Args[3] != testPassword {
		t.Errorf("Record modified the caller's Args")
	}
	if !strings.Contains(line, "~/secret-project/file") {
		t.Errorf("home directory not shortened:\n%s", line)
	}
}

// FuzzRedactSecret embeds a known secret after password= between arbitrary
// text and checks that it never survives.
func FuzzRedactSecret(f *testing.F) {
	f.Add("git log", "--oneline")
	f.Add("token", "")
	f.Add("https://u:", "@h")
	f.Add("-----BEGIN PRIVATE KEY-----", "\n")
	f.Add(strings.Repeat("é", 3000), "x")
	const secret = "Zq8SecretValue77"
	r := DefaultRedactor()
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		if strings.Contains(prefix, secret) || strings.Contains(suffix, secret) {
			t.Skip()
		}
		in := prefix + " password=" + secret + " " + suffix
		out := r.String(in)
		if strings.Contains(out, secret) {
			t.Errorf("String(%q) = %q: the secret survived", in, out)
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Errorf("String(%q) = %q: invalid UTF-8 from valid input", in, out)
		}
		for _, a := range r.Args([]string{prefix, "--password", secret, suffix}) {
			if strings.Contains(a, secret) {
				t.Errorf("Args leaked the secret: %q", a)
			}
		}
	})
}

// FuzzShortenHome checks ShortenHome never grows a string, is idempotent and
// leaves no /home/<user> component at a path boundary.
func FuzzShortenHome(f *testing.F) {
	for _, s := range []string{"/home/a/x", "/root", "x=/home/b", "/home/", "/home//x", "~/home/a", "/rootx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := ShortenHome(s)
		if len(out) > len(s) {
			t.Errorf("ShortenHome(%q) = %q grew", s, out)
		}
		if again := ShortenHome(out); again != out {
			t.Errorf("ShortenHome not idempotent: %q -> %q -> %q", s, out, again)
		}
		for i := 0; i < len(out); i++ {
			if homePrefixLen(out, i) > 0 {
				t.Errorf("ShortenHome(%q) = %q still has a home at %d", s, out, i)
			}
		}
	})
}

// FuzzRedactString feeds arbitrary text to every redaction entry point: no
// panic, valid UTF-8 stays valid, and the output stays bounded.
func FuzzRedactString(f *testing.F) {
	for _, s := range []string{"password=x", "Authorization: Bearer " + testJWT, "https://u:p@h/", "-----BEGIN PRIVATE KEY-----\nx",
		testAWSKeyID, "token  abcdefghij", `"secret":"x"`, "eyJ" + strings.Repeat("a", 9) + ".", "/root/x /home/a"} {
		f.Add(s)
	}
	r, err := NewRedactor(RedactConfig{MaxField: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, out := range map[string]string{"String": r.String(s), "Cmdline": r.Cmdline(s)} {
			if utf8.ValidString(s) && !utf8.ValidString(out) {
				t.Errorf("%s(%q) = %q: invalid UTF-8", name, s, out)
			}
			if len(out) > 64+64 {
				t.Errorf("%s(%q) gave %d bytes, want at most %d", name, s, len(out), 128)
			}
		}
		_ = r.Args(strings.Fields(s))
		_ = r.Env(map[string]string{s: s})
	})
}

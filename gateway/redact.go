package gateway

import (
	"fmt"
	"regexp"
	"strings"
)

// Redacted replaces every secret the Redactor finds.
const Redacted = "[REDACTED]"

// DefaultRedactMaxField bounds one redacted string in an audit line.
const DefaultRedactMaxField = 4096

// DefaultRedactPatterns are the value patterns every Redactor starts with.
// A match is replaced by Redacted; when the pattern has a group named
// "secret", only that group is replaced (so "password=hunter2" becomes
// "password=[REDACTED]").
var DefaultRedactPatterns = []string{
	// HTTP authorization headers: everything after the colon.
	`(?i)\b(?:proxy-)?authorization\s*[:=]\s*(?P<secret>[^\r\n]+)`,
	// HTTP authorization schemes on their own.
	`(?i)\b(?:bearer|basic|token)\s+(?P<secret>[a-z0-9._~+/=-]{8,})`,
	// key=value and key: value where the key names a secret (password=,
	// --password=, token=, api_key:, --key=, aws_secret_access_key=,
	// client_secret=...).
	`(?i)(?:[a-z0-9_.-]*(?:pass(?:wor)?d|pass|secret|token|credential|apikey)[a-z0-9_.-]*|(?:[a-z0-9_.-]*[_.-])?(?:auth|key|keys|privkey))\s*[=:]\s*(?P<secret>"[^"]*"|'[^']*'|[^\s&;,'"]+)`,
	// JWTs and other base64url JSON ("eyJ" is `{"`).
	`\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}`,
	// Credentials in URLs: scheme://user:secret@host.
	`(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<secret>[^/\s@]+)@`,
	// AWS access key ids.
	`\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b`,
	// GitHub, GitLab, Slack and OpenAI-style tokens.
	`\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,})`,
	// PEM private key blocks, also when cut off.
	`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`,
}

// DefaultSecretFlags are flags whose NEXT argument is a secret
// ("--password hunter2"). Matched case-insensitively against a whole argument.
var DefaultSecretFlags = []string{
	`--?(?:[a-z0-9]+[_-])*(?:password|passwd|pass|pwd|secret|token|key|apikey|credentials?|auth|authorization)`,
}

// DefaultSecretEnvKeys match environment variable names whose whole value
// is a secret (AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, PGPASSWORD...).
var DefaultSecretEnvKeys = []string{
	`(?i)(?:pass|secret|token|key|auth|credential|cookie|session|private|signature)`,
}

// RedactConfig adds patterns to the defaults. Each entry is a Go regular
// expression; a bad one is an error naming it.
type RedactConfig struct {
	Patterns      []string // value patterns (group "secret" = the part to hide)
	SecretFlags   []string // flags whose next argument is hidden
	SecretEnvKeys []string // env names whose value is hidden
	MaxField      int      // 0 = DefaultRedactMaxField
}

// Redactor hides secrets and shortens home directories in strings that go
// to the audit log. It is immutable and safe for concurrent use.
type Redactor struct {
	patterns []*regexp.Regexp
	flags    *regexp.Regexp
	envKeys  *regexp.Regexp
	maxField int
}

// NewRedactor compiles the defaults plus cfg's patterns.
func NewRedactor(cfg RedactConfig) (*Redactor, error) {
	r := &Redactor{maxField: cfg.MaxField}
	if r.maxField <= 0 {
		r.maxField = DefaultRedactMaxField
	}
	for _, p := range append(append([]string(nil), DefaultRedactPatterns...), cfg.Patterns...) {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact pattern %q: %w", p, err)
		}
		r.patterns = append(r.patterns, re)
	}
	var err error
	if r.flags, err = anyOf(`(?i)^(?:`, append(append([]string(nil), DefaultSecretFlags...), cfg.SecretFlags...), `)$`); err != nil {
		return nil, fmt.Errorf("redact secret flags: %w", err)
	}
	if r.envKeys, err = anyOf(``, append(append([]string(nil), DefaultSecretEnvKeys...), cfg.SecretEnvKeys...), ``); err != nil {
		return nil, fmt.Errorf("redact secret env keys: %w", err)
	}
	return r, nil
}

// DefaultRedactor returns a Redactor with the default patterns only.
func DefaultRedactor() *Redactor {
	r, err := NewRedactor(RedactConfig{})
	if err != nil {
		panic("default redact patterns: " + err.Error()) // a bug in this file
	}
	return r
}

func anyOf(prefix string, pats []string, suffix string) (*regexp.Regexp, error) {
	for _, p := range pats {
		if _, err := regexp.Compile(p); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return regexp.Compile(prefix + "(?:" + strings.Join(pats, ")|(?:") + ")" + suffix)
}

// String hides every secret in s, shortens home directories to ~ and bounds
// the length.
func (r *Redactor) String(s string) string {
	if s == "" {
		return s
	}
	for _, re := range r.patterns {
		s = redactMatches(re, s)
	}
	s = ShortenHome(s)
	if len(s) > r.maxField {
		s = strings.ToValidUTF8(s[:r.maxField], "") + "...[truncated]"
	}
	return s
}

func redactMatches(re *regexp.Regexp, s string) string {
	group := re.SubexpIndex("secret")
	locs := re.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		start, end := loc[0], loc[1]
		if group > 0 {
			start, end = loc[2*group], loc[2*group+1]
			if start < 0 {
				continue
			}
		}
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// Args redacts each argument, and hides the argument after a secret flag
// ("--password", "hunter2" -> "--password", "[REDACTED]"). It returns a new
// slice.
func (r *Redactor) Args(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	hideNext := false
	for i, a := range args {
		switch {
		case hideNext:
			out[i] = Redacted
			hideNext = false
		default:
			out[i] = r.String(a)
			hideNext = r.flags.MatchString(a)
		}
	}
	return out
}

// Cmdline redacts a one-string command line: String, plus the word after a
// secret flag ("--password 'a b'" hides the quoted word).
func (r *Redactor) Cmdline(s string) string {
	s = r.String(s)
	words := wordRE.FindAllStringIndex(s, -1)
	var b strings.Builder
	last := 0
	for i := 0; i < len(words); i++ {
		if !r.flags.MatchString(s[words[i][0]:words[i][1]]) || i+1 >= len(words) {
			continue
		}
		start, end := words[i+1][0], words[i+1][1]
		j := i + 1
		if q := s[start]; q == '\'' || q == '"' {
			for ; j < len(words); j++ { // extend to the word that closes the quote
				w := s[words[j][0]:words[j][1]]
				if (j > i+1 || len(w) > 1) && w[len(w)-1] == q {
					break
				}
			}
			j = min(j, len(words)-1)
			end = words[j][1]
		}
		i = j
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

var wordRE = regexp.MustCompile(`\S+`)

// Env redacts the values of an environment map: values of secret-looking
// names are hidden whole, the others pass through String. It returns a new
// map.
func (r *Redactor) Env(env map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		k = r.String(k)
		if r.envKeys.MatchString(k) {
			out[k] = Redacted
			continue
		}
		out[k] = r.String(v)
	}
	return out
}

// Event returns a copy of ev with every free-text field redacted.
func (r *Redactor) Event(ev Event) Event {
	ev.Args = r.Args(ev.Args)
	ev.Argv = r.Args(ev.Argv)
	ev.Cmdline = r.Cmdline(ev.Cmdline)
	ev.Env = r.Env(ev.Env)
	ev.Command = r.String(ev.Command)
	ev.Cwd = r.String(ev.Cwd)
	ev.UserAgent = r.String(ev.UserAgent)
	ev.Message = r.String(ev.Message)
	ev.Error = r.String(ev.Error)
	ev.Target = r.String(ev.Target)
	if ev.EnvKeys != nil {
		keys := make([]string, len(ev.EnvKeys))
		for i, k := range ev.EnvKeys {
			keys[i] = r.String(k)
		}
		ev.EnvKeys = keys
	}
	if ev.PolicyErrors != nil {
		errs := make([]string, len(ev.PolicyErrors))
		for i, e := range ev.PolicyErrors {
			errs[i] = r.String(e)
		}
		ev.PolicyErrors = errs
	}
	if ev.Trace != nil {
		trace := append(ev.Trace[:0:0], ev.Trace...)
		for i := range trace {
			trace[i].Detail = r.String(trace[i].Detail)
		}
		ev.Trace = trace
	}
	return ev
}

// ShortenHome replaces home directories by ~: "/home/alice/x" -> "~/x",
// "/home/alice" -> "~", "/root/x" -> "~/x". Only whole path components
// count ("/homework" and "/rooted" stay).
func ShortenHome(s string) string {
	if !strings.Contains(s, "/home/") && !strings.Contains(s, "/root") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if n := homePrefixLen(s, i); n > 0 {
			b.WriteByte('~')
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// homePrefixLen returns the length of a home directory starting at s[i], or 0.
func homePrefixLen(s string, i int) int {
	if s[i] != '/' || (i > 0 && isPathByte(s[i-1])) {
		return 0
	}
	rest := s[i:]
	switch {
	case strings.HasPrefix(rest, "/home/"):
		n := len("/home/")
		j := n
		for j < len(rest) && isPathByte(rest[j]) && rest[j] != '/' {
			j++
		}
		if j == n {
			return 0
		}
		return j
	case strings.HasPrefix(rest, "/root"):
		n := len("/root")
		if n < len(rest) && isPathByte(rest[n]) && rest[n] != '/' {
			return 0
		}
		return n
	}
	return 0
}

// isPathByte reports whether c can be part of a path component or separator.
func isPathByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '/' || c == '.' || c == '_' || c == '-' || c == '~' || c == '+' || c == '@' || c >= 0x80:
		return true
	}
	return false
}

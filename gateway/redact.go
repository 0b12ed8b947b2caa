package gateway

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Redacted replaces every secret the Redactor finds.
const Redacted = "[REDACTED]"

// Bounds on what one event can put in the audit log, whatever the client
// sends: a string is cut (at a separator, before redaction) at MaxField
// bytes, a list keeps at most maxListItems entries and about 4*MaxField
// bytes, an env map at most maxEnvItems variables.
const (
	DefaultRedactMaxField = 4096
	maxListItems          = 256
	maxEnvItems           = 64
	maxFlagLen            = 64  // longer words are never secret flags
	maxEnvKeyLen          = 256 // longer names are treated as secret
)

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

// RedactConfig adds to the built-in detectors (redact_scan.go), which are
// always on. Each entry is a Go regular expression; a bad one is an error
// naming it. The yaml tags let the gateway's configuration embed it (e.g.
// under audit.redact).
type RedactConfig struct {
	// Patterns are extra value patterns. A match is replaced by Redacted;
	// when the pattern has a group named "secret", only that group is
	// ("pin:(?P<secret>[0-9]+)" -> "pin:[REDACTED]").
	Patterns      []string `yaml:"patterns"`
	SecretFlags   []string `yaml:"secret_flags"`    // flags whose next argument is hidden
	SecretEnvKeys []string `yaml:"secret_env_keys"` // env names whose value is hidden
	MaxField      int      `yaml:"max_field"`       // 0 = DefaultRedactMaxField
}

// Redactor hides secrets and shortens home directories in strings that go
// to the audit log, and bounds their size. It is immutable and safe for
// concurrent use.
type Redactor struct {
	patterns []*regexp.Regexp
	flags    *regexp.Regexp
	envKeys  *regexp.Regexp
	maxField int
}

// NewRedactor returns a Redactor with the built-in detectors plus cfg's
// patterns.
func NewRedactor(cfg RedactConfig) (*Redactor, error) {
	r := &Redactor{maxField: cfg.MaxField}
	if r.maxField <= 0 {
		r.maxField = DefaultRedactMaxField
	}
	for _, p := range cfg.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact pattern %q: %w", p, err)
		}
		r.patterns = append(r.patterns, re)
	}
	var err error
	if r.flags, err = anyOf(`(?i)^(?:`, append(slices.Clone(DefaultSecretFlags), cfg.SecretFlags...), `)$`); err != nil {
		return nil, fmt.Errorf("redact secret flags: %w", err)
	}
	if r.envKeys, err = anyOf(``, append(slices.Clone(DefaultSecretEnvKeys), cfg.SecretEnvKeys...), ``); err != nil {
		return nil, fmt.Errorf("redact secret env keys: %w", err)
	}
	return r, nil
}

// DefaultRedactor returns a Redactor with the built-in detectors only.
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
// the length: a longer s is cut before redacting, at the last separator
// before MaxField, so no half secret is left for the detectors to miss.
func (r *Redactor) String(s string) string {
	if s == "" {
		return s
	}
	s, cut := r.bound(s)
	s = applySpans(s, builtinSpans(s))
	for _, re := range r.patterns {
		s = redactMatches(re, s)
	}
	s = ShortenHome(s)
	if len(s) > r.maxField { // redaction markers made it longer
		var more int
		s, more = r.bound(s)
		cut += more
	}
	if cut > 0 {
		s += fmt.Sprintf("...[truncated %d bytes]", cut)
	}
	return s
}

// cutSeparators are where an over-long string may be cut.
const cutSeparators = " \t\r\n,;&\"'()[]{}<>|/=:"

// bound cuts s to at most MaxField bytes at a separator; it returns what
// is kept and how many bytes were dropped.
func (r *Redactor) bound(s string) (string, int) {
	if len(s) <= r.maxField {
		return s, 0
	}
	k := max(strings.LastIndexAny(s[:r.maxField], cutSeparators), 0)
	return s[:k], len(s) - k
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

func (r *Redactor) isSecretFlag(word string) bool {
	return len(word) <= maxFlagLen && r.flags.MatchString(word)
}

// Args redacts each argument, and hides the argument after a secret flag
// ("--password", "hunter2" -> "--password", "[REDACTED]"). It returns a new
// slice of at most maxListItems entries and about 4*MaxField bytes; a last
// entry "...[N more]" counts what was left out.
func (r *Redactor) Args(args []string) []string {
	return r.list(args, true)
}

func (r *Redactor) list(items []string, flags bool) []string {
	if items == nil {
		return nil
	}
	out := make([]string, 0, min(len(items), maxListItems+1))
	total, hideNext := 0, false
	for i, a := range items {
		if i >= maxListItems || total >= 4*r.maxField {
			out = append(out, fmt.Sprintf("...[%d more]", len(items)-i))
			break
		}
		v := Redacted
		if !hideNext {
			v = r.String(a)
		}
		hideNext = flags && !hideNext && r.isSecretFlag(a)
		total += len(v)
		out = append(out, v)
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
		if i+1 >= len(words) || !r.isSecretFlag(s[words[i][0]:words[i][1]]) {
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
// map of at most maxEnvItems variables (the first by name); a key "..."
// counts the others.
func (r *Redactor) Env(env map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	keys := slices.Sorted(maps.Keys(env))
	out := make(map[string]string, min(len(keys), maxEnvItems+1))
	for i, k := range keys {
		if i >= maxEnvItems {
			out["..."] = fmt.Sprintf("[%d more]", len(keys)-i)
			break
		}
		v := env[k]
		secret := len(k) > maxEnvKeyLen || r.envKeys.MatchString(k)
		k = r.String(k)
		if secret {
			out[k] = Redacted
			continue
		}
		out[k] = r.String(v)
	}
	return out
}

// Event returns a copy of ev with every free-text field redacted and
// bounded.
func (r *Redactor) Event(ev Event) Event {
	ev.Args = r.Args(ev.Args)
	ev.Argv = r.Args(ev.Argv)
	ev.Cmdline = r.Cmdline(ev.Cmdline)
	ev.Env = r.Env(ev.Env)
	ev.EnvKeys = r.list(ev.EnvKeys, false)
	ev.PolicyErrors = r.list(ev.PolicyErrors, false)
	for _, f := range []*string{&ev.Command, &ev.Cwd, &ev.UserAgent, &ev.Message, &ev.Error, &ev.Target, &ev.Method} {
		*f = r.String(*f)
	}
	if ev.Trace != nil {
		trace := slices.Clone(ev.Trace)
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

package gateway

import (
	"cmp"
	"slices"
	"strings"
)

// The built-in secret detectors. Each is a linear scan (strings.Index and
// byte loops, no regular expressions), so redacting costs little even for
// hostile input; together they find:
//
//   - key=value and key: value where the key names a secret (password=,
//     --password=, token=, api_key:, --key=, aws_secret_access_key=, JSON
//     "password": "..."), and Authorization headers up to the end of line;
//   - Bearer / Basic / token schemes followed by something that looks like a
//     credential (not a word of prose);
//   - JWTs and other base64url JSON ("eyJ...");
//   - credentials in URLs (scheme://user:secret@host);
//   - AWS access key ids, GitHub, GitLab, Slack, Google, npm, Hugging Face
//     and OpenAI-style tokens;
//   - PEM private key blocks, also when cut off.

// span is a byte range [start, end) of a string to hide.
type span struct{ start, end int }

// builtinSpans returns what the built-in detectors find in s.
func builtinSpans(s string) []span {
	lower := asciiLower(s)
	var sp []span
	sp = keyValueSpans(s, lower, sp)
	sp = schemeSpans(s, lower, sp)
	sp = jwtSpans(s, sp)
	sp = urlCredentialSpans(s, sp)
	sp = awsKeySpans(s, sp)
	sp = tokenPrefixSpans(s, sp)
	sp = pemSpans(s, sp)
	return sp
}

// applySpans replaces every span (merged where they overlap or touch) by
// Redacted.
func applySpans(s string, sp []span) string {
	if len(sp) == 0 {
		return s
	}
	slices.SortFunc(sp, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	cur := sp[0]
	flush := func() {
		b.WriteString(s[last:cur.start])
		b.WriteString(Redacted)
		last = cur.end
	}
	for _, x := range sp[1:] {
		if x.start <= cur.end {
			cur.end = max(cur.end, x.end)
			continue
		}
		flush()
		cur = x
	}
	flush()
	b.WriteString(s[last:])
	return b.String()
}

// asciiLower lowers A-Z only, so that indexes into the result are indexes
// into s.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isKeyByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// keyKind says whether a key names a secret.
type keyKind int

const (
	keyPlain  keyKind = iota
	keySecret         // the value up to a delimiter is secret
	keyHeader         // an Authorization header: the rest of the line is secret
)

// secretKeyWords make a key secret when it contains one of them.
var secretKeyWords = []string{"password", "passwd", "passphrase", "secret", "token", "credential",
	"apikey", "api_key", "api-key", "accesskey", "access_key", "access-key",
	"privatekey", "private_key", "private-key", "privkey"}

// secretKeySegments make a key secret when one of its _ - . separated parts
// is one of them ("--key", "db_pass", "x-auth").
var secretKeySegments = map[string]bool{"pass": true, "pw": true, "auth": true, "key": true, "keys": true, "cookie": true}

// secretKeyKind classifies a lower-case key made of [a-z0-9_.-].
func secretKeyKind(key string) keyKind {
	key = strings.TrimLeft(key, "-")
	if key == "authorization" || key == "proxy-authorization" {
		return keyHeader
	}
	for _, w := range secretKeyWords {
		if strings.Contains(key, w) {
			return keySecret
		}
	}
	for seg := range strings.FieldsFuncSeq(key, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		if secretKeySegments[seg] {
			return keySecret
		}
	}
	return keyPlain
}

// keyBefore returns the lower-case key that ends before the separator at
// lower[i]: optional blanks and a closing quote are skipped; keys are at
// most 128 bytes.
func keyBefore(lower string, i int) string {
	k := i
	for k > 0 && i-k < 8 && (lower[k-1] == ' ' || lower[k-1] == '\t') {
		k--
	}
	if k > 0 && (lower[k-1] == '"' || lower[k-1] == '\'') {
		k--
	}
	end := k
	for k > 0 && end-k < 128 && isKeyByte(lower[k-1]) {
		k--
	}
	return lower[k:end]
}

// valueEnd returns where the value that starts at s[j] ends.
func valueEnd(s string, j int, kind keyKind) int {
	if j >= len(s) {
		return j
	}
	if kind == keyHeader {
		if n := strings.IndexAny(s[j:], "\r\n"); n >= 0 {
			return j + n
		}
		return len(s)
	}
	if q := s[j]; q == '"' || q == '\'' {
		if n := strings.IndexByte(s[j+1:], q); n >= 0 {
			return j + 1 + n + 1
		}
		return len(s)
	}
	for j < len(s) && !isSpace(s[j]) && !strings.ContainsRune("&;,'\"", rune(s[j])) {
		j++
	}
	return j
}

func keyValueSpans(s, lower string, sp []span) []span {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' && c != ':' {
			continue
		}
		if c == ':' && strings.HasPrefix(s[i+1:], "//") {
			continue // scheme://
		}
		kind := secretKeyKind(keyBefore(lower, i))
		if kind == keyPlain {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if end := valueEnd(s, j, kind); end > j {
			sp = append(sp, span{j, end})
			i = end - 1
		}
	}
	return sp
}

// schemeSpans finds "Bearer <credential>", "Basic ...", "token ...".
func schemeSpans(s, lower string, sp []span) []span {
	for _, w := range []string{"bearer", "basic", "token"} {
		for from := 0; ; {
			n := strings.Index(lower[from:], w)
			if n < 0 {
				break
			}
			pos := from + n
			from = pos + len(w)
			if pos > 0 && isAlnum(lower[pos-1]) {
				continue
			}
			j := from
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			if j == from {
				continue
			}
			start := j
			for j < len(s) && (isAlnum(s[j]) || strings.IndexByte("._~+/=-", s[j]) >= 0) {
				j++
			}
			if looksLikeCredential(s[start:j]) {
				sp = append(sp, span{start, j})
				from = j
			}
		}
	}
	return sp
}

// looksLikeCredential tells a credential after "Bearer"/"token" from a
// word of prose ("token signature is invalid"): at least 8 bytes with a
// digit or a symbol, or at least 24 bytes.
func looksLikeCredential(w string) bool {
	if len(w) >= 24 {
		return true
	}
	return len(w) >= 8 && strings.IndexFunc(w, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0
}

func isB64URL(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

// jwtSpans finds "eyJ" followed by at least 8 base64url bytes and up to two
// more dot-separated segments.
func jwtSpans(s string, sp []span) []span {
	for from := 0; ; {
		n := strings.Index(s[from:], "eyJ")
		if n < 0 {
			return sp
		}
		pos := from + n
		j := pos + 3
		for j < len(s) && isB64URL(s[j]) {
			j++
		}
		from = j
		if j-pos-3 < 8 {
			continue
		}
		for seg := 0; seg < 2 && j < len(s) && s[j] == '.'; seg++ {
			j++
			for j < len(s) && isB64URL(s[j]) {
				j++
			}
		}
		sp = append(sp, span{pos, j})
		from = j
	}
}

// urlCredentialSpans finds the password of scheme://user:password@host.
func urlCredentialSpans(s string, sp []span) []span {
	for from := 0; ; {
		n := strings.Index(s[from:], "://")
		if n < 0 {
			return sp
		}
		j := from + n + 3
		from = j
		colon := -1
		for k := j; k < len(s); k++ {
			c := s[k]
			if c == '/' || c == '?' || c == '#' || isSpace(c) {
				break
			}
			if c == ':' && colon < 0 {
				colon = k
			}
			if c == '@' {
				if colon >= 0 && k > colon+1 {
					sp = append(sp, span{colon + 1, k})
				}
				from = k
				break
			}
		}
	}
}

var awsKeyPrefixes = []string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA"}

// awsKeySpans finds AWS access key ids: a known prefix and 16 of [A-Z0-9].
func awsKeySpans(s string, sp []span) []span {
	for i := 0; i+20 <= len(s); i++ {
		n := strings.IndexByte(s[i:], 'A')
		if n < 0 {
			break
		}
		i += n
		if i+20 > len(s) || !slices.Contains(awsKeyPrefixes, s[i:i+4]) {
			continue
		}
		ok := true
		for _, c := range []byte(s[i+4 : i+20]) {
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				ok = false
				break
			}
		}
		if ok {
			sp = append(sp, span{i, i + 20})
			i += 19
		}
	}
	return sp
}

// tokenPrefix is a vendor token: a prefix, then at least min bytes of a set.
type tokenPrefix struct {
	prefix string
	extra  string // allowed besides [A-Za-z0-9]
	min    int
}

var tokenPrefixes = []tokenPrefix{
	{"ghp_", "", 30}, {"gho_", "", 30}, {"ghu_", "", 30}, {"ghs_", "", 30}, {"ghr_", "", 30},
	{"github_pat_", "_", 30}, {"glpat-", "_-", 20},
	{"xoxa-", "-", 10}, {"xoxb-", "-", 10}, {"xoxp-", "-", 10}, {"xoxr-", "-", 10}, {"xoxs-", "-", 10},
	{"sk-", "_-", 20}, {"AIza", "_-", 30}, {"npm_", "", 30}, {"hf_", "", 30},
}

// tokenStarts indexes tokenPrefixes by first byte, for a single pass.
var tokenStarts = func() (m [256][]tokenPrefix) {
	for _, tp := range tokenPrefixes {
		m[tp.prefix[0]] = append(m[tp.prefix[0]], tp)
	}
	return m
}()

// tokenPrefixSpans finds vendor tokens that start at a word boundary, in
// one pass over s.
func tokenPrefixSpans(s string, sp []span) []span {
	for i := 0; i < len(s); i++ {
		cands := tokenStarts[s[i]]
		if cands == nil || i > 0 && isAlnum(s[i-1]) {
			continue
		}
		for _, tp := range cands {
			if !strings.HasPrefix(s[i:], tp.prefix) {
				continue
			}
			j := i + len(tp.prefix)
			for j < len(s) && (isAlnum(s[j]) || strings.IndexByte(tp.extra, s[j]) >= 0) {
				j++
			}
			if j-i-len(tp.prefix) >= tp.min {
				sp = append(sp, span{i, j})
				i = j - 1
				break
			}
		}
	}
	return sp
}

// pemSpans finds PEM blocks whose label names a private key, through their
// END line or, when cut off, the end of s.
func pemSpans(s string, sp []span) []span {
	const begin = "-----BEGIN "
	for from := 0; ; {
		n := strings.Index(s[from:], begin)
		if n < 0 {
			return sp
		}
		pos := from + n
		from = pos + len(begin)
		he := strings.Index(s[from:], "-----")
		if he < 0 || he > 64 || !strings.Contains(s[from:from+he], "PRIVATE KEY") {
			continue
		}
		end := len(s)
		if e := strings.Index(s[from:], "-----END "); e >= 0 {
			endLabel := from + e + len("-----END ")
			if t := strings.Index(s[endLabel:], "-----"); t >= 0 {
				end = endLabel + t + len("-----")
			}
		}
		sp = append(sp, span{pos, end})
		from = end
	}
}

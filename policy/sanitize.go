package policy

import (
	"strings"
	"unicode/utf8"
)

// shellMeta are characters no argument other than free text may carry.
// They are harmless as argv (there is no shell) but have no business in an
// int, enum, regex-typed value or path, and rejecting them stops payloads
// aimed at programs that re-parse their arguments.
const shellMeta = ";&|`$<>(){}[]*?!~'\"\\ \t\n\r"

// checkChars returns "" when s is valid UTF-8 without control characters,
// else the reason. allowNLTab lets "\n" and "\t" through (multi-line text).
// Rejected: NUL and every C0 control, DEL, C1 controls (U+0080..U+009F,
// which include the 8-bit CSI), hence every ESC sequence, Unicode line and
// paragraph separators and bidirectional override/isolate controls.
func checkChars(s string, allowNLTab bool) ReasonCode {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if (b < 0x20 || b == 0x7f) && !(allowNLTab && (b == '\n' || b == '\t')) {
				return ReasonControlCharacter
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return ReasonInvalidUTF8
		}
		if isControlRune(r) {
			return ReasonControlCharacter
		}
		i += size
	}
	return ""
}

func isControlRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1
		return true
	case r == 0x2028 || r == 0x2029: // line/paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e || r == 0x200f: // bidi
		return true
	case r == 0xfeff: // BOM / zero-width no-break space
		return true
	}
	return false
}

// sanitizeArgs is the global sanitization every argument goes through
// before any rule: characters (\n and \t are let through here and refused
// later for anything but multi-line text), then the bounds.
func sanitizeArgs(args []string, lim Limits) (ReasonCode, int) {
	if len(args) > lim.MaxArgs {
		return ReasonTooManyArguments, lim.MaxArgs
	}
	total := 0
	for i, a := range args {
		if len(a) > lim.MaxArgBytes {
			return ReasonArgumentTooLong, i
		}
		total += len(a)
		if total > lim.MaxTotalBytes {
			return ReasonRequestTooLarge, i
		}
		if r := checkChars(a, true); r != "" {
			return r, i
		}
	}
	return "", -1
}

// hasShellMeta reports whether s has a shell metacharacter or whitespace.
func hasShellMeta(s string) bool { return strings.ContainsAny(s, shellMeta) }

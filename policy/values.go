package policy

import (
	"sort"
	"strconv"
	"strings"
)

// checkValue checks a flag value or positional against its type, after
// global sanitization. Only multi-line text may carry "\n" or "\t"; only
// text may carry shell metacharacters.
func (d *decider) checkValue(v *Value, s string) (ReasonCode, string) {
	reason := ReasonBadFlagValue
	return d.checkTyped(v, s, reason)
}

// checkPositional is checkValue with positional reason codes.
func (d *decider) checkPositional(v *Value, s string) (ReasonCode, string) {
	return d.checkTyped(v, s, ReasonBadArgument)
}

func (d *decider) checkTyped(v *Value, s string, bad ReasonCode) (ReasonCode, string) {
	if v.Type == TypeText {
		if r := checkChars(s, v.Multiline); r != "" {
			return r, "text value"
		}
		if len(s) > v.MaxLen {
			return ReasonArgumentTooLong, "text longer than its bound"
		}
		return "", ""
	}
	if r := checkChars(s, false); r != "" {
		return r, "value"
	}
	if hasShellMeta(s) {
		return ReasonShellSyntax, "shell metacharacter in a non-text value"
	}
	switch v.Type {
	case TypeInt:
		return checkInt(v, s, bad)
	case TypeEnum:
		i := sort.SearchStrings(v.Values, s)
		if i == len(v.Values) || v.Values[i] != s {
			return bad, "value not in enum"
		}
	case TypeRegex:
		if !v.re.MatchString(s) {
			return bad, "value does not match pattern"
		}
	case TypePath:
		return d.checkPath(s, v.Roots, v.MustExist, false)
	default:
		return bad, "unexpected value"
	}
	return "", ""
}

func checkInt(v *Value, s string, bad ReasonCode) (ReasonCode, string) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 19 || strings.TrimLeft(digits, "0123456789") != "" {
		return bad, "not a decimal integer"
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return bad, "integer out of range"
	}
	if v.Min != nil && n < *v.Min || v.Max != nil && n > *v.Max {
		return bad, "integer outside its bounds"
	}
	return "", ""
}

// canonicalValue returns the spelling passed on for a validated value:
// integers in plain decimal (no leading zeros a program could read as
// octal), everything else unchanged.
func canonicalValue(v *Value, s string) string {
	if v.Type != TypeInt {
		return s
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	return strconv.FormatInt(n, 10)
}

package gateway

import (
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/execgate/execgate/policy"
)

// appendEvent appends ev as one JSON line (with the '\n'), byte for byte
// what encoding/json's Encoder with SetEscapeHTML(false) writes for Event:
// the same keys in the same order, the same omitempty rules, the same
// string escaping (TestAuditEncodeMatchesJSON, FuzzAuditEncode). It exists
// because reflection made encoding the hot path's audit line cost more
// than the rest of the line's work; ev must already be redacted.
func appendEvent(b []byte, ev *Event) []byte {
	b = append(b, `{"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = appendJSONString(b, string(ev.Type))
	b = appendStrField(b, "request_id", ev.RequestID)
	b = appendStrField(b, "decision_id", ev.DecisionID)
	b = appendStrField(b, "session_id", ev.SessionID)
	b = appendStrField(b, "subject", ev.Subject)
	b = appendListField(b, "roles", ev.Roles)
	b = appendStrField(b, "remote_ip", ev.RemoteIP)
	b = appendStrField(b, "user_agent", ev.UserAgent)
	b = appendStrField(b, "method", ev.Method)
	b = appendStrField(b, "route", ev.Route)
	b = appendIntField(b, "status", int64(ev.Status))
	b = appendStrField(b, "policy_hash", ev.PolicyHash)
	b = appendStrField(b, "auth_method", ev.AuthMethod)
	b = appendStrField(b, "kid", ev.KeyID)
	b = appendStrField(b, "command", ev.Command)
	b = appendListField(b, "args", ev.Args)
	b = appendStrField(b, "cmdline", ev.Cmdline)
	b = appendListField(b, "argv", ev.Argv)
	b = appendListField(b, "env_keys", ev.EnvKeys)
	if len(ev.Env) > 0 {
		b = append(b, `,"env":{`...)
		for i, k := range slices.Sorted(maps.Keys(ev.Env)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, ev.Env[k])
		}
		b = append(b, '}')
	}
	b = appendStrField(b, "cwd", ev.Cwd)
	b = appendBoolField(b, "tty", ev.TTY)
	if ev.Allowed != nil {
		b = append(b, `,"allowed":`...)
		b = strconv.AppendBool(b, *ev.Allowed)
	}
	b = appendStrField(b, "reason", ev.Reason)
	b = appendStrField(b, "message", ev.Message)
	if ev.Rule != nil {
		b = append(b, `,"rule":`...)
		b = appendRuleRef(b, ev.Rule)
	}
	if len(ev.Trace) > 0 {
		b = append(b, `,"trace":[`...)
		for i := range ev.Trace {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"rule":`...)
			b = appendRuleRef(b, &ev.Trace[i].Rule)
			b = append(b, `,"outcome":`...)
			b = appendJSONString(b, ev.Trace[i].Outcome)
			b = append(b, `,"detail":`...)
			b = appendJSONString(b, ev.Trace[i].Detail)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendBoolField(b, "dry_run", ev.DryRun)
	if ev.ExitCode != nil {
		b = append(b, `,"exit_code":`...)
		b = strconv.AppendInt(b, int64(*ev.ExitCode), 10)
	}
	b = appendStrField(b, "signal", ev.Signal)
	b = appendIntField(b, "duration_ms", ev.DurationMS)
	b = appendIntField(b, "start_latency_ms", ev.StartLatencyMS)
	b = appendIntField(b, "stdout_bytes", ev.StdoutBytes)
	b = appendIntField(b, "stderr_bytes", ev.StderrBytes)
	b = appendBoolField(b, "stdout_truncated", ev.StdoutTruncated)
	b = appendBoolField(b, "stderr_truncated", ev.StderrTruncated)
	b = appendStrField(b, "ended_by", ev.EndedBy)
	b = appendStrField(b, "result", ev.Result)
	b = appendStrField(b, "action", ev.Action)
	b = appendStrField(b, "target", ev.Target)
	b = appendIntField(b, "retry_after_s", ev.RetryAfterS)
	b = appendListField(b, "policy_errors", ev.PolicyErrors)
	b = appendIntField(b, "suppressed", ev.Suppressed)
	b = appendStrField(b, "error", ev.Error)
	return append(b, "}\n"...)
}

func appendRuleRef(b []byte, r *policy.RuleRef) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = appendStrField(b, "file", r.File)
	b = appendIntField(b, "line", int64(r.Line))
	b = appendIntField(b, "col", int64(r.Col))
	return append(b, '}')
}

// appendStrField appends ,"key":"v" unless v is empty (omitempty).
func appendStrField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

func appendIntField(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

func appendBoolField(b []byte, key string, v bool) []byte {
	if !v {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	return append(b, `":true`...)
}

func appendListField(b []byte, key string, vs []string) []byte {
	return appendList(b, key, vs, appendJSONString)
}

// appendList appends ,"key":[...] with each string quoted by quote,
// unless vs is empty (omitempty).
func appendList(b []byte, key string, vs []string, quote func([]byte, string) []byte) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':', '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = quote(b, v)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does without HTML
// escaping: ", \ and control characters escaped (\b \f \n \r \t short, the
// others \u00XX), invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped (a
// JavaScript reader would end the line there), everything else as is.
func appendJSONString(b []byte, s string) []byte { return appendQuoted(b, s, false) }

// appendJSONStringHTML is appendJSONString with encoding/json's default HTML
// escaping as well: <, > and & as \u003c, \u003e and \u0026, so that no
// answer carries markup as is, whatever a command printed.
func appendJSONStringHTML(b []byte, s string) []byte { return appendQuoted(b, s, true) }

func appendQuoted(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// jsonLine is what encoding/json writes for ev (the reference appendEvent
// must match byte for byte).
func jsonLine(t testing.TB, ev Event) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAuditEncodeMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 17, 0, 0, 123456000, time.UTC)
	hostile := "q\"b\\s/<>&\x00\x01\x1f\x7f\b\f\n\r\t\u2028\u2029\xff\xfeé€😀\U0010FFFF"
	full := Event{
		Time: at, Type: EventExecEnd, RequestID: "r", DecisionID: "d", SessionID: "s", Subject: "alice",
		Roles: []string{"a", hostile}, RemoteIP: "192.0.2.7", UserAgent: hostile, Method: "POST", Route: "/v1/exec",
		Status: 503, PolicyHash: "sha256:x", AuthMethod: "jwt", KeyID: "k1", Command: "git",
		Args: []string{"", hostile}, Cmdline: hostile, Argv: []string{"/usr/bin/git"}, EnvKeys: []string{"A", "B"},
		Env: map[string]string{"Z": "1", "A": hostile, "": "", "é": "x"}, Cwd: "/work", TTY: true,
		Allowed: AuditBool(false), Reason: "flag_not_allowed", Message: hostile,
		Rule:   &policy.RuleRef{ID: "commands.git", File: "default.yaml", Line: 12, Col: 5},
		Trace:  []policy.TraceStep{{Rule: policy.RuleRef{ID: "x"}, Outcome: "match", Detail: hostile}, {}},
		DryRun: true, ExitCode: AuditInt(-1), Signal: "SIGKILL", DurationMS: -3, StartLatencyMS: 4,
		StdoutBytes: 1 << 40, StderrBytes: 6, StdoutTruncated: true, StderrTruncated: true, EndedBy: "timeout",
		Result: "failure", Action: "drain", Target: "t", RetryAfterS: 900, PolicyErrors: []string{hostile}, Suppressed: 7, Error: hostile,
	}
	// A field added to Event must be added to appendEvent and to full.
	rv := reflect.ValueOf(full)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Errorf("Event.%s is not set in the every-field case: add it there and to appendEvent", rv.Type().Field(i).Name)
		}
	}
	cases := []struct {
		name string
		ev   Event
	}{
		{"minimal", Event{Time: at, Type: EventServerStart}},
		{"every field", full},
		{"zero pointers set", Event{Time: at, Type: EventDecision, Allowed: AuditBool(true), ExitCode: AuditInt(0), Rule: &policy.RuleRef{}}},
		{"empty non-nil lists and map", Event{Time: at, Type: EventDecision, Roles: []string{}, Args: []string{}, Env: map[string]string{}, Trace: []policy.TraceStep{}}},
		{"time in another zone, no fraction", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Type: "t"}},
		{"time with trailing zero digits", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC), Type: "t"}},
		{"negative status and ints", Event{Time: at, Type: "t", Status: -1, RetryAfterS: -5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := appendEvent(nil, &tc.ev)
			if want := jsonLine(t, tc.ev); !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if !json.Valid(bytes.TrimSuffix(got, []byte("\n"))) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

// FuzzAuditEncode: whatever the strings, appendEvent writes exactly what
// encoding/json writes: one valid line, no raw newline or control byte.
func FuzzAuditEncode(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f\x7f", "\u2028", "\xff", "\xed\xa0\x80", "é€😀", "<script>&"} {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		ev := Event{Time: time.Unix(n%(1<<34), n%1e9).UTC(), Type: EventType(a), Subject: b, Args: []string{a, b},
			Env: map[string]string{a: b, b: a}, Message: a + b, Rule: &policy.RuleRef{ID: b, Line: int(n)},
			Trace: []policy.TraceStep{{Detail: a}}, StdoutBytes: n, ExitCode: AuditInt(int(n))}
		got := appendEvent(nil, &ev)
		if want := jsonLine(t, ev); !bytes.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
		if i := bytes.IndexAny(got[:len(got)-1], "\n\r"); i >= 0 {
			t.Fatalf("raw line break at %d: %q", i, got)
		}
	})
}

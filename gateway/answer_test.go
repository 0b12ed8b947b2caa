package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// hostileStrings are what a command, a policy or a client may put in an
// answer: markup, quotes, control bytes, invalid UTF-8, line separators.
var hostileStrings = []string{"", "plain", `"\`, "\x00\x01\x1f\x7f", "a\nb\rc\td\be\ff", "<script>alert(1)</script>&amp;",
	"\u2028\u2029", "\xff\xfe", "\xed\xa0\x80", "é€😀", "\ufffd"}

// TestAnswerEncodeMatchesJSON: the hand-written encoders write exactly what
// encoding/json's Marshal (what gin's c.JSON used) writes.
func TestAnswerEncodeMatchesJSON(t *testing.T) {
	type tc struct {
		name string
		v    interface{ appendJSON([]byte) ([]byte, error) }
	}
	var cases []tc
	for _, s := range hostileStrings {
		cases = append(cases,
			tc{"check denied " + s, &checkResponse{RequestID: s, Reason: s, Message: s, PolicyHash: s}},
			tc{"check allowed " + s, &checkResponse{RequestID: "r", Allowed: true, Reason: "allowed", Command: s, Argv: []string{s, s},
				EnvKeys: []string{s}, Cwd: s, PolicyHash: "h", Limits: &limitsView{TimeoutMS: 5000, MaxOutputBytes: 1 << 20,
					MemoryBytes: 256 << 20, Pids: 64, CPUQuota: 0.5, Network: s, Profile: s}}},
			tc{"exec " + s, &execResponse{RequestID: s, ExitCode: -1, Signal: s, Stdout: s, Stderr: s, StdoutEncoding: s,
				StderrEncoding: s, StdoutTruncated: true, DurationMS: 12, EndedBy: s}},
			tc{"error " + s, &errorBody{Error: errorDetail{Code: s, Message: s, RequestID: s, Reason: s, Field: s}}},
		)
	}
	for _, f := range []float64{0, 1, 0.25, 1.5, 100, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e300, -2, math.SmallestNonzeroFloat64, math.MaxFloat64} {
		cases = append(cases, tc{"cpu_quota", &checkResponse{Allowed: true, Limits: &limitsView{CPUQuota: f}}})
	}
	cases = append(cases,
		tc{"check zero", &checkResponse{}},
		tc{"check empty lists", &checkResponse{Argv: []string{}, EnvKeys: []string{}}},
		tc{"exec zero", &execResponse{}},
		tc{"error zero", &errorBody{}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.v.appendJSON(nil)
			if err != nil {
				t.Fatalf("appendJSON: %v", err)
			}
			want, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// TestAnswerNonFinite: a float JSON cannot carry is an error, as in
// encoding/json, never a malformed answer.
func TestAnswerNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := &checkResponse{Limits: &limitsView{CPUQuota: f}}
		if _, err := r.appendJSON(nil); !errors.Is(err, errNotFinite) {
			t.Errorf("cpu_quota %v: got error %v, want errNotFinite", f, err)
		}
	}
}

// FuzzAnswerEncode: whatever the strings and numbers, the answers are
// exactly encoding/json's bytes.
func FuzzAnswerEncode(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s, int64(len(s)), 0.5)
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64, q float64) {
		if math.IsNaN(q) || math.IsInf(q, 0) {
			q = 0 // TestAnswerNonFinite covers them
		}
		for _, v := range []interface{ appendJSON([]byte) ([]byte, error) }{
			&checkResponse{RequestID: a, Allowed: n%2 == 0, Reason: b, Message: a, Command: b, Argv: []string{a, b}, EnvKeys: []string{b},
				Cwd: a, PolicyHash: b, Limits: &limitsView{TimeoutMS: n, MaxOutputBytes: -n, MemoryBytes: n, Pids: n, CPUQuota: q, Network: a, Profile: b}},
			&execResponse{RequestID: a, ExitCode: int(n), Signal: b, Stdout: a, Stderr: b, StdoutEncoding: a, StderrEncoding: b, DurationMS: n, EndedBy: a},
			&errorBody{Error: errorDetail{Code: a, Message: b, RequestID: a, Reason: b, Field: a}},
		} {
			got, err := v.appendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		}
	})
}

package sandbox

import (
	"context"
	"strings"
	"testing"
)

// TestRunFinishedBeforeTeardown: Spec.Finished gets the final result (exit
// status, all output, ended_by) while the container still exists, exactly
// once; Run returns the same result only after the teardown.
func TestRunFinishedBeforeTeardown(t *testing.T) {
	m := newTestManager(t)
	tests := []struct {
		name    string
		argv    []string
		code    int
		signal  string
		out     string
		endedBy EndedBy
	}{
		{"echo", []string{"/bin/echo", "final"}, 0, "", "final\n", EndedExit},
		{"exit 3", []string{"/bin/sh", "-c", "echo out; exit 3"}, 3, "", "out\n", EndedExit},
		{"killed by a signal", []string{"/bin/sh", "-c", "kill -9 $$"}, -1, "SIGKILL", "", EndedExit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			var calls int
			var got Result
			var outAtFinish string
			var leftAtFinish []string
			spec := Spec{ID: "fin", Argv: tt.argv, Profile: testProfile(), Stdout: &out,
				Finished: func(res Result) {
					calls++
					got, outAtFinish, leftAtFinish = res, out.String(), runLeftovers(m)
				}}
			res, err := m.Run(context.Background(), spec)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if calls != 1 {
				t.Fatalf("Finished called %d times, want 1", calls)
			}
			if got != res {
				t.Errorf("Finished got %+v, Run returned %+v: want the same result", got, res)
			}
			if res.ExitCode != tt.code || res.Signal != tt.signal || res.EndedBy != tt.endedBy || outAtFinish != tt.out {
				t.Errorf("at Finished: got exit %d signal %q ended by %q output %q, want %d %q %q %q",
					res.ExitCode, res.Signal, res.EndedBy, outAtFinish, tt.code, tt.signal, tt.endedBy, tt.out)
			}
			if len(leftAtFinish) == 0 {
				t.Error("at Finished the container was already torn down, want it still there (teardown comes after)")
			}
			if left := runLeftovers(m); len(left) > 0 {
				t.Errorf("after Run: got leftovers %v, want none", left)
			}
		})
	}
}

// TestRunFinishedNotCalledOnStartFailure: a run that never started has no
// result, so Finished is not called.
func TestRunFinishedNotCalledOnStartFailure(t *testing.T) {
	m := newTestManager(t)
	called := false
	_, err := m.Run(context.Background(), Spec{Argv: []string{"/usr/bin/does-not-exist"}, Profile: testProfile(),
		Finished: func(Result) { called = true }})
	if err == nil || called {
		t.Errorf("got err %v, Finished called %v; want a start error and no Finished", err, called)
	}
}

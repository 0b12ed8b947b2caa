package sandbox

import (
	"bytes"
	"context"
	"testing"
)

// TestRunFinished: Spec.Finished gets the final Result once the command
// has ended and its output is complete, while the container still exists;
// Run returns the same Result after the teardown.
func TestRunFinished(t *testing.T) {
	m := newTestManager(t)
	var out, errb bytes.Buffer
	calls := 0
	var got Result
	var outAt, errAt string
	var leftAt []string
	spec := Spec{ID: "fin", Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, Profile: testProfile(),
		Stdout: &out, Stderr: &errb,
		Finished: func(r Result) {
			calls++
			got, outAt, errAt, leftAt = r, out.String(), errb.String(), runLeftovers(m)
		}}
	res, err := m.Run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("Finished calls: got %d, want 1", calls)
	}
	if got != res || res.ExitCode != 3 || res.EndedBy != EndedExit {
		t.Errorf("Finished result %+v, Run result %+v; want the same, exit 3 ended by exit", got, res)
	}
	if outAt != "out\n" || errAt != "err\n" {
		t.Errorf("output at Finished: got %q / %q, want %q / %q (complete)", outAt, errAt, "out\n", "err\n")
	}
	if len(leftAt) == 0 {
		t.Error("at Finished: no container state or cgroup, want the container not yet torn down")
	}
	if left := runLeftovers(m); len(left) > 0 {
		t.Errorf("after Run: leftovers %v", left)
	}
}

// TestRunFinishedNotOnStartFailure: a run that cannot start never reports
// Finished.
func TestRunFinishedNotOnStartFailure(t *testing.T) {
	m := newTestManager(t)
	called := false
	_, err := m.Run(context.Background(), Spec{ID: "fin-bad", Argv: []string{"/no/such/binary"}, Profile: testProfile(),
		Finished: func(Result) { called = true }})
	if err == nil || called {
		t.Errorf("missing binary: got err %v, Finished called %v; want a start error and no Finished", err, called)
	}
}

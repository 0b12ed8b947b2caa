package sandbox

import (
	"testing"
)

func TestRunEchoAndExitCodes(t *testing.T) {
	m := newTestManager(t)
	tests := []struct {
		name     string
		argv     []string
		wantCode int
		wantOut  string
	}{
		{"echo", []string{"/bin/echo", "hello", "world"}, 0, "hello world\n"},
		{"true", []string{"/bin/true"}, 0, ""},
		{"false", []string{"/bin/false"}, 1, ""},
		{"exit 42", []string{"/bin/sh", "-c", "exit 42"}, 42, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runSpec(t, m, Spec{ID: "echo", Argv: tt.argv})
			if got.ExitCode != tt.wantCode || got.Stdout != tt.wantOut || got.EndedBy != EndedExit {
				t.Errorf("got exit %d, stdout %q, ended %q (stderr %q); want exit %d, stdout %q, ended exit",
					got.ExitCode, got.Stdout, got.EndedBy, got.Stderr, tt.wantCode, tt.wantOut)
			}
		})
	}
}

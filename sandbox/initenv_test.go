package sandbox

import (
	"os"
	"slices"
	"testing"
)

// TestInitGOMAXPROCS: once a Manager exists, libcontainer's container inits
// get GOMAXPROCS=1 (libcontainer copies it from this process's
// environment), while Environ keeps the environment the process started
// with for its other children.
func TestInitGOMAXPROCS(t *testing.T) {
	newTestManager(t)
	if got := os.Getenv("GOMAXPROCS"); got != initGOMAXPROCS {
		t.Errorf("GOMAXPROCS after New = %q, want %q", got, initGOMAXPROCS)
	}
	env := Environ()
	if !slices.Equal(env, startEnv) {
		t.Errorf("Environ() = %d entries, want the %d the process started with", len(env), len(startEnv))
	}
	env[0] = "changed" // a copy: the caller may change it
	if Environ()[0] == "changed" {
		t.Error("Environ returns the package's own slice")
	}
}

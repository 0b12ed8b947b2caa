package main

import (
	"os"
	"testing"
)

// needRoot skips a test that needs root (a real sandbox, or custom seccomp
// files, which policy.ReadSeccompFile accepts only when root owns them and
// their directory) for another user, and fails it under CI.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the test needs root (euid %d) and CI is set", os.Geteuid())
	}
	t.Skipf("the test needs root (euid %d; with CI set it fails instead)", os.Geteuid())
}

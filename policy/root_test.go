package policy

import (
	"os"
	"testing"
)

// needRoot skips a test that needs root (a secrets file or a custom
// seccomp file is accepted only when root owns it) for another user, and
// fails it under CI.
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

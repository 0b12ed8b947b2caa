package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestStateRootThroughSymlink: a state root reached through a symbolic
// link (as /var/run is a link to /run on many hosts) is still swept and
// cleaned: the mount table names the resolved path, so a Manager that
// compared it with the configured one would leave its skeleton mounted at
// Close and fail at the next start.
func TestStateRootThroughSymlink(t *testing.T) {
	needSandbox(t)
	cfg := testConfig(t)
	base := filepath.Dir(cfg.StateRoot)
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	cfg.StateRoot = filepath.Join(base, "link", "state")
	resolved := cfg
	resolved.StateRoot = filepath.Join(real, "state")
	for round := range 2 {
		m, err := New(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatalf("round %d: New: %v", round, err)
		}
		t.Cleanup(func() { _ = m.Close() }) // on a failure below; Close is idempotent
		if got := m.Config().StateRoot; got != resolved.StateRoot {
			t.Errorf("round %d: state root %s, want it resolved: %s", round, got, resolved.StateRoot)
		}
		out := runSpec(t, m, Spec{Argv: []string{"/bin/true"}, Profile: testProfile()})
		if out.ExitCode != 0 {
			t.Errorf("round %d: run: exit %d, stderr %q", round, out.ExitCode, out.Stderr)
		}
		if err := m.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		if left := leftoversOf(resolved); len(left) > 0 {
			t.Fatalf("round %d: after Close: %v", round, left)
		}
	}
	removeCgroupParents(cfg.CgroupParent)
}

func TestResolvePath(t *testing.T) {
	base := t.TempDir()
	base, err := filepath.EvalSymlinks(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(base, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "abs")); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, in, want string }{
		{"no link", base + "/real/state", base + "/real/state"},
		{"relative link, missing tail", base + "/rel/a/b", base + "/real/a/b"},
		{"absolute link itself", base + "/abs", base + "/real"},
		{"nothing exists below the base", base + "/none/x", base + "/none/x"},
		{"root", "/", "/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolvePath(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("resolvePath(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

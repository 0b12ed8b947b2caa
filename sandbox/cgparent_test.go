package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestCloseRemovesOnlyOwnCgroupParent: Close removes only the directories
// of the cgroup parent that New created, deepest first, in every
// hierarchy; directories that existed before (an operator's, systemd's,
// the service's) survive it, even when empty.
func TestCloseRemovesOnlyOwnCgroupParent(t *testing.T) {
	needSandbox(t)
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		name       string
		pre        []string // created by the test before New
		parent     string
		gone, kept []string // after Close
	}{
		{"none exists", nil, "a/sbx", []string{"a/sbx", "a", ""}, nil},
		{"ancestors exist", []string{"", "a"}, "a/sbx", []string{"a/sbx"}, []string{"a", ""}},
		{"parent exists", []string{"", "a", "a/sbx"}, "a/sbx", nil, []string{"a/sbx", "a", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			top := fmt.Sprintf("/execgate-cgown-%d-%d", os.Getpid(), i)
			path := func(mnt, rel string) string { return filepath.Join(mnt, top, rel) }
			t.Cleanup(func() {
				for _, mnt := range mounts {
					for _, rel := range []string{"a/sbx", "a", ""} {
						_ = os.Remove(path(mnt, rel))
					}
				}
			})
			for _, mnt := range mounts {
				for _, rel := range tt.pre {
					if err := os.Mkdir(path(mnt, rel), 0o755); err != nil {
						t.Fatalf("pre-create: %v", err)
					}
				}
			}
			cfg := testConfig(t)
			cfg.CgroupParent = top + "/" + tt.parent
			m, err := New(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			out := runSpec(t, m, Spec{Argv: []string{"/bin/true"}})
			if err := m.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if out.ExitCode != 0 {
				t.Errorf("run under %s: exit %d: %s", cfg.CgroupParent, out.ExitCode, out.Stderr)
			}
			for _, mnt := range mounts {
				for _, rel := range tt.gone {
					if _, err := os.Stat(path(mnt, rel)); !os.IsNotExist(err) {
						t.Errorf("%s: got %v, want it removed (New created it)", path(mnt, rel), err)
					}
				}
				for _, rel := range tt.kept {
					if _, err := os.Stat(path(mnt, rel)); err != nil {
						t.Errorf("%s: got %v, want it kept (it existed before New)", path(mnt, rel), err)
					}
				}
			}
		})
	}
}

package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// TestAdoptCgroupParent: from a crashed Manager's record, only existing
// directories of this very parent in a known hierarchy are taken over; a
// record of another parent, a path elsewhere or a damaged line never is.
func TestAdoptCgroupParent(t *testing.T) {
	mnt := t.TempDir() // stands for a cgroup hierarchy: adoption reads paths only
	other := t.TempDir()
	parent := "/eg/inst"
	for _, d := range []string{"eg", "eg/inst", "eg/elsewhere"} {
		if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	eg, inst := filepath.Join(mnt, "eg"), filepath.Join(mnt, "eg/inst")
	cases := []struct {
		name, record string
		want         []string
	}{
		{"both created", parent + "\n" + eg + "\n" + inst + "\n", []string{eg, inst}},
		{"only the leaf created", parent + "\n" + inst + "\n", []string{inst}},
		{"another parent's record", "/eg/other\n" + eg + "\n", nil},
		{"old record: the parent alone", parent + "\n", nil},
		{"empty", "", nil},
		{"a path outside the parent", parent + "\n" + filepath.Join(mnt, "eg/elsewhere") + "\n" + other + "\n/\n", nil},
		{"gone since", parent + "\n" + filepath.Join(mnt, "eg/inst/x") + "\n", nil},
		{"twice", parent + "\n" + inst + "\n" + inst + "\n", []string{inst}},
		{"unclean spelling", parent + "\n" + mnt + "/eg/../eg/inst\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := adoptCgroupParent([]byte(tc.record), []string{mnt}, parent)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

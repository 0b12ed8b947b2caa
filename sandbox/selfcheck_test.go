package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckCgroupsNamesMissingPiece: on a host whose cgroup mounts lack a
// controller or a counter file, the self-check fails on a check named for
// that piece, with the path it looked at.
func TestCheckCgroupsNamesMissingPiece(t *testing.T) {
	full := func(root string) {
		for _, ctl := range requiredControllers {
			mkfile(t, filepath.Join(root, ctl, "cgroup.procs"))
		}
		mkfile(t, filepath.Join(root, "memory", "memory.oom_control"))
		mkfile(t, filepath.Join(root, "memory", "memory.memsw.limit_in_bytes"))
	}
	tests := []struct {
		name   string
		remove string // relative to the fake cgroup root
		want   string // the failing check
	}{
		{"nothing missing", "", ""},
		{"no pids controller", "pids/cgroup.procs", "cgroup v1 controller pids"},
		{"no freezer controller", "freezer/cgroup.procs", "cgroup v1 controller freezer"},
		{"no OOM counter", "memory/memory.oom_control", "cgroup v1 memory.oom_control"},
		{"no swap accounting", "memory/memory.memsw.limit_in_bytes", "cgroup v1 memory.memsw.limit_in_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			full(root)
			if tt.remove != "" {
				if err := os.Remove(filepath.Join(root, tt.remove)); err != nil {
					t.Fatal(err)
				}
			}
			var failed []string
			for _, c := range checkCgroups(Config{CgroupParent: "/execgate/x", CgroupVersion: 1}, root) {
				if !c.OK {
					failed = append(failed, c.Name)
					if c.Detail == "" {
						t.Errorf("%s: failed without a detail", c.Name)
					}
				}
			}
			switch {
			case tt.want == "" && len(failed) > 0:
				t.Errorf("failed checks: got %v, want none", failed)
			case tt.want != "" && (len(failed) != 1 || failed[0] != tt.want):
				t.Errorf("failed checks: got %v, want [%s]", failed, tt.want)
			}
		})
	}
}

func mkfile(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
)

// TestCgroupV2Files renders the v2 configuration buildConfig produces into
// cgroup files with libcontainer's own cgroup v2 manager (fs2), in the
// cgroups package's test mode, which writes plain files into a temporary
// directory standing in for the run's cgroup. cgroup v2 cannot run on this
// v1 host: this is how far it is tested here. Devices (an eBPF program on
// v2) are left out; deviceRules is checked on its own.
func TestCgroupV2Files(t *testing.T) {
	tests := []struct {
		name       string
		parent, id string
		memory     int64
		pids       int64
		shares     uint64
		quota      float64
		wantPath   string
		wantFiles  map[string]string
	}{
		{
			name: "defaults", parent: "/execgate/inst", id: "eg-job-1",
			memory: 64 << 20, pids: 32, shares: 1024, quota: 0.5,
			wantPath: "/sys/fs/cgroup/execgate/inst/eg-job-1",
			wantFiles: map[string]string{
				"memory.max": "67108864", "memory.swap.max": "0", "pids.max": "33", // the profile's 32 + PID 1
				"cpu.max": "50000 100000", "cpu.weight": "100",
			},
		},
		{
			name: "delegated parent, two cpus, low shares", parent: "/system.slice/execgate.service/sandboxes", id: "eg-x-2",
			memory: 1 << 30, pids: 256, shares: 512, quota: 2,
			wantPath: "/sys/fs/cgroup/system.slice/execgate.service/sandboxes/eg-x-2",
			wantFiles: map[string]string{
				"memory.max": "1073741824", "memory.swap.max": "0", "pids.max": "257",
				"cpu.max": "200000 100000", "cpu.weight": "59", // log-quadratic map: 2->1, 1024->100, 262144->10000
			},
		},
		{
			name: "tiny quota is raised to the kernel minimum", parent: "/execgate/inst", id: "eg-t-3",
			memory: 4 << 20, pids: 1, shares: 2, quota: 0.001,
			wantPath: "/sys/fs/cgroup/execgate/inst/eg-t-3",
			wantFiles: map[string]string{
				"memory.max": "4194304", "memory.swap.max": "0", "pids.max": "2",
				"cpu.max": "1000 100000", "cpu.weight": "1",
			},
		},
	}
	saved := cgroups.TestMode
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = saved })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &Spec{Profile: testProfile()}
			p := &spec.Profile
			p.MemoryBytes, p.Pids, p.CPUShares, p.CPUQuota = tt.memory, tt.pids, tt.shares, tt.quota
			in := testConfigInput(2, spec)
			in.CgroupParent, in.ID = tt.parent, tt.id
			cg := buildConfig(in).Cgroups

			m, err := fs2.NewManager(cg, "")
			if err != nil {
				t.Fatalf("fs2.NewManager: %v", err)
			}
			if got := m.Path(""); got != tt.wantPath {
				t.Errorf("got cgroup directory %s, want %s (absolute under the parent)", got, tt.wantPath)
			}

			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err = fs2.NewManager(cg, dir)
			if err != nil {
				t.Fatalf("fs2.NewManager: %v", err)
			}
			r := *cg.Resources
			r.SkipDevices = true
			if err := m.Set(&r); err != nil {
				t.Fatalf("fs2 Set: %v", err)
			}
			for file, want := range tt.wantFiles {
				data, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Errorf("%s: %v", file, err)
					continue
				}
				if got := strings.TrimSpace(string(data)); got != want {
					t.Errorf("%s: got %q, want %q", file, got, want)
				}
			}
			for _, v1only := range []string{"cpu.shares", "memory.limit_in_bytes"} {
				if _, err := os.Stat(filepath.Join(dir, v1only)); err == nil {
					t.Errorf("v1 file %s written on v2", v1only)
				}
			}
		})
	}
}

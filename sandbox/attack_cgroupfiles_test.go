package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// TestAttackLiveCgroupLimits reads, from the host, the cgroup v1 files of a
// run while its command sleeps, and compares them with the profile: the
// generated configuration (TestBuildConfigCgroups) is only what
// libcontainer was asked to write; these are what the kernel enforces.
//
// No swap: libcontainer writes memory.memsw.limit_in_bytes = the memory
// limit (MemorySwap == Memory), so memory+swap together never exceed the
// limit; swap cannot add to it. It writes nothing to memory.swappiness
// (Resources.MemorySwappiness is nil), which stays the parent's. On a
// kernel without swap accounting (no memory.memsw.* files: booted with
// swapaccount=0 or cgroup.memory=noswap) libcontainer's write of the
// memsw limit fails, so no run starts at all (fail closed), and the
// self-check says so ("cgroup v1 memory.memsw.limit_in_bytes"). This
// machine (Linux 6.18, no swap device) has the memsw files.
func TestAttackLiveCgroupLimits(t *testing.T) {
	s := suite(t)
	if s.mgr.cfg.CgroupVersion != 1 {
		t.Skip("reads cgroup v1 files; v2 is covered by TestCgroupV2Files")
	}
	// Values unlike the defaults, so an unwritten file cannot match.
	const (
		memBytes = 96 << 20
		pids     = 23
		shares   = 300
		quota    = 0.25
	)
	token := randomName("live-cgroup-")
	type result struct {
		files map[string]string
		dir   string
	}
	found := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if dir := runCgroupWithToken(s.cfg.CgroupParent, token); dir != "" {
				files := map[string]string{}
				for _, f := range []string{"cpu/cpu.shares", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us",
					"memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes", "memory/memory.swappiness",
					"pids/pids.max", "memory/cgroup.procs"} {
					ctl, name, _ := strings.Cut(f, "/")
					data, err := os.ReadFile(filepath.Join(cgroupMountRoot, ctl, s.cfg.CgroupParent, dir, name))
					if err != nil {
						files[f] = "error: " + err.Error()
						continue
					}
					files[f] = strings.TrimSpace(string(data))
				}
				// PID 1's argv holds the command (and the token) before it
				// forks it: wait until the command is in the cgroup too.
				if len(strings.Fields(files["memory/cgroup.procs"])) < 2 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				found <- result{files: files, dir: dir}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	o := runOpts{profile: func(p *policy.Profile) {
		p.MemoryBytes, p.Pids, p.CPUShares, p.CPUQuota = memBytes, pids, shares, quota
	}}
	out := s.sh(t, o, "sleep 1.5; : "+token)
	<-done
	if out.res.ExitCode != 0 {
		t.Fatalf("sleep: %v", out)
	}
	var r result
	select {
	case r = <-found:
	default:
		t.Fatalf("no run cgroup under %s held the command with %s", s.cfg.CgroupParent, token)
	}
	t.Logf("run cgroup %s/%s: %v", s.cfg.CgroupParent, r.dir, r.files)
	want := map[string]string{
		"cpu/cpu.shares":               strconv.Itoa(shares),
		"cpu/cpu.cfs_period_us":        strconv.Itoa(cpuPeriodMicros),
		"cpu/cpu.cfs_quota_us":         strconv.Itoa(int(quota * cpuPeriodMicros)),
		"memory/memory.limit_in_bytes": strconv.Itoa(memBytes),
		"pids/pids.max":                strconv.Itoa(pids + 1), // + PID 1
	}
	if _, err := os.Stat(filepath.Join(cgroupMountRoot, "memory", "memory.memsw.limit_in_bytes")); err == nil {
		want["memory/memory.memsw.limit_in_bytes"] = strconv.Itoa(memBytes)
	} else {
		t.Errorf("this kernel has no swap accounting (%v): a run started anyway, without a no-swap limit", err)
	}
	for f, w := range want {
		if got := r.files[f]; got != w {
			t.Errorf("%s: got %q, want %q", f, got, w)
		}
	}
	// The parent's swappiness is inherited (libcontainer does not write it).
	parent, _ := os.ReadFile(filepath.Join(cgroupMountRoot, "memory", s.cfg.CgroupParent, "memory.swappiness"))
	if got := r.files["memory/memory.swappiness"]; got != strings.TrimSpace(string(parent)) {
		t.Errorf("memory.swappiness: got %q, want the parent's %q", got, strings.TrimSpace(string(parent)))
	}
	if len(strings.Fields(r.files["memory/cgroup.procs"])) < 2 {
		t.Errorf("memory cgroup.procs %q: want PID 1 and the command", r.files["memory/cgroup.procs"])
	}
}

// runCgroupWithToken returns the name of the run cgroup under parent (pids
// hierarchy) that holds a process whose command line contains token, or "".
func runCgroupWithToken(parent, token string) string {
	base := filepath.Join(cgroupMountRoot, "pids", parent)
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), containerPrefix) {
			continue
		}
		procs, _ := os.ReadFile(filepath.Join(base, e.Name(), "cgroup.procs"))
		for _, p := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(p); err == nil && strings.Contains(procCmdline(pid), token) {
				return e.Name()
			}
		}
	}
	return ""
}

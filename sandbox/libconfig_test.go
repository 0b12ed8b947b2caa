package sandbox

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

func testConfigInput(version int, spec *Spec) configInput {
	return configInput{
		ID: "job-1", CgroupParent: "/execgate/inst", CgroupVersion: version,
		Rootfs: "/run/execgate/inst/rootfs", Spec: spec,
	}
}

func TestBuildConfigCgroups(t *testing.T) {
	spec := &Spec{Profile: testProfile()}
	spec.Profile.CPUShares, spec.Profile.CPUQuota = 1024, 0.5
	for _, version := range []int{1, 2} {
		cfg := buildConfig(testConfigInput(version, spec))
		cg := cfg.Cgroups
		if cg.Path != "/execgate/inst/job-1" || cg.Parent != "" || cg.Name != "" {
			t.Errorf("v%d: got cgroup path %q parent %q name %q, want absolute /execgate/inst/job-1 only", version, cg.Path, cg.Parent, cg.Name)
		}
		if cg.Memory != 64<<20 || cg.MemorySwap != cg.Memory {
			t.Errorf("v%d: got memory %d swap %d, want %d and swap == memory", version, cg.Memory, cg.MemorySwap, 64<<20)
		}
		if cg.PidsLimit == nil || *cg.PidsLimit != 33 {
			t.Errorf("v%d: got pids %v, want 33 (the profile's 32 and PID 1)", version, cg.PidsLimit)
		}
		if cg.CpuQuota != 50000 || cg.CpuPeriod != 100000 {
			t.Errorf("v%d: got quota %d/%d, want 50000/100000", version, cg.CpuQuota, cg.CpuPeriod)
		}
		switch version {
		case 1:
			if cg.CpuShares != 1024 || cg.CpuWeight != 0 {
				t.Errorf("v1: got shares %d weight %d, want 1024 and 0", cg.CpuShares, cg.CpuWeight)
			}
		case 2:
			if cg.CpuShares != 0 || cg.CpuWeight != 100 {
				t.Errorf("v2: got shares %d weight %d, want 0 and 100 (default shares map to the default weight)", cg.CpuShares, cg.CpuWeight)
			}
		}
		if len(cg.Devices) == 0 || cg.Devices[0].Allow {
			t.Errorf("v%d: devices cgroup must start with deny-all, got %+v", version, cg.Devices)
		}
	}
}

func TestCounterFiles(t *testing.T) {
	tests := []struct {
		version        int
		wantOOM, wantP string
	}{
		{1, "/sys/fs/cgroup/memory/execgate/i/r-1/memory.oom_control", "/sys/fs/cgroup/pids/execgate/i/r-1/pids.events"},
		{2, "/sys/fs/cgroup/execgate/i/r-1/memory.events", "/sys/fs/cgroup/execgate/i/r-1/pids.events"},
	}
	for _, tt := range tests {
		oom, pids := counterFiles(tt.version, "/execgate/i/r-1")
		if oom != tt.wantOOM || pids != tt.wantP {
			t.Errorf("v%d: got %s, %s; want %s, %s", tt.version, oom, pids, tt.wantOOM, tt.wantP)
		}
	}
}

func TestParseKeyedCounter(t *testing.T) {
	tests := []struct {
		name, data, key string
		want            int64
	}{
		{"v1 oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill", 3},
		{"v2 memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n", "oom_kill", 1},
		{"pids.events", "max 7\n", "max", 7},
		{"absent", "under_oom 0\n", "oom_kill", 0},
		{"malformed", "oom_kill x\n", "oom_kill", 0},
		{"negative", "oom_kill -4\n", "oom_kill", 0},
		{"prefix only", "oom_kill_disable 9\n", "oom_kill", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseKeyedCounter([]byte(tt.data), tt.key); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBuildConfigSandbox(t *testing.T) {
	spec := &Spec{Profile: testProfile(), Mounts: []policy.Mount{
		{Source: "/srv/ws/alice", Target: "/work", Workspace: true},
		{Source: "/srv/docs", Target: "/docs", ReadOnly: true},
	}}
	spec.Profile.NoExecWork = true
	cfg := buildConfig(testConfigInput(1, spec))
	if cfg.Capabilities == nil || len(cfg.Capabilities.Bounding)+len(cfg.Capabilities.Effective)+len(cfg.Capabilities.Permitted) != 0 {
		t.Errorf("got capabilities %+v, want empty and non-nil", cfg.Capabilities)
	}
	// The root is read-only through the skeleton's host bind (ro, nosuid,
	// nodev), not through Readonlyfs, which would drop nosuid and nodev.
	if !cfg.NoNewPrivileges || cfg.Readonlyfs || cfg.Rootfs != "/run/execgate/inst/rootfs" || cfg.ParentDeathSignal != int(unix.SIGKILL) {
		t.Errorf("got nnp %v readonlyfs %v rootfs %s pdeathsig %d", cfg.NoNewPrivileges, cfg.Readonlyfs, cfg.Rootfs, cfg.ParentDeathSignal)
	}
	for _, ns := range []configs.NamespaceType{configs.NEWNS, configs.NEWPID, configs.NEWIPC, configs.NEWUTS, configs.NEWCGROUP, configs.NEWNET} {
		if !cfg.Namespaces.Contains(ns) {
			t.Errorf("namespace %s missing", ns)
		}
	}
	if cfg.Namespaces.Contains(configs.NEWUSER) || len(cfg.Networks) != 0 {
		t.Errorf("got userns %v networks %d, want none (network none: loopback down)", cfg.Namespaces.Contains(configs.NEWUSER), len(cfg.Networks))
	}
	byDest := map[string]*configs.Mount{}
	for _, m := range cfg.Mounts {
		byDest[m.Destination] = m
	}
	checks := []struct {
		dest       string
		set, clear int
	}{
		{"/tmp", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0},
		{"/work", unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, unix.MS_RDONLY},
		{"/docs", unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV, 0},
		{"/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0},
		{"/dev", unix.MS_NOSUID | unix.MS_NOEXEC, 0},
	}
	for _, c := range checks {
		m := byDest[c.dest]
		if m == nil {
			t.Errorf("mount %s missing", c.dest)
			continue
		}
		if m.Flags&c.set != c.set || m.Flags&c.clear != 0 {
			t.Errorf("mount %s: got flags %#x, want %#x set and %#x clear", c.dest, m.Flags, c.set, c.clear)
		}
	}
	if _, ok := byDest["/dev/pts"]; ok {
		t.Error("devpts mounted without a TTY")
	}
	// The static read-only binds are the skeleton's (skelmounts.go), not
	// the per-run configuration's.
	for dest := range byDest {
		if isUnder(dest, "/usr") || isUnder(dest, "/etc") || isUnder(dest, "/lib64") {
			t.Errorf("static bind %s in the per-run config", dest)
		}
	}
	spec.TTY = true
	spec.Profile.Network = policy.NetworkLoopback
	cfg = buildConfig(testConfigInput(2, spec))
	if len(cfg.Networks) != 1 || cfg.Networks[0].Type != "loopback" {
		t.Errorf("loopback profile: got networks %+v, want one loopback", cfg.Networks)
	}
	found := false
	for _, m := range cfg.Mounts {
		found = found || m.Destination == "/dev/pts" && m.Device == "devpts"
	}
	if !found {
		t.Error("TTY run without a devpts instance")
	}
}

func TestValidateProfile(t *testing.T) {
	mods := map[string]func(*policy.Profile){
		"timeout": func(p *policy.Profile) { p.Timeout = 0 },
		"memory":  func(p *policy.Profile) { p.MemoryBytes = 0 },
		"pids":    func(p *policy.Profile) { p.Pids = 0 },
		"output":  func(p *policy.Profile) { p.MaxOutputBytes = 0 },
		"network": func(p *policy.Profile) { p.Network = "host" },
		"tmpfs":   func(p *policy.Profile) { p.TmpfsBytes = 0 },
		"umask":   func(p *policy.Profile) { p.Umask = 0o1000 },
	}
	for name, mod := range mods {
		p := testProfile()
		mod(&p)
		if err := validateProfile(&p); err == nil {
			t.Errorf("%s: got nil, want an error", name)
		}
	}
	p := testProfile()
	if err := validateProfile(&p); err != nil {
		t.Errorf("complete profile: got %v, want nil", err)
	}
}

func TestEndedBy(t *testing.T) {
	tests := []struct {
		name       string
		supervisor EndedBy
		res        Result
		c          cgroupCounters
		cpu        time.Duration
		want       EndedBy
	}{
		{"clean exit", "", Result{ExitCode: 0}, cgroupCounters{}, 0, EndedExit},
		{"supervisor wins", EndedTimeout, Result{ExitCode: -1, Signal: "SIGKILL"}, cgroupCounters{OOMKills: 1}, 0, EndedTimeout},
		{"oom", "", Result{ExitCode: -1, Signal: "SIGKILL"}, cgroupCounters{OOMKills: 1}, 0, EndedMemory},
		{"oom of a child", "", Result{ExitCode: 137}, cgroupCounters{OOMKills: 2}, 0, EndedMemory},
		{"sigxcpu", "", Result{ExitCode: -1, Signal: "SIGXCPU"}, cgroupCounters{}, 2 * time.Second, EndedCPU},
		{"hard cpu limit", "", Result{ExitCode: -1, Signal: "SIGKILL"}, cgroupCounters{}, 2 * time.Second, EndedCPU},
		{"sigkill without cpu", "", Result{ExitCode: -1, Signal: "SIGKILL"}, cgroupCounters{}, 10 * time.Millisecond, EndedExit},
		{"sigxcpu, rusage trailing", "", Result{ExitCode: -1, Signal: "SIGXCPU"}, cgroupCounters{}, 1950 * time.Millisecond, EndedCPU},
		{"sigxcpu sent early", "", Result{ExitCode: -1, Signal: "SIGXCPU"}, cgroupCounters{}, 1700 * time.Millisecond, EndedExit},
		{"pids and failure", "", Result{ExitCode: 2}, cgroupCounters{PidsMax: 3}, 0, EndedPids},
		{"pids but success", "", Result{ExitCode: 0}, cgroupCounters{PidsMax: 3}, 0, EndedExit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := endedBy(tt.supervisor, &tt.res, tt.c, tt.cpu, 2); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidNames(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		s            string
		id, instance bool
	}{
		{"run-1", true, true},
		{"Run.1_x", true, false},
		{"a", true, true},
		{"", false, false},
		{"-x", false, false},
		{"_x", false, false},
		{".x", false, false},
		{"../x", false, false},
		{"a/b", false, false},
		{"a b", false, false},
		{"ä", false, false},
		{long, true, false},
		{long + "a", false, false},
		{strings.Repeat("a", 32), true, true},
		{strings.Repeat("a", 33), true, false},
	}
	for _, tt := range tests {
		if got := validID(tt.s); got != tt.id {
			t.Errorf("validID(%q): got %v, want %v", tt.s, got, tt.id)
		}
		if got := validInstance(tt.s); got != tt.instance {
			t.Errorf("validInstance(%q): got %v, want %v", tt.s, got, tt.instance)
		}
	}
}

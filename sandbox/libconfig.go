package sandbox

import (
	"fmt"
	"path"
	"strconv"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// This file turns a Spec into libcontainer's configuration. It is a pure
// function of the Manager's fixed pieces (cgroup layout, skeleton, compiled
// seccomp) and the Spec, so the v1 and v2 layouts are unit-tested here
// even though only v1 runs on this machine.

// Mount flag sets.
const (
	roBind          = unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	rwBind          = unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV
	fsFlags         = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	cpuPeriodMicros = 100000
	// sandboxHostname is the UTS name inside every sandbox.
	sandboxHostname = "sandbox"
)

// maskedPaths are hidden inside /proc (bind of /dev/null or an empty
// read-only tmpfs), as Docker does.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi", "/proc/sysrq-trigger",
}

// readonlyPaths are remounted read-only inside /proc.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"}

// sandboxDevices are the only device nodes in /dev, also the only ones the
// devices cgroup allows.
var sandboxDevices = []*devconfig.Device{
	charDevice("/dev/null", 1, 3),
	charDevice("/dev/zero", 1, 5),
	charDevice("/dev/full", 1, 7),
	charDevice("/dev/random", 1, 8),
	charDevice("/dev/urandom", 1, 9),
	charDevice("/dev/tty", 5, 0),
}

func charDevice(p string, major, minor int64) *devconfig.Device {
	return &devconfig.Device{
		Rule:     devconfig.Rule{Type: devconfig.CharDevice, Major: major, Minor: minor, Permissions: "rwm", Allow: true},
		Path:     p,
		FileMode: 0o666,
	}
}

// configInput is everything buildConfig reads.
type configInput struct {
	ID            string
	CgroupParent  string
	CgroupVersion int
	Rootfs        string
	Dev           string // the shared read-only /dev (skeldev.go)
	Spec          *Spec
}

// buildConfig returns the container configuration of one run.
func buildConfig(in configInput) *configs.Config {
	p := &in.Spec.Profile
	umask := p.Umask
	oomScore := 1000 // the host's OOM killer picks sandboxes first
	cfg := &configs.Config{
		Rootfs: in.Rootfs,
		// The root is the skeleton's read-only, nosuid, nodev host bind;
		// Readonlyfs would remount it read-only and drop nosuid, nodev.
		Readonlyfs:        false,
		RootPropagation:   unix.MS_PRIVATE | unix.MS_REC,
		Umask:             &umask,
		Hostname:          sandboxHostname,
		ParentDeathSignal: int(unix.SIGKILL),
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS}, {Type: configs.NEWPID}, {Type: configs.NEWIPC},
			{Type: configs.NEWUTS}, {Type: configs.NEWCGROUP}, {Type: configs.NEWNET},
		},
		Capabilities:    &configs.Capabilities{}, // empty, non-nil: drop all (trap 4)
		NoNewPrivileges: true,
		Mounts:          buildMounts(in),
		Devices:         buildDevices(in.Spec.TTY),
		MaskPaths:       maskedPaths,
		ReadonlyPaths:   readonlyPaths,
		Rlimits:         buildRlimits(p),
		OomScoreAdj:     &oomScore,
		// No Seccomp: the container's PID 1 (package pid1) loads the
		// profile's precompiled program (seccomp_bpf.go) for itself and
		// the command; NoNewPrivileges above is what lets it.
		Cgroups: buildCgroup(in),
		Version: "1.2.0",
	}
	if p.Network == policy.NetworkLoopback {
		cfg.Networks = []*configs.Network{{Type: "loopback"}}
	}
	return cfg
}

func buildMounts(in configInput) []*configs.Mount {
	p := &in.Spec.Profile
	workFlags := rwBind
	tmpFlags := unix.MS_NOSUID | unix.MS_NODEV
	if p.NoExecWork {
		workFlags |= unix.MS_NOEXEC
		tmpFlags |= unix.MS_NOEXEC
	}
	ms := []*configs.Mount{{Source: "proc", Destination: "/proc", Device: "proc", Flags: fsFlags}}
	// /dev holds device nodes, so it cannot be nodev; mknod is refused by
	// the missing CAP_MKNOD and the devices cgroup.
	if in.Spec.TTY {
		// A per-run /dev that libcontainer fills, with the devpts instance
		// and /dev/console.
		ms = append(ms,
			&configs.Mount{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_STRICTATIME, Data: "mode=755,size=64k,nr_inodes=64"},
			&configs.Mount{Source: "devpts", Destination: "/dev/pts", Device: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,max=8"})
	} else {
		// The shared read-only /dev; a bind at /dev also makes libcontainer
		// skip its own /dev set-up.
		ms = append(ms, bind(in.Dev, "/dev", unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC))
	}
	// /usr, the usr-merge directories and the /etc files are not here: they
	// are the skeleton's static binds (skelmounts.go) and come with the
	// root's recursive bind.
	ms = append(ms, &configs.Mount{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: tmpFlags,
		Data: "mode=1777,size=" + strconv.FormatInt(p.TmpfsBytes, 10) + ",nr_inodes=" + strconv.FormatInt(tmpfsInodes(p.TmpfsBytes), 10)})
	for _, m := range in.Spec.Mounts {
		if m.ReadOnly {
			ms = append(ms, bind(m.Source, m.Target, roBind))
		} else {
			ms = append(ms, bind(m.Source, m.Target, workFlags))
		}
	}
	return ms
}

// tmpfsInodes caps /tmp's inode count (one per 4 KiB, at least 1024).
func tmpfsInodes(size int64) int64 {
	if n := size / 4096; n > 1024 {
		return n
	}
	return 1024
}

func bind(src, dst string, flags int) *configs.Mount {
	return &configs.Mount{Source: src, Destination: dst, Device: "bind", Flags: flags}
}

func buildDevices(tty bool) []*devconfig.Device {
	return append([]*devconfig.Device(nil), sandboxDevices...)
}

// deviceRules is the devices cgroup: deny everything, allow the sandbox's
// nodes (and the pty master and slaves for a TTY).
func deviceRules(tty bool) []*devconfig.Rule {
	rules := []*devconfig.Rule{{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: false}}
	for _, d := range sandboxDevices {
		r := d.Rule
		rules = append(rules, &r)
	}
	if tty {
		rules = append(rules,
			&devconfig.Rule{Type: devconfig.CharDevice, Major: 5, Minor: 2, Permissions: "rwm", Allow: true},
			&devconfig.Rule{Type: devconfig.CharDevice, Major: 136, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: true})
	}
	return rules
}

func buildRlimits(p *policy.Profile) []configs.Rlimit {
	return []configs.Rlimit{
		// SIGXCPU at the limit (reported as "cpu"), SIGKILL a second later.
		{Type: unix.RLIMIT_CPU, Soft: p.CPUSeconds, Hard: p.CPUSeconds + 1},
		{Type: unix.RLIMIT_NOFILE, Soft: p.OpenFiles, Hard: p.OpenFiles},
		{Type: unix.RLIMIT_FSIZE, Soft: p.FileSizeBytes, Hard: p.FileSizeBytes},
		{Type: unix.RLIMIT_CORE, Soft: 0, Hard: 0},
	}
}

// cgroupPath is the run's absolute cgroup path.
func cgroupPath(parent, id string) string { return path.Join(parent, id) }

func buildCgroup(in configInput) *cgroups.Cgroup {
	p := &in.Spec.Profile
	// The profile's limit is for the command and its children; PID 1
	// (package pid1) is one more process in the cgroup.
	pids := p.Pids + 1
	r := &cgroups.Resources{
		Devices:     deviceRules(in.Spec.TTY),
		Memory:      p.MemoryBytes,
		MemorySwap:  p.MemoryBytes, // memory+swap == memory: no swap
		PidsLimit:   &pids,
		CpuPeriod:   cpuPeriodMicros,
		CpuQuota:    cpuQuotaMicros(p.CPUQuota),
		SkipDevices: false,
	}
	if in.CgroupVersion == 2 {
		r.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(p.CPUShares)
	} else {
		r.CpuShares = p.CPUShares
	}
	return &cgroups.Cgroup{Path: cgroupPath(in.CgroupParent, in.ID), Resources: r}
}

// cpuQuotaMicros converts CPUs to a CFS quota per 100 ms period (at least
// 1 ms, the kernel's minimum).
func cpuQuotaMicros(cpus float64) int64 {
	q := int64(cpus * cpuPeriodMicros)
	if q < 1000 {
		q = 1000
	}
	return q
}

// validateProfile refuses a profile with a zero limit: zero never means
// unlimited.
func validateProfile(p *policy.Profile) error {
	checks := []struct {
		name string
		ok   bool
	}{
		{"timeout", p.Timeout > 0}, {"kill_grace", p.KillGrace > 0},
		{"memory_bytes", p.MemoryBytes > 0}, {"pids", p.Pids > 0},
		{"cpu_shares", p.CPUShares >= 2}, {"cpu_quota", p.CPUQuota > 0},
		{"cpu_seconds", p.CPUSeconds > 0}, {"open_files", p.OpenFiles > 0},
		{"file_size_bytes", p.FileSizeBytes > 0}, {"tmpfs_bytes", p.TmpfsBytes > 0},
		{"max_output_bytes", p.MaxOutputBytes > 0}, {"output_rate", p.OutputRate >= 0},
		{"workspace_bytes", p.WorkspaceBytes >= 0},
		{"network", p.Network == policy.NetworkNone || p.Network == policy.NetworkLoopback},
		{"umask", p.Umask <= 0o777},
	}
	for _, c := range checks {
		if !c.ok {
			return &SpecError{Field: "profile." + c.name, Reason: fmt.Sprintf("invalid value in profile %q (zero never means unlimited)", p.Name)}
		}
	}
	return nil
}

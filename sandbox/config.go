package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/cgroups"
)

// Defaults of Config, in one place. Each says what it is and what it does
// for security.
const (
	// DefaultInstance is the instance name when none is given. Two
	// gateways on one host must use different instance names: each one
	// owns its state root and cgroup parent and sweeps only those.
	DefaultInstance = "default"
	// DefaultStateRootBase is the directory under which each instance's
	// state root is created (<base>/<instance>). It holds container state,
	// the shared read-only root skeleton and the lock file; it is 0700
	// root and never visible inside a sandbox.
	DefaultStateRootBase = "/run/execgate"
	// DefaultCgroupParentBase is the absolute cgroup under which each
	// instance's containers live (<base>/<instance>/<run id>). Absolute, so
	// it never nests under the caller's own cgroup (trap 10); on cgroup v2
	// it must lie inside the service's delegated subtree.
	DefaultCgroupParentBase = "/execgate"
	// DefaultMinFreeBytes is the free space below which runs are refused
	// with ErrDiskFull, so no user can fill the disk that the state (and
	// typically the audit log) lives on.
	DefaultMinFreeBytes = 512 << 20
	// DefaultStarters is the least number of OS-thread-locked goroutines
	// that start containers (trap 6: ParentDeathSignal belongs to the
	// thread that forked the init, so that thread must outlive the
	// container); the default is the larger of it and twice the CPUs.
	DefaultStarters = 4
	// DefaultSandboxUID and DefaultSandboxGID are the unprivileged ids a
	// profile without its own runs as (nobody/nogroup).
	DefaultSandboxUID = 65534
	DefaultSandboxGID = 65534
	// cgroupMountRoot is where the cgroup file systems are mounted.
	cgroupMountRoot = "/sys/fs/cgroup"
)

// validInstance reports whether s is 1-32 of [a-z0-9_-], starting with a
// letter or digit. (A hand-written check: a compiled regexp with a counted
// repetition costs every container start ~0.3 ms in libcontainer's init,
// which runs all package initialisers.)
func validInstance(s string) bool {
	return validName(s, 32, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	})
}

// validName checks length 1..max, a first byte that is a letter or digit,
// and every byte against ok.
func validName(s string, max int, ok func(byte) bool) bool {
	if len(s) == 0 || len(s) > max || s[0] == '_' || s[0] == '-' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// Config configures a Manager. The zero value is usable: withDefaults
// fills every unset field.
type Config struct {
	// Instance names this gateway instance (default "default"); it is part
	// of the default state root and cgroup parent.
	Instance string
	// StateRoot is the instance's private state directory (default
	// /run/execgate/<instance>). It must not lie under the directory of
	// InitPath (trap 3: the sealed re-exec of the binary fails, and
	// libcontainer silently copies the binary on every run instead).
	StateRoot string
	// CgroupParent is the absolute cgroup path under which the instance's
	// containers are created, <parent>/eg-<n> in every hierarchy (default
	// /execgate/<instance>). ValidateCgroupParent says what is accepted.
	// The Manager sweeps the eg-* directories under it at start, creates
	// its missing directories, and removes at Close (when empty) only
	// those it created (cgparent.go); a second Manager with the same
	// parent gets ErrLocked. On cgroup v2 it must lie inside the service's
	// delegated subtree (systemd: Delegate=yes; see docs/sandbox.md).
	CgroupParent string
	// InitPath is the binary libcontainer re-executes as "<binary> init".
	// libcontainer always re-executes /proc/self/exe, so this must be the
	// running binary (default: /proc/self/exe resolved); it is used by the
	// self-check of the binary's location.
	InitPath string
	// MinFreeBytes: runs are refused with ErrDiskFull when the file system
	// of the state root, of the workspace (or of the workspace image root
	// for a run with a workspace image), of a writable shared root or of
	// any ReserveDirs entry has less free space available to unprivileged
	// users (default 512 MiB). While runs are active, the disk watcher
	// (diskwatch.go) kills those writing to a file system that falls below
	// it (EndedDiskFull); it checks every diskWatchInterval, so this must
	// also cover what the runs can write in that time.
	MinFreeBytes uint64
	// ReserveDirs are more directories whose file systems must keep
	// MinFreeBytes free before a run starts: those of the audit log and
	// the gateway's state, which a user could otherwise fill through her
	// workspace when they share its file system (execgate serve passes the
	// audit log's directory and its state_dir). Each must be an absolute,
	// clean path that exists when New is called. A run on a file system
	// below the reserve is refused with ErrDiskFull (disk_full) before
	// anything of it is created. Default: none.
	ReserveDirs []string
	// CgroupVersion is 1 or 2; 0 detects it from the host. Only the
	// container configuration depends on it (v2 cannot run on a v1 host).
	CgroupVersion int
	// Starters is the number of thread-locked starter goroutines, i.e. of
	// concurrent container starts (default max(4, 2*CPUs)).
	Starters int
	// WorkspaceImageRoot holds the per-user file system images that
	// enforce Profile.WorkspaceBytes (default <StateRoot>/images; set it to
	// persistent storage in production).
	WorkspaceImageRoot string
	// DisableCgroupWarmup turns off the cgroup v1 warm-up (cgwarm.go, trap
	// 9; default: on). The warm-up changes nothing about a sandbox's
	// isolation; it is a host-wide side effect: while runs start (and for
	// a second after the latest start) one thread of the Manager re-enters
	// its own cgroup every 4 ms, which takes the kernel's global cgroup
	// threadgroup semaphore for writing (forks, exits and cgroup moves on
	// the whole host wait for those few microseconds, and forks take the
	// semaphore's slower reader path meanwhile). Without it, a run that
	// starts after an idle spell waits 5-20 ms for an RCU grace period.
	// Hosts that mount cgroup v1 with favordynmods (kernel 6.1+) do not
	// need it. No effect on cgroup v2, which has no warmer.
	DisableCgroupWarmup bool
}

// withDefaults returns cfg with every unset field filled and checks it.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Instance == "" {
		cfg.Instance = DefaultInstance
	}
	if !validInstance(cfg.Instance) {
		return cfg, fmt.Errorf("sandbox config: instance %q: want 1-32 of a-z, 0-9, _ and -, starting with a letter or digit", cfg.Instance)
	}
	if cfg.StateRoot == "" {
		cfg.StateRoot = filepath.Join(DefaultStateRootBase, cfg.Instance)
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = DefaultCgroupParentBase + "/" + cfg.Instance
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = DefaultMinFreeBytes
	}
	if cfg.Starters <= 0 {
		cfg.Starters = max(DefaultStarters, 2*runtime.NumCPU())
	}
	if cfg.CgroupVersion == 0 {
		cfg.CgroupVersion = detectCgroupVersion()
	}
	if cfg.InitPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("sandbox config: resolve own binary: %w", err)
		}
		cfg.InitPath = exe
	}
	if cfg.WorkspaceImageRoot == "" {
		cfg.WorkspaceImageRoot = filepath.Join(cfg.StateRoot, "images")
	}
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	// The mount table and libcontainer know resolved paths only
	// (statepath.go).
	for _, p := range []*string{&cfg.StateRoot, &cfg.WorkspaceImageRoot} {
		r, err := resolvePath(*p)
		if err != nil {
			return cfg, fmt.Errorf("sandbox config: %w", err)
		}
		*p = r
	}
	return cfg, cfg.check()
}

// ValidateCgroupParent checks a cgroup parent path: absolute, clean (no
// "." or ".." component, no repeated or trailing slash), not "/", at most
// 512 bytes, printable ASCII without spaces, and no component starting
// with "eg-" (the container prefix: another instance's sweep of the parent
// above would take it for a leftover container and kill what runs in it).
func ValidateCgroupParent(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("cgroup parent %q: %s", p, why)
	}
	switch {
	case p == "":
		return bad("empty")
	case !strings.HasPrefix(p, "/"):
		return bad("want an absolute path (trap 10: a relative one nests under the caller's own cgroup)")
	case p == "/":
		return bad("must not be the root cgroup")
	case len(p) > 512:
		return bad("longer than 512 bytes")
	}
	for _, c := range strings.Split(p[1:], "/") {
		switch {
		case c == "":
			return bad("want a clean path (empty component)")
		case c == "." || c == "..":
			return bad("want a clean path (no . or .. component)")
		case strings.HasPrefix(c, containerPrefix):
			return bad("a component may not start with " + containerPrefix + ", the prefix of the sandbox's own container cgroups")
		}
		for i := 0; i < len(c); i++ {
			if c[i] <= ' ' || c[i] >= 0x7f {
				return bad("want printable ASCII without spaces")
			}
		}
	}
	return nil
}

func (cfg Config) check() error {
	if err := ValidateCgroupParent(cfg.CgroupParent); err != nil {
		return fmt.Errorf("sandbox config: %w", err)
	}
	for name, p := range map[string]string{"state root": cfg.StateRoot, "init path": cfg.InitPath, "workspace image root": cfg.WorkspaceImageRoot} {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("sandbox config: %s %q: want a clean absolute path", name, p)
		}
	}
	if cfg.StateRoot == "/" {
		return fmt.Errorf("sandbox config: state root must not be /")
	}
	for _, d := range cfg.ReserveDirs {
		if !filepath.IsAbs(d) || filepath.Clean(d) != d {
			return fmt.Errorf("sandbox config: reserve dir %q: want a clean absolute path", d)
		}
	}
	if cfg.CgroupVersion != 1 && cfg.CgroupVersion != 2 {
		return fmt.Errorf("sandbox config: cgroup version %d: want 1 or 2", cfg.CgroupVersion)
	}
	return nil
}

// detectCgroupVersion says 2 on a unified-only host, else 1 (including the
// hybrid layout of this kind of machine).
func detectCgroupVersion() int {
	if cgroups.IsCgroup2UnifiedMode() {
		return 2
	}
	return 1
}

// isUnder reports whether p is dir or lies below it.
func isUnder(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// Layout of the state root.
func (cfg Config) containersDir() string { return filepath.Join(cfg.StateRoot, "containers") }
func (cfg Config) rootfsDir() string     { return filepath.Join(cfg.StateRoot, "rootfs") }
func (cfg Config) skelDir() string       { return filepath.Join(cfg.StateRoot, "skel") }
func (cfg Config) devDir() string        { return filepath.Join(cfg.StateRoot, "dev") }
func (cfg Config) lockPath() string      { return filepath.Join(cfg.StateRoot, "lock") }

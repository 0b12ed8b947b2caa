package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// Check is the outcome of one self-check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Selfcheck verifies that everything the sandbox needs is present: root,
// every namespace, seccomp (compiled in and supported by the kernel), the
// cgroup controllers, and a binary location that lets libcontainer seal the
// re-executed binary (trap 3). It returns every check and, when one failed,
// a *SelfcheckError naming the first missing piece. There is no fallback.
func Selfcheck(cfg Config) ([]Check, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	checks := []Check{checkRoot()}
	checks = append(checks, checkNamespaces()...)
	checks = append(checks, checkSeccomp()...)
	checks = append(checks, checkCgroups(cfg, cgroupMountRoot)...)
	checks = append(checks, checkBinary(cfg)...)
	checks = append(checks, checkShimBinary(), checkShimRuns())
	for _, c := range checks {
		if !c.OK {
			return checks, &SelfcheckError{Check: c.Name, Detail: c.Detail}
		}
	}
	return checks, nil
}

func checkRoot() Check {
	c := Check{Name: "root", OK: os.Geteuid() == 0}
	c.Detail = fmt.Sprintf("euid %d", os.Geteuid())
	if !c.OK {
		c.Detail += ": the sandbox needs root (namespaces, cgroups, mounts)"
	}
	return c
}

func checkNamespaces() []Check {
	var out []Check
	for _, ns := range []string{"mnt", "pid", "ipc", "uts", "cgroup", "net"} {
		c := Check{Name: "namespace " + ns, OK: true, Detail: "available"}
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			c.OK, c.Detail = false, fmt.Sprintf("kernel lacks it: %v", err)
		}
		out = append(out, c)
	}
	return out
}

func checkSeccomp() []Check {
	built := Check{Name: "seccomp support built in", OK: seccomp.Enabled, Detail: "libcontainer built with cgo and -tags seccomp"}
	if !seccomp.Enabled {
		built.Detail = "binary built without cgo or without -tags seccomp (trap 1)"
	}
	kernel := Check{Name: "seccomp in kernel", OK: true, Detail: "filter mode available"}
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		kernel.OK, kernel.Detail = false, fmt.Sprintf("prctl(PR_GET_SECCOMP): %v", err)
	}
	lib := Check{Name: "libseccomp", OK: true}
	maj, minor, micro := seccomp.Version()
	lib.Detail = fmt.Sprintf("version %d.%d.%d", maj, minor, micro)
	if seccomp.Enabled && (maj < 2 || (maj == 2 && minor < 5)) {
		lib.OK = false
		lib.Detail += ": need 2.5 or newer"
	}
	return []Check{built, kernel, lib}
}

// requiredControllers are the cgroup controllers a run's limits use.
var requiredControllers = []string{"memory", "pids", "cpu", "devices", "freezer"}

// checkCgroups checks the controllers under root (cgroupMountRoot; tests
// give another).
func checkCgroups(cfg Config, root string) []Check {
	out := []Check{{Name: "cgroup parent", OK: true, Detail: fmt.Sprintf("%s (cgroup v%d; runs get %s/eg-<n>)", cfg.CgroupParent, cfg.CgroupVersion, cfg.CgroupParent)}}
	if cfg.CgroupVersion == 2 {
		// The controllers must be available where the containers go: the
		// nearest existing ancestor of the cgroup parent (on a systemd
		// host, the service's delegated subtree).
		dir := nearestDir(filepath.Join(root, cfg.CgroupParent))
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		have := strings.Fields(string(data))
		for _, ctl := range []string{"memory", "pids", "cpu"} {
			c := Check{Name: "cgroup v2 controller " + ctl, OK: err == nil && contains(have, ctl), Detail: "available in " + dir}
			if !c.OK {
				c.Detail = fmt.Sprintf("not in %s/cgroup.controllers (%v): delegate it to the service", dir, err)
			}
			out = append(out, c)
		}
		return out
	}
	for _, ctl := range requiredControllers {
		c := Check{Name: "cgroup v1 controller " + ctl, OK: true, Detail: "mounted"}
		if _, err := os.Stat(filepath.Join(root, ctl, "cgroup.procs")); err != nil {
			c.OK, c.Detail = false, fmt.Sprintf("not mounted at %s/%s: %v", root, ctl, err)
		}
		out = append(out, c)
	}
	oom := Check{Name: "cgroup v1 memory.oom_control", OK: true, Detail: "present (OOM kills are counted, trap 14)"}
	if _, err := os.Stat(filepath.Join(root, "memory", "memory.oom_control")); err != nil {
		oom.OK, oom.Detail = false, err.Error()
	}
	// No swap is memory+swap = memory; without swap accounting libcontainer
	// cannot write that limit and every run would fail to start.
	memsw := Check{Name: "cgroup v1 memory.memsw.limit_in_bytes", OK: true, Detail: "present (memory+swap is limited to memory: no swap)"}
	if _, err := os.Stat(filepath.Join(root, "memory", "memory.memsw.limit_in_bytes")); err != nil {
		memsw.OK, memsw.Detail = false, fmt.Sprintf("%v: swap accounting is off (boot without swapaccount=0 / cgroup.memory=noswap); runs cannot be kept from swap", err)
	}
	return append(out, oom, memsw)
}

func checkBinary(cfg Config) []Check {
	loc := Check{Name: "binary location", OK: true}
	self, err := os.Readlink("/proc/self/exe")
	switch {
	case err != nil:
		loc.OK, loc.Detail = false, fmt.Sprintf("readlink /proc/self/exe: %v", err)
	case self != cfg.InitPath:
		loc.OK, loc.Detail = false, fmt.Sprintf("init path %s is not the running binary %s (libcontainer re-executes /proc/self/exe)", cfg.InitPath, self)
	case isUnder(cfg.StateRoot, filepath.Dir(self)) || isUnder(filepath.Dir(self), cfg.StateRoot):
		loc.OK, loc.Detail = false, fmt.Sprintf("binary directory %s and state root %s overlap: libcontainer cannot seal the binary (trap 3); keep them in separate trees", filepath.Dir(self), cfg.StateRoot)
	default:
		loc.Detail = fmt.Sprintf("%s outside state root %s", self, cfg.StateRoot)
	}
	ovl := Check{Name: "overlayfs", OK: true, Detail: "available (zero-copy sealed re-exec)"}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(fs, []byte("\toverlay\n")) {
		ovl.OK, ovl.Detail = false, "overlay missing from /proc/filesystems (modprobe overlay): libcontainer would copy the binary on every run"
	}
	return []Check{loc, ovl}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nearestDir returns p or its nearest existing ancestor.
func nearestDir(p string) string {
	for p != "/" {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		p = filepath.Dir(p)
	}
	return p
}

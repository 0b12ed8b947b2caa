package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// bwrapCgroupParent is where the bubblewrap leg creates one memory and one
// pids cgroup per run (cgroup v1, as on this machine).
const bwrapCgroupParent = "execgate-bench-bwrap"

// bwrapLeg is the prepared bubblewrap leg.
type bwrapLeg struct {
	bwrap, cgenter string
	bpfPath        string
	parents        []string // memory and pids cgroup parents
	args           []string // bwrap's arguments
	seq            atomic.Int64
}

// newBwrapLeg prepares the bubblewrap leg: the cgenter helper, a seccomp
// BPF program exported by libseccomp for the native architecture, a
// workspace owned by the sandbox uid, and cgroup parents. Each run creates
// fresh cgroups, starts cgenter (root) which joins them, drops to uid 65534
// and executes bwrap with namespaces, a read-only /usr, fresh /proc, /dev
// and /tmp, the workspace and the seccomp filter; then it removes the
// cgroups. All of that is counted.
func newBwrapLeg(t *testing.T) (benchLeg, error) {
	var l bwrapLeg
	var err error
	if l.bwrap, err = exec.LookPath("bwrap"); err != nil {
		return benchLeg{}, fmt.Errorf("bubblewrap not installed (scripts/bench-sandbox.sh installs it): %w", err)
	}
	if l.cgenter, err = cgenterProgram.build(); err != nil {
		return benchLeg{}, err
	}
	// Not t.TempDir: its parent is 0700, and bwrap runs as uid 65534.
	dir, err := os.MkdirTemp("", "execgate-bench-bwrap-")
	if err != nil {
		return benchLeg{}, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := l.prepareDir(dir); err != nil {
		return benchLeg{}, fmt.Errorf("prepare %s: %w", dir, err)
	}
	for _, ctrl := range []string{"memory", "pids"} {
		p := filepath.Join("/sys/fs/cgroup", ctrl, bwrapCgroupParent)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return benchLeg{}, fmt.Errorf("create cgroup parent: %w", err)
		}
		l.parents = append(l.parents, p)
	}
	t.Cleanup(func() {
		if err := removeCgroups(l.parents); err != nil {
			t.Errorf("bench cgroup parents left behind: %v", err)
		}
	})
	return benchLeg{
		name: "bubblewrap",
		what: "bwrap " + bwrapVersion(l.bwrap) + " started by a static helper that joins fresh memory (256 MiB) and " +
			"pids (64) cgroups and drops to uid 65534; all namespaces, read-only /usr, fresh /proc /dev /tmp, " +
			"bound workspace, the BPF of execgate's default seccomp profile; cgroups removed after each run",
		run: l.run,
	}, nil
}

// prepareDir writes the BPF program, the generated /etc files and the
// workspace under dir, and the bwrap arguments that use them.
func (l *bwrapLeg) prepareDir(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	l.bpfPath = filepath.Join(dir, "filter.bpf")
	if err := writeBenchBPF(l.bpfPath); err != nil {
		return err
	}
	ws := filepath.Join(dir, "work")
	if err := os.Mkdir(ws, 0o755); err != nil {
		return err
	}
	if err := os.Chown(ws, attackUID, attackUID); err != nil {
		return err
	}
	etc, err := writeBenchEtc(dir)
	if err != nil {
		return err
	}
	l.args = []string{
		"--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
		"--setenv", "PATH", "/usr/bin:/bin",
		"--uid", "65534", "--gid", "65534",
		"--ro-bind", "/usr", "/usr",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
		"--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
		"--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
		"--ro-bind", "/etc/alternatives", "/etc/alternatives",
		"--ro-bind-try", "/etc/ssl/certs", "/etc/ssl/certs",
		"--ro-bind", filepath.Join(etc, "passwd"), "/etc/passwd",
		"--ro-bind", filepath.Join(etc, "group"), "/etc/group",
		"--ro-bind", filepath.Join(etc, "hosts"), "/etc/hosts",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--bind", ws, "/work", "--chdir", "/work",
		"--seccomp", "3",
		"/bin/true",
	}
	return nil
}

// run is one bubblewrap run, cgroups created and removed included.
func (l *bwrapLeg) run(ctx context.Context) (err error) {
	n := strconv.FormatInt(l.seq.Add(1), 10)
	var cgs []string
	defer func() { err = errors.Join(err, removeCgroups(cgs)) }()
	for _, p := range l.parents {
		cg := filepath.Join(p, "run-"+n)
		if err := os.Mkdir(cg, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		cgs = append(cgs, cg)
	}
	if err := os.WriteFile(filepath.Join(cgs[0], "memory.limit_in_bytes"), []byte("268435456"), 0); err != nil {
		return fmt.Errorf("memory limit: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cgs[1], "pids.max"), []byte("64"), 0); err != nil {
		return fmt.Errorf("pids limit: %w", err)
	}
	bpf, err := os.Open(l.bpfPath)
	if err != nil {
		return err
	}
	defer bpf.Close()
	argv := append([]string{"65534", "65534"}, cgs...)
	argv = append(argv, "--", l.bwrap)
	argv = append(argv, l.args...)
	cmd := exec.CommandContext(ctx, l.cgenter, argv...)
	cmd.ExtraFiles = []*os.File{bpf}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bwrap: %w: %s", err, out)
	}
	return nil
}

// removeCgroups removes cgroup directories. A cgroup stays busy for a
// moment after its last process exited (longer on a loaded machine), so
// each removal is retried for up to two seconds.
func removeCgroups(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		var err error
		for i := 0; i < 400; i++ {
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

func bwrapVersion(bwrap string) string {
	out, err := exec.Command(bwrap, "--version").Output()
	if err != nil {
		return "?"
	}
	return string(bytes.TrimSpace(out))
}

// writeBenchEtc writes the generated /etc files a sandbox gets.
func writeBenchEtc(dir string) (string, error) {
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:65534:65534:sandbox:/work:/usr/sbin/nologin\n",
		"group":  "root:x:0:\nsandbox:x:65534:\n",
		"hosts":  "127.0.0.1 localhost\n::1 localhost\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	return etc, nil
}

// writeBenchBPF writes the very program execgate's containers load for
// the "default" profile (seccomp_bpf.go: the ENOSYS stub and libseccomp's
// export of the rules, native architecture only) as bwrap's --seccomp
// program.
func writeBenchBPF(path string) error {
	sc, err := compileSeccomp(defaultAllow)
	if err != nil {
		return fmt.Errorf("compile default profile: %w", err)
	}
	prog, err := seccompBPF(sc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, prog, 0o644)
}

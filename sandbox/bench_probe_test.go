package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// The "libcontainer as the probe ran it" leg of TestBenchCompare: a fresh
// libcontainer container per run, configured the straightforward way the
// probe (../shared/notes/sandbox-findings.md) and this package's
// first version (662081d) did, with the isolation of execgate's default
// profile but none of execgate's start-cost cuts. It is the issue's "floor
// to beat", measured in the same script run as execgate instead of quoted
// from the probe's machine.
//
// Per run, counted:
//   - a fresh rootfs directory (the usr-merge symlinks, a generated passwd
//     and group), removed after the run;
//   - a config whose Mounts bind /usr, the usr-merge names that are real
//     directories and the /etc entries execgate binds (all read-only),
//     mount /proc, libcontainer's own /dev (a tmpfs that its init fills
//     from the Devices list with mknod and links) and a tmpfs /tmp, and
//     bind the workspace; Readonlyfs remounts the root read-only;
//   - every namespace execgate uses (mount, PID, IPC, UTS, cgroup, network);
//   - the cgroups of execgate's profile (memory without swap, pids, CPU
//     shares, CFS quota, the devices allowlist), created and removed per run;
//   - the default profile's seccomp rules (compileSeccomp(defaultAllow):
//     the same allowlist with its clone, socket, socketpair, ioctl and
//     personality argument rules, clone3 answering ENOSYS) given to
//     libcontainer as configs.Seccomp, so its init compiles them with
//     libseccomp and loads them in every run;
//   - no PID 1: /bin/true is libcontainer's init process itself;
//   - empty non-nil capabilities, no_new_privs, uid/gid 65534, the same
//     rlimits, masked and read-only /proc paths and OOM score;
//   - the teardown execgate's run does: kill what is left in the run's
//     cgroups, Destroy, remove any cgroup directory libcontainer left and
//     the state directory; then remove the rootfs directory.
//
// What it shares with execgate's leg, because it runs in the same test
// binary: the static link and containerinit's early init (both cut the
// init's start, not the per-run configuration), and the starter threads
// locked to their OS threads (trap 6: the probe's own fix, not a cut).
// What it does not share: GOMAXPROCS=1 for the init (the leg unsets it
// while it runs) and the cgroup warm-up (TestBenchCompare measures this leg
// before execgate's, and never sooner than warmLinger after execgate's last
// run).

// probeLegName is the leg's name in the table; the ratio columns "vs probe"
// are taken against it.
const probeLegName = "libcontainer as the probe ran it"

// probeLeg is the prepared leg.
type probeLeg struct {
	base         string // temp tree: state root, rootfs directories, workspace, etc
	stateRoot    string // libcontainer's state root
	cgroupParent string // absolute, not the Manager's
	cgMounts     []string
	ws           string
	etcBinds     []string // host /etc entries execgate binds, those present here
	hostDirs     []string // usr-merge names that are real directories
	links        [][2]string
	prof         policy.Profile
	seccomp      *configs.Seccomp
	starters     *starterPool
	seq          atomic.Int64
}

// newProbeLeg prepares the leg under its own temp tree and cgroup parent
// (/execgate-bench-<pid>-probe, beside the execgate leg's Manager's
// /execgate-bench-<pid>): it never touches the Manager's containers. The
// cleanup checks that no container state, rootfs directory, mount or
// cgroup is left, and removes the parent cgroups. A crashed earlier run of
// the leg left its parent behind; newProbeLeg sweeps the parents of dead
// pids first (sweepStaleProbeParents).
func newProbeLeg(t *testing.T, prof policy.Profile) (*probeLeg, error) {
	l := &probeLeg{
		base:         t.TempDir(),
		cgroupParent: fmt.Sprintf("/execgate-bench-%d-probe", os.Getpid()),
		prof:         prof,
	}
	l.stateRoot = filepath.Join(l.base, "state")
	if err := os.Mkdir(l.stateRoot, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(l.base, "rootfs"), 0o755); err != nil {
		return nil, err
	}
	l.ws = filepath.Join(l.base, "work")
	if err := os.Mkdir(l.ws, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(l.ws, int(prof.UID), int(prof.GID)); err != nil {
		return nil, err
	}
	var err error
	if l.cgMounts, err = cgroupMounts(); err != nil {
		return nil, err
	}
	if err := sweepStaleProbeParents(l.cgMounts); err != nil {
		return nil, err
	}
	for _, name := range usrMergeNames {
		fi, err := os.Lstat("/" + name)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink("/" + name)
			if err != nil {
				return nil, err
			}
			l.links = append(l.links, [2]string{target, name})
		case fi.IsDir():
			l.hostDirs = append(l.hostDirs, "/"+name)
		}
	}
	for _, p := range etcBinds {
		if _, err := os.Stat(p); err == nil {
			l.etcBinds = append(l.etcBinds, p)
		}
	}
	// The rule list is built once, as the first version's Manager did;
	// libcontainer compiles it in every container's init.
	if l.seccomp, err = compileSeccomp(defaultAllow); err != nil {
		return nil, err
	}
	l.starters = newStarterPool(4)
	t.Cleanup(func() {
		l.starters.close()
		for _, p := range l.leftovers() {
			t.Errorf("probe leg left behind: %s", p)
		}
		for _, mnt := range l.cgMounts {
			if err := unix.Rmdir(filepath.Join(mnt, l.cgroupParent)); err != nil && err != unix.ENOENT {
				t.Errorf("probe leg: remove cgroup parent in %s: %v", mnt, err)
			}
		}
	})
	return l, nil
}

// probeParentRE matches the leg's cgroup parent names, with the pid of
// the test process that made them.
var probeParentRE = regexp.MustCompile(`^execgate-bench-([0-9]+)-probe$`)

// sweepStaleProbeParents removes the probe leg's cgroup parents that
// belong to test processes that are gone (a crashed or killed benchmark):
// it kills what still runs in their cgroups and removes them, deepest
// first. A parent whose pid is alive (this process, or a pid reused since)
// is left alone.
func sweepStaleProbeParents(mounts []string) error {
	var errs []error
	for _, mnt := range mounts {
		ents, err := os.ReadDir(mnt)
		if err != nil {
			continue
		}
		for _, e := range ents {
			m := probeParentRE.FindStringSubmatch(e.Name())
			if !e.IsDir() || m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[1]); pid > 0 && unix.Kill(pid, 0) != unix.ESRCH {
				continue // alive (or not ours to judge)
			}
			if err := removeCgroupDir(context.Background(), filepath.Join(mnt, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("sweep stale probe parent: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// leg is the benchmark leg: /bin/true, exit status 0 wanted.
func (l *probeLeg) leg() benchLeg {
	return benchLeg{
		name: probeLegName,
		what: "a fresh libcontainer container per run, configured as the probe and this package's first version (662081d) did: " +
			"a fresh rootfs directory per run (usr-merge symlinks, generated passwd/group; removed after), binds of /usr and the /etc entries " +
			"execgate binds, /proc, libcontainer's own tmpfs /dev with mknod of null, zero, full, random, urandom, tty, a tmpfs /tmp and the " +
			"workspace, all in the config's Mounts; all namespaces incl. network; memory (256 MiB, no swap), pids (64), CPU shares and quota " +
			"cgroups; the default profile's seccomp rules (argument rules included) given as configs.Seccomp, so libseccomp compiles them " +
			"in libcontainer's init in every run; no PID 1 (/bin/true is the init process); no capabilities, no_new_privs, uid 65534; " +
			"teardown as execgate's (kill, Destroy, leftover cgroups, state) plus the rootfs removal; the init's GOMAXPROCS left unset. " +
			"Same test binary (static, containerinit) and locked starter threads as execgate; measured before execgate at each level, " +
			"so execgate's cgroup warm-up is not running",
		run: func(ctx context.Context) error {
			code, err := l.run(ctx, []string{"/bin/true"}, io.Discard)
			if err != nil {
				return err
			}
			if code != 0 {
				return fmt.Errorf("/bin/true in the probe's container: exit status %d", code)
			}
			return nil
		},
		enter: unsetInitGOMAXPROCS,
	}
}

// unsetInitGOMAXPROCS removes the GOMAXPROCS a Manager set for its
// container inits (initenv.go) while the probe's leg runs: libcontainer
// passes this process's GOMAXPROCS to every init, and the probe's inits
// sized their runtimes themselves. It returns the restore.
func unsetInitGOMAXPROCS() func() {
	v, ok := os.LookupEnv("GOMAXPROCS")
	_ = os.Unsetenv("GOMAXPROCS")
	return func() {
		if ok {
			_ = os.Setenv("GOMAXPROCS", v)
		}
	}
}

// run is one run: rootfs, config, container, command, teardown. It
// returns the command's exit status (-1 for a signal).
func (l *probeLeg) run(ctx context.Context, argv []string, stdout io.Writer) (code int, err error) {
	// The container prefix (eg-) marks the run's cgroups as containers
	// for every sweep, as the Manager's are.
	id := containerPrefix + "probe-" + strconv.FormatInt(l.seq.Add(1), 10)
	rootfs := filepath.Join(l.base, "rootfs", id)
	defer func() {
		if rerr := os.RemoveAll(rootfs); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove rootfs: %w", rerr))
		}
	}()
	if err := l.makeRootfs(rootfs); err != nil {
		return 0, err
	}
	cfg := l.config(id, rootfs)
	// Started once more on the transient failure of trap 6, as execgate's
	// runs are.
	for attempt := 1; ; attempt++ {
		code, err = l.runOnce(ctx, id, cfg, argv, stdout)
		if err == nil || attempt == 2 || !isTransientStart(err) {
			return code, err
		}
	}
}

// makeRootfs creates the run's root directory: the usr-merge symlinks and
// the generated passwd and group; libcontainer creates the mount points.
func (l *probeLeg) makeRootfs(rootfs string) error {
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	for _, lk := range l.links {
		if err := os.Symlink(lk[0], filepath.Join(rootfs, lk[1])); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	uid, gid := l.prof.UID, l.prof.GID
	files := map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:%d:%d:execgate sandbox:/tmp:/usr/sbin/nologin\n", uid, gid),
		"group":  fmt.Sprintf("root:x:0:\nsandbox:x:%d:\n", gid),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(rootfs, "etc", name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return nil
}

// config is the run's libcontainer configuration, built the first
// version's way (662081d's buildConfig): every mount in the list.
func (l *probeLeg) config(id, rootfs string) *configs.Config {
	p := &l.prof
	umask := p.Umask
	oomScore := 1000
	ms := []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: fsFlags},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_STRICTATIME, Data: "mode=755,size=64k,nr_inodes=64"},
		bind("/usr", "/usr", roBind),
	}
	for _, d := range l.hostDirs {
		ms = append(ms, bind(d, d, roBind))
	}
	for _, e := range l.etcBinds {
		ms = append(ms, bind(e, e, roBind|unix.MS_NOEXEC))
	}
	tmpFlags, workFlags := unix.MS_NOSUID|unix.MS_NODEV, rwBind
	if p.NoExecWork {
		tmpFlags |= unix.MS_NOEXEC
		workFlags |= unix.MS_NOEXEC
	}
	ms = append(ms,
		&configs.Mount{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: tmpFlags,
			Data: "mode=1777,size=" + strconv.FormatInt(p.TmpfsBytes, 10) + ",nr_inodes=" + strconv.FormatInt(tmpfsInodes(p.TmpfsBytes), 10)},
		bind(l.ws, attackWorkTarget, workFlags))
	pids := p.Pids // no PID 1 in the container: the command's own limit
	res := &cgroups.Resources{
		Devices:    deviceRules(false),
		Memory:     p.MemoryBytes,
		MemorySwap: p.MemoryBytes,
		PidsLimit:  &pids,
		CpuShares:  p.CPUShares,
		CpuPeriod:  cpuPeriodMicros,
		CpuQuota:   cpuQuotaMicros(p.CPUQuota),
	}
	return &configs.Config{
		Rootfs:            rootfs,
		Readonlyfs:        true,
		RootPropagation:   unix.MS_PRIVATE | unix.MS_REC,
		Umask:             &umask,
		Hostname:          sandboxHostname,
		ParentDeathSignal: int(unix.SIGKILL),
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS}, {Type: configs.NEWPID}, {Type: configs.NEWIPC},
			{Type: configs.NEWUTS}, {Type: configs.NEWCGROUP}, {Type: configs.NEWNET},
		},
		Capabilities:    &configs.Capabilities{},
		NoNewPrivileges: true,
		Mounts:          ms,
		Devices:         buildDevices(false),
		MaskPaths:       maskedPaths,
		ReadonlyPaths:   readonlyPaths,
		Rlimits:         buildRlimits(p),
		OomScoreAdj:     &oomScore,
		Seccomp:         l.seccomp,
		Cgroups:         &cgroups.Cgroup{Path: cgroupPath(l.cgroupParent, id), Resources: res},
		Version:         "1.2.0",
	}
}

// runOnce starts the container on a starter thread with our own pipes
// (trap 7), waits for the command and tears everything down.
func (l *probeLeg) runOnce(ctx context.Context, id string, cfg *configs.Config, argv []string, stdout io.Writer) (code int, err error) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer stdin.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer outR.Close()
	defer outW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer errR.Close()
	defer errW.Close()

	var c *libcontainer.Container
	defer func() {
		if derr := l.destroy(id, cfg, c); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	proc := &libcontainer.Process{
		Args: argv, Env: []string{"PATH=/usr/bin:/bin"}, Cwd: attackWorkTarget,
		UID: int(l.prof.UID), GID: int(l.prof.GID), Init: true,
		Stdin: stdin, Stdout: outW, Stderr: errW,
	}
	l.starters.do(func() {
		if c, err = libcontainer.Create(l.stateRoot, id, cfg); err != nil {
			err = fmt.Errorf("create container: %w", err)
			return
		}
		if err = c.Run(proc); err != nil {
			err = fmt.Errorf("run init: %w", err)
		}
	})
	if err != nil {
		if c != nil {
			_ = c.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
		}
		return 0, err
	}
	_ = stdin.Close()
	_ = outW.Close()
	_ = errW.Close()
	var wg sync.WaitGroup
	var stderr bytes.Buffer
	wg.Go(func() { _, _ = io.Copy(stdout, outR) })
	wg.Go(func() { _, _ = io.Copy(&stderr, io.LimitReader(errR, 4096)); _, _ = io.Copy(io.Discard, errR) })
	stop := context.AfterFunc(ctx, func() { _ = c.Signal(unix.SIGKILL) })
	st, werr := proc.Wait()
	stop()
	wg.Wait()
	if st == nil {
		return 0, fmt.Errorf("wait: %w", werr)
	}
	code = st.ExitCode()
	if code != 0 && stderr.Len() > 0 {
		return code, fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return code, nil
}

// destroy is execgate's teardown of a run (container.go's destroy):
// kill what is left in the run's cgroups, Destroy, remove the cgroup
// directories libcontainer did not, remove the state directory.
func (l *probeLeg) destroy(id string, cfg *configs.Config, c *libcontainer.Container) error {
	var errs []error
	for _, mnt := range l.cgMounts {
		if err := killCgroupProcs(context.Background(), filepath.Join(mnt, cfg.Cgroups.Path)); err != nil {
			errs = append(errs, err)
		}
	}
	if c != nil {
		if err := c.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("destroy container %s: %w", id, err))
		}
	}
	for _, mnt := range l.cgMounts {
		dir := filepath.Join(mnt, cfg.Cgroups.Path)
		if _, err := os.Stat(dir); err == nil {
			if err := removeCgroupDir(context.Background(), dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(l.stateRoot, id)); err != nil {
		errs = append(errs, fmt.Errorf("remove state: %w", err))
	}
	return errors.Join(errs...)
}

// leftovers lists container state, rootfs directories, mounts below the
// leg's tree and run cgroups below its parent.
func (l *probeLeg) leftovers() []string {
	var out []string
	for _, d := range []string{l.stateRoot, filepath.Join(l.base, "rootfs")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	out = append(out, leftoverMounts(l.base)...)
	for _, cg := range leftoverCgroups(l.cgroupParent) {
		if !strings.HasSuffix(cg, l.cgroupParent) {
			out = append(out, cg)
		}
	}
	return out
}

// TestBenchProbeLeg runs the probe leg outside the benchmark: the
// container has the isolation the leg claims (seccomp filter,
// no_new_privs, no capabilities, uid 65534, the root and /usr read-only, a
// writable workspace, libcontainer's /dev, no network device but the
// loopback, unshare refused), /bin/true exits 0 two at a time, GOMAXPROCS
// is unset meanwhile, and nothing is left behind (the leg's cleanup
// checks that).
func TestBenchProbeLeg(t *testing.T) {
	needRoot(t)
	l, err := newProbeLeg(t, benchProfile())
	if err != nil {
		t.Fatalf("probe leg: %v", err)
	}
	var sb strings.Builder
	code, err := l.run(t.Context(), []string{"/bin/sh", "-c",
		`grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ` +
			`touch /usr/x 2>/dev/null && echo usr-writable; touch /x 2>/dev/null && echo root-writable; ` +
			`touch /work/ok && echo work-writable; ` +
			`echo net=$(sed -n '3,$s/:.*//p' /proc/net/dev | tr -d ' ' | tr '\n' ,); ` +
			`echo dev=$(ls /dev | tr '\n' ,)`}, &sb)
	if err != nil || code != 0 {
		t.Fatalf("status run: exit status %d, err %v, output %q", code, err, sb.String())
	}
	out := sb.String()
	t.Logf("inside the probe's container:\n%s", out)
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2",
		"work-writable", "net=lo,\n", "full,", "null,", "random,", "tty,", "urandom,", "zero,"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output %q: want %q in it", out, want)
		}
	}
	for _, bad := range []string{"usr-writable", "root-writable"} {
		if strings.Contains(out, bad) {
			t.Errorf("container output %q: got %q", out, bad)
		}
	}
	// A user namespace needs no privilege on this kernel (trap 13): only
	// the filter libcontainer compiled refuses it.
	if code, err := l.run(t.Context(), []string{"/usr/bin/unshare", "-U", "/bin/true"}, io.Discard); code == 0 || err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Errorf("unshare -U in the probe's container: got exit status %d, %v; want a failure with EPERM", code, err)
	}

	leg := l.leg()
	restore := leg.enter()
	if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
		t.Errorf("GOMAXPROCS=%q while the probe leg runs, want it unset", v)
	}
	st, err := measure(t.Context(), leg.run, 2, 300*time.Millisecond)
	restore()
	if err != nil {
		t.Fatalf("probe leg at 2 concurrent: %v", err)
	}
	t.Logf("probe leg, 2 concurrent: %d runs, p50 %v, p99 %v", st.runs, st.p50, st.p99)
	if st.runs < 2 {
		t.Errorf("probe leg: got %d runs in 300 ms, want at least 2", st.runs)
	}
}

// TestSweepStaleProbeParents: the probe leg's cgroup parent of a dead test
// process (with a run cgroup left in it) is removed in every hierarchy; one
// of a live process (this one) is left alone.
func TestSweepStaleProbeParents(t *testing.T) {
	needRoot(t)
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadDir := fmt.Sprintf("execgate-bench-%d-probe", dead.Process.Pid)
	liveDir := fmt.Sprintf("execgate-bench-%d-probe", os.Getpid())
	t.Cleanup(func() {
		for _, mnt := range mounts {
			for _, d := range []string{deadDir + "/" + containerPrefix + "probe-1", deadDir, liveDir} {
				_ = os.Remove(filepath.Join(mnt, d))
			}
		}
	})
	for _, mnt := range mounts {
		for _, d := range []string{deadDir, deadDir + "/" + containerPrefix + "probe-1", liveDir} {
			if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
				t.Fatalf("create %s: %v", d, err)
			}
		}
	}
	if err := sweepStaleProbeParents(mounts); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	for _, mnt := range mounts {
		if _, err := os.Stat(filepath.Join(mnt, deadDir)); !os.IsNotExist(err) {
			t.Errorf("%s/%s: got %v, want it removed (its pid is gone)", mnt, deadDir, err)
		}
		if _, err := os.Stat(filepath.Join(mnt, liveDir)); err != nil {
			t.Errorf("%s/%s: got %v, want it kept (its pid is alive)", mnt, liveDir, err)
		}
	}
}

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// Manager runs sandboxes for one instance. It is safe for concurrent use.
// New checks the host, locks the instance and sweeps what a crashed
// earlier process of the instance left; Close releases everything.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	locks    []*os.File // state root lock, cgroup parent lock
	cgRecord []byte     // the cgroup parent lock's content when taken
	skel     *skeleton
	starters *starterPool
	images   *imageMounts
	cgMounts []string      // mount points of every cgroup hierarchy
	cgMade   []string      // directories of the cgroup parent New created (cgparent.go)
	warm     *cgroupWarmer // nil on cgroup v2
	disk     *diskWatcher  // free space of the file systems active runs write to

	seccompMu    sync.Mutex
	seccompCache map[string]*seccompProgram // by seccompKey
	seccompUse   uint64                     // a clock for the cache's LRU

	mu     sync.Mutex
	closed bool
	active map[string]map[*run]struct{} // running commands by Spec.ID
	runs   sync.WaitGroup               // active Run calls
	bg     sync.WaitGroup               // stdin copiers that outlive their run (blocked in the caller's Read)
	seq    atomic.Uint64
}

// New checks the host (Selfcheck), takes the instance's locks (its state
// root and its cgroup parent), sweeps leftovers of an earlier process of
// the same instance, builds the shared root skeleton and starts the starter
// threads.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("sandbox: nil logger")
	}
	if _, err := Selfcheck(cfg); err != nil {
		return nil, err
	}
	for _, d := range cfg.ReserveDirs {
		var st unix.Statfs_t
		if err := unix.Statfs(d, &st); err != nil {
			return nil, fmt.Errorf("sandbox config: reserve dir %s: %w", d, err)
		}
	}
	if err := setInitEnv(); err != nil {
		return nil, fmt.Errorf("container init environment: %w", err)
	}
	locks, cgRecord, err := lockInstance(cfg)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: log, locks: locks, cgRecord: cgRecord, seccompCache: map[string]*seccompProgram{}, active: map[string]map[*run]struct{}{},
		disk: newDiskWatcher(cfg.MinFreeBytes, diskWatchInterval, log)}
	if err := m.setUp(ctx); err != nil {
		m.undoSetUp()
		return nil, err
	}
	m.starters = newStarterPool(cfg.Starters)
	if !cfg.DisableCgroupWarmup {
		m.warm = newCgroupWarmer(cfg.CgroupVersion, m.cgMounts, log)
	}
	log.Info("sandbox manager ready", "instance", cfg.Instance, "state_root", cfg.StateRoot,
		"cgroup_parent", cfg.CgroupParent, "cgroup_version", cfg.CgroupVersion, "cgroup_warmup", m.warm != nil)
	return m, nil
}

// setUp sweeps and builds what the Manager needs, under its locks.
func (m *Manager) setUp(ctx context.Context) (err error) {
	m.images = newImageMounts(m.cfg.WorkspaceImageRoot, m.log)
	if m.cgMounts, err = cgroupMounts(); err != nil {
		return err
	}
	if err := m.sweep(ctx); err != nil {
		return fmt.Errorf("sweep leftovers: %w", err)
	}
	// Ours too: what a crashed Manager of this parent created (its record
	// in the parent's lock file), so that Close removes them.
	adopted := adoptCgroupParent(m.cgRecord, m.cgMounts, m.cfg.CgroupParent)
	m.cgMade = append(adopted, makeCgroupParent(m.cgMounts, m.cfg.CgroupParent, m.log)...)
	m.recordCgroupParent()
	if m.skel, err = buildSkeleton(m.cfg.skelDir(), m.cfg.rootfsDir(), m.cfg.devDir()); err != nil {
		return err
	}
	if err := m.mountShim(); err != nil {
		return err
	}
	if err := os.MkdirAll(m.cfg.containersDir(), 0o700); err != nil {
		return fmt.Errorf("containers dir: %w", err)
	}
	for _, name := range []string{SeccompDefault, SeccompStrict} {
		for _, noexec := range []bool{false, true} {
			prog, err := m.seccompFor(&policy.Profile{Seccomp: name, NoExecWork: noexec})
			if err != nil {
				return err
			}
			m.releaseSeccomp(prog)
		}
	}
	return nil
}

// undoSetUp releases what a failed setUp built (best effort: the next
// Manager's sweep removes what is left) and the locks.
func (m *Manager) undoSetUp() {
	m.closeSeccomp()
	if m.skel != nil {
		_ = m.unmountShim()
		_ = m.skel.remove()
	}
	removeCgroupParent(m.cgMade)
	m.releaseLocks()
}

// Config returns the effective configuration (defaults applied).
func (m *Manager) Config() Config { return m.cfg }

// acquire registers a run; it fails after Close.
func (m *Manager) acquire() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.runs.Add(1)
	return nil
}

// Close waits for active runs to end (cancel their contexts first), stops
// the starter threads, unmounts the workspace images, removes the root
// skeleton and the cgroup parent directories New created, and releases the
// lock. It is safe to call twice.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.runs.Wait()
	m.bg.Wait()
	m.disk.wait() // every run is gone: its goroutine was told to end
	m.warm.stop()
	m.starters.close()
	err := m.images.unmountAll()
	// Only the parent directories New created, empty now; busy ones and
	// ones that existed before stay.
	removeCgroupParent(m.cgMade)
	if uerr := m.unmountShim(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("unmount pid 1 binary: %w", uerr))
	}
	m.closeSeccomp()
	if rerr := m.skel.remove(); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove root skeleton: %w", rerr))
	}
	m.releaseLocks()
	return err
}

// maxCustomSeccomp bounds the compiled custom profiles a Manager keeps:
// a reload loop of ever-new files cannot grow the cache without bound.
const maxCustomSeccomp = 64

// seccompFor returns the compiled seccomp program of a profile's seccomp
// profile, compiling it once, and holds it for the caller: release it with
// releaseSeccomp when the run no longer needs its file. A custom profile
// is compiled from the bytes the policy loader read and validated
// (Profile.SeccompData), never read from its file here, and cached by
// their SHA-256: a reload's new content takes effect for new runs, and
// what was validated is what runs.
func (m *Manager) seccompFor(p *policy.Profile) (*seccompProgram, error) {
	custom := p.Seccomp != SeccompDefault && p.Seccomp != SeccompStrict
	if p.Seccomp == "" {
		return nil, &SpecError{Field: "profile.seccomp", Reason: "empty: name default, strict or a custom profile"}
	}
	if custom && len(p.SeccompData) == 0 {
		return nil, fmt.Errorf("%w: custom profile %q carries no content (profiles come from policy.Load)", ErrSeccompProfile, p.Seccomp)
	}
	key := seccompKey(p.Seccomp, p.SeccompData, p.NoExecWork)
	m.seccompMu.Lock()
	defer m.seccompMu.Unlock()
	m.seccompUse++
	if sc, ok := m.seccompCache[key]; ok {
		sc.refs++
		sc.lastUse = m.seccompUse
		return sc, nil
	}
	var allow []string
	switch p.Seccomp {
	case SeccompDefault:
		allow = defaultAllow
	case SeccompStrict:
		allow = strictAllow
	default:
		// Validated at load already; checked again because the cache key
		// is the content, and this is what the container will load.
		f, err := ParseSeccompFile(p.SeccompData)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile %s: %w", p.SeccompFile, err)
		}
		if err := checkPID1Syscalls(f.Allow); err != nil {
			return nil, fmt.Errorf("seccomp profile %s: %w", p.SeccompFile, err)
		}
		allow = f.Allow
	}
	if p.NoExecWork {
		allow = noexecAllow(allow)
	}
	sc, err := compileSeccomp(allow)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp profile %q: %w", p.Seccomp, err)
	}
	prog, err := exportSeccomp(sc)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp profile %q: %w", p.Seccomp, err)
	}
	if custom {
		prog.custom = true
		m.evictCustomSeccomp()
	}
	prog.refs, prog.lastUse = 1, m.seccompUse
	m.seccompCache[key] = prog
	return prog, nil
}

// evictCustomSeccomp drops the least recently used custom program when
// the cache holds maxCustomSeccomp of them (the built-in ones always
// stay). A dropped program still held by a run is closed by the last
// releaseSeccomp. Called with seccompMu held.
func (m *Manager) evictCustomSeccomp() {
	n, oldKey := 0, ""
	var oldest *seccompProgram
	for k, prog := range m.seccompCache {
		if !prog.custom {
			continue
		}
		n++
		if oldest == nil || prog.lastUse < oldest.lastUse {
			oldest, oldKey = prog, k
		}
	}
	if n < maxCustomSeccomp {
		return
	}
	delete(m.seccompCache, oldKey)
	oldest.evicted = true
	if oldest.refs == 0 {
		oldest.file.Close()
	}
}

// releaseSeccomp ends a hold of seccompFor.
func (m *Manager) releaseSeccomp(prog *seccompProgram) {
	m.seccompMu.Lock()
	defer m.seccompMu.Unlock()
	if prog.refs--; prog.refs == 0 && prog.evicted {
		prog.file.Close()
	}
}

// closeSeccomp releases the compiled programs (Close, after every run).
func (m *Manager) closeSeccomp() {
	m.seccompMu.Lock()
	defer m.seccompMu.Unlock()
	for k, prog := range m.seccompCache {
		prog.file.Close()
		delete(m.seccompCache, k)
	}
}

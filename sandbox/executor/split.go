package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/sandbox"
)

// Split defaults.
const (
	// DefaultFrontUser is the dedicated system user the front runs as.
	DefaultFrontUser = "execgate"
	// FallbackFrontUser is used only with SplitConfig.AllowNobody, when
	// the front user does not exist (`make run` on a development machine).
	FallbackFrontUser = "nobody"
	// DefaultShutdownGrace is how long the executor waits for the front to
	// finish after forwarding SIGTERM, before it kills the front.
	DefaultShutdownGrace = 30 * time.Second
)

// SplitConfig configures Split.
type SplitConfig struct {
	Local *Local // serves the front's jobs (with the sandbox and policy)
	// FrontUser is the user the front runs as (default DefaultFrontUser).
	FrontUser string
	// AllowNobody falls back to FallbackFrontUser when FrontUser does not
	// exist. Development mode only.
	AllowNobody bool
	// Args are the front's arguments after the binary, e.g. os.Args[1:]
	// ("serve", flags...). The front is this binary (/proc/self/exe).
	Args []string
	// Reload reloads the executor's policy (Local.SetPolicy); it is asked
	// for on SIGHUP (which is forwarded to the front at once) and by the
	// front's reload frame. Reloads run one at a time in their own
	// goroutine, never on the loop that follows the front: requests made
	// while one runs coalesce into one more after it, and ctx is
	// cancelled when Split returns, which waits for a running reload at
	// most min(ShutdownGrace, 5s). Nil: no reload.
	Reload func(ctx context.Context) error
	// Rotate runs on SIGUSR1 before the signal is forwarded to the front,
	// off the supervisor loop like Reload: for serve, it creates the audit
	// log for the front after a rotation moved it away (the front cannot
	// create files in root's state directory). Nil: SIGUSR1 is forwarded
	// at once.
	Rotate func() error
	// ShutdownGrace after forwarding SIGTERM (default DefaultShutdownGrace).
	ShutdownGrace time.Duration
	// ExtraFiles are passed to the front as fds 4, 5, ... (fd 3 is the
	// executor socket): for example a listener on a privileged port opened
	// by root before the split.
	ExtraFiles []*os.File
	// FrontEnv are KEY=VALUE pairs added to the front's environment (what
	// the root side learnt that the front cannot: the sandbox self-check).
	FrontEnv []string
	// Stdout and Stderr of the front (default os.Stdout, os.Stderr).
	Stdout, Stderr *os.File
	Log            *slog.Logger
}

// FrontUser is the account the front runs as.
type FrontUser struct {
	Name     string
	UID, GID int
}

// LookupFrontUser resolves the front's account: name, or FallbackFrontUser
// when name does not exist and allowNobody is set. uid 0 is refused.
func LookupFrontUser(name string, allowNobody bool) (FrontUser, error) {
	if name == "" {
		name = DefaultFrontUser
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) && allowNobody && name != FallbackFrontUser {
		u, err = user.Lookup(FallbackFrontUser)
	}
	if err != nil {
		return FrontUser{}, fmt.Errorf("front user %q: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil || uid <= 0 || gid < 0 {
		return FrontUser{}, fmt.Errorf("front user %q: uid %s gid %s: need a non-root numeric account", u.Username, u.Uid, u.Gid)
	}
	return FrontUser{Name: u.Username, UID: uid, GID: gid}, nil
}

// Split runs the privilege separation of `execgate serve` started as root.
// It re-executes this binary as the unprivileged front (with the executor
// socket as fd 3 and FrontFDEnv set), serves the front's jobs through
// cfg.Local until the front exits, and returns the exit code for the
// process. SIGHUP starts a policy reload and is forwarded; SIGUSR1 is
// forwarded; when ctx ends (SIGTERM/SIGINT) SIGTERM is forwarded and the
// front gets ShutdownGrace to finish. If the front dies or breaks the
// protocol, every running sandbox is killed and the code is non-zero.
func Split(ctx context.Context, cfg SplitConfig) (int, error) {
	if os.Geteuid() != 0 {
		return 1, ErrNotRoot
	}
	if cfg.Local == nil {
		return 1, errors.New("split: no Local runner")
	}
	cfg = splitDefaults(cfg)
	fu, err := LookupFrontUser(cfg.FrontUser, cfg.AllowNobody)
	if err != nil {
		return 1, fmt.Errorf("split: %w", err)
	}
	conn, child, err := executorPair()
	if err != nil {
		return 1, fmt.Errorf("split: %w", err)
	}
	defer func() { _ = conn.Close() }()
	front, err := startFront(cfg, fu, child)
	_ = child.Close()
	if err != nil {
		return 1, fmt.Errorf("split: start front: %w", err)
	}
	cfg.Log.Info("front started", "pid", front.pid, "user", fu.Name, "uid", fu.UID)
	return superviseFront(ctx, cfg, fu, front, conn)
}

func splitDefaults(cfg SplitConfig) SplitConfig {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return cfg
}

// executorPair creates the private socket pair: the executor's end (with
// SO_PASSCRED on, so the front's hello carries the front's credentials)
// and the file for the front.
func executorPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "executor")
	theirs := os.NewFile(uintptr(fds[1]), "front")
	c, err := net.FileConn(mine)
	_ = mine.Close()
	if err != nil {
		_ = theirs.Close()
		return nil, nil, fmt.Errorf("socketpair conn: %w", err)
	}
	uc := c.(*net.UnixConn)
	if err := enablePassCred(uc); err != nil {
		_ = uc.Close()
		_ = theirs.Close()
		return nil, nil, fmt.Errorf("SO_PASSCRED: %w", err)
	}
	return uc, theirs, nil
}

// frontProc is the running front.
type frontProc struct {
	pid    int
	proc   *os.Process
	exited chan error // receives cmd.Wait's result once
}

// startFront starts the front from a goroutine locked to its OS thread
// for the front's whole life: Pdeathsig fires when the thread that forked
// the child exits (trap 6), not when the process does.
func startFront(cfg SplitConfig, fu FrontUser, child *os.File) (*frontProc, error) {
	cmd := exec.Command("/proc/self/exe", cfg.Args...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr
	cmd.ExtraFiles = append([]*os.File{child}, cfg.ExtraFiles...) // fd 3, then 4...
	cmd.Env = append(frontEnv(), cfg.FrontEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(fu.UID), Gid: uint32(fu.GID), Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true, // terminal signals reach the executor, which forwards them
	}
	started := make(chan error, 1)
	fp := &frontProc{exited: make(chan error, 1)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		// no_new_privs is per thread and inherited by fork: set on this
		// dedicated thread only, it covers every thread of the front from
		// its first instruction (the front cannot set it for all its
		// threads itself: a cgo binary cannot use AllThreadsSyscall).
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			started <- fmt.Errorf("no_new_privs: %w", err)
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		fp.exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	fp.pid, fp.proc = cmd.Process.Pid, cmd.Process
	return fp, nil
}

// frontEnv is the front's environment: this process's as it started
// (sandbox.Environ, not os.Environ: the Manager sets GOMAXPROCS=1 for its
// container inits, and the front sizes its own runtime) and FrontFDEnv.
func frontEnv() []string {
	return append(withoutEnv(sandbox.Environ(), FrontFDEnv), FrontFDEnv+"=3")
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)+1] == key+"=" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

func TestRunEchoAndExitCodes(t *testing.T) {
	m := newTestManager(t)
	tests := []struct {
		name     string
		argv     []string
		wantCode int
		wantOut  string
	}{
		{"echo", []string{"/bin/echo", "hello", "world"}, 0, "hello world\n"},
		{"true", []string{"/bin/true"}, 0, ""},
		{"false", []string{"/bin/false"}, 1, ""},
		{"exit 42", []string{"/bin/sh", "-c", "exit 42"}, 42, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runSpec(t, m, Spec{ID: "echo", Argv: tt.argv})
			if got.ExitCode != tt.wantCode || got.Stdout != tt.wantOut || got.EndedBy != EndedExit {
				t.Errorf("got exit %d, stdout %q, ended %q (stderr %q); want exit %d, stdout %q, ended exit",
					got.ExitCode, got.Stdout, got.EndedBy, got.Stderr, tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestRunStdinEnvCwd(t *testing.T) {
	m := newTestManager(t)
	t.Run("stdin", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/tr", "a-z", "A-Z"}, Stdin: strings.NewReader("shout\n")})
		if got.Stdout != "SHOUT\n" || got.ExitCode != 0 {
			t.Errorf("got %q exit %d, want %q exit 0", got.Stdout, got.ExitCode, "SHOUT\n")
		}
	})
	t.Run("no stdin is /dev/null", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/bin/cat"}})
		if got.Stdout != "" || got.ExitCode != 0 {
			t.Errorf("got %q exit %d, want empty exit 0", got.Stdout, got.ExitCode)
		}
	})
	t.Run("env is exactly what is given", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/env"}, Env: []string{"A=1", "PATH=/usr/bin"}})
		// libcontainer adds HOME from the generated passwd when unset.
		if got.Stdout != "A=1\nPATH=/usr/bin\nHOME=/tmp\n" {
			t.Errorf("got env %q, want only A, PATH and HOME", got.Stdout)
		}
	})
	t.Run("cwd", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/bin/pwd"}, Cwd: "/tmp"})
		if got.Stdout != "/tmp\n" {
			t.Errorf("got cwd %q, want /tmp", got.Stdout)
		}
	})
	t.Run("identity and session", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "id -u; id -g; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ls /proc/self/fd; echo sid=$(cut -d' ' -f6 /proc/self/stat)"}})
		want := "65534\n65534\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n0\n1\n2\n3\nsid=1\n"
		if got.Stdout != want {
			t.Errorf("got\n%s\nwant\n%s\n(stderr %q)", got.Stdout, want, got.Stderr)
		}
	})
	t.Run("stderr", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "echo oops >&2"}})
		if got.Stderr != "oops\n" || got.StderrBytes != 5 || got.StdoutBytes != 0 {
			t.Errorf("got stderr %q (%d bytes), stdout %d bytes; want oops", got.Stderr, got.StderrBytes, got.StdoutBytes)
		}
	})
}

func TestRunReadOnlyRootAndWorkspace(t *testing.T) {
	m := newTestManager(t)
	ws := filepath.Join(filepath.Dir(m.cfg.StateRoot), "ws", "alice")
	mounts := []policy.Mount{{Root: "workspace", Source: ws, Target: "/work", Workspace: true}}
	script := `for p in /usr/x /etc/x /x /bin/x /proc/sys/kernel/hostname; do if echo x > $p 2>/dev/null; then echo "wrote $p"; fi; done
echo data > /work/file && echo ok-work
echo t > /tmp/t && echo ok-tmp`
	got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", script}, Mounts: mounts, Cwd: "/work"})
	if got.Stdout != "ok-work\nok-tmp\n" {
		t.Errorf("got %q (stderr %q), want only the workspace and /tmp writable", got.Stdout, got.Stderr)
	}
	fi, err := os.Stat(filepath.Join(ws, "file"))
	if err != nil {
		t.Fatalf("file written in the workspace is missing on the host: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != DefaultSandboxUID || st.Gid != DefaultSandboxGID {
		t.Errorf("got owner %d:%d, want %d:%d", st.Uid, st.Gid, DefaultSandboxUID, DefaultSandboxGID)
	}
	wfi, err := os.Stat(ws)
	if err != nil {
		t.Fatal(err)
	}
	if wfi.Mode().Perm() != 0o700 || wfi.Sys().(*syscall.Stat_t).Uid != DefaultSandboxUID {
		t.Errorf("got workspace mode %v uid %d, want 0700 owned by %d", wfi.Mode().Perm(), wfi.Sys().(*syscall.Stat_t).Uid, DefaultSandboxUID)
	}
}

func TestRunLimits(t *testing.T) {
	m := newTestManager(t)
	t.Run("timeout", func(t *testing.T) {
		// TERM reaches a command without a handler (it is not the
		// namespace's init: package pid1), well before the grace ends.
		p := testProfile()
		p.Timeout, p.KillGrace = 200*time.Millisecond, 10*time.Second
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sleep", "60"}, Profile: p})
		if got.EndedBy != EndedTimeout || got.Signal != "SIGTERM" || got.Duration > 5*time.Second {
			t.Errorf("got ended %q signal %q after %v, want timeout SIGTERM before the grace", got.EndedBy, got.Signal, got.Duration)
		}
	})
	t.Run("timeout TERM ignored", func(t *testing.T) {
		p := testProfile()
		p.Timeout, p.KillGrace = 200*time.Millisecond, 300*time.Millisecond
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "trap '' TERM; sleep 60"}, Profile: p})
		if got.EndedBy != EndedTimeout || got.Signal != "SIGKILL" || got.Duration < 500*time.Millisecond {
			t.Errorf("got ended %q signal %q after %v, want timeout SIGKILL after the grace", got.EndedBy, got.Signal, got.Duration)
		}
	})
	t.Run("timeout TERM honoured", func(t *testing.T) {
		p := testProfile()
		p.Timeout, p.KillGrace = 300*time.Millisecond, 5*time.Second
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "trap 'echo term; exit 7' TERM; while :; do sleep 0.05; done"}, Profile: p})
		if got.EndedBy != EndedTimeout || got.ExitCode != 7 || got.Stdout != "term\n" {
			t.Errorf("got ended %q exit %d stdout %q, want timeout exit 7 term", got.EndedBy, got.ExitCode, got.Stdout)
		}
	})
	t.Run("memory", func(t *testing.T) {
		p := testProfile()
		p.MemoryBytes = 32 << 20
		got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/python3", "-c", "b = []\nwhile True: b.append(bytearray(1 << 20))"}, Profile: p})
		if got.EndedBy != EndedMemory {
			t.Errorf("got ended %q exit %d signal %q, want memory", got.EndedBy, got.ExitCode, got.Signal)
		}
	})
	t.Run("pids", func(t *testing.T) {
		p := testProfile()
		p.Pids = 8
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait"}, Profile: p})
		if got.EndedBy != EndedPids {
			t.Errorf("got ended %q exit %d stderr %q, want pids", got.EndedBy, got.ExitCode, got.Stderr)
		}
	})
	t.Run("output cap kills", func(t *testing.T) {
		p := testProfile()
		p.MaxOutputBytes = 10000
		got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/yes"}, Profile: p})
		if got.EndedBy != EndedOutput || got.StdoutBytes != 10000 || !got.StdoutTruncated || len(got.Stdout) != 10000 {
			t.Errorf("got ended %q, %d bytes (%d captured), truncated %v; want output, 10000, true", got.EndedBy, got.StdoutBytes, len(got.Stdout), got.StdoutTruncated)
		}
	})
	t.Run("output cap keep", func(t *testing.T) {
		p := testProfile()
		p.MaxOutputBytes, p.KeepOnOutputCap = 100, true
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "head -c 100000 /dev/zero; echo done >&2; exit 3"}, Profile: p})
		if got.EndedBy != EndedExit || got.ExitCode != 3 || got.StdoutBytes != 100 || !got.StdoutTruncated {
			t.Errorf("got ended %q exit %d, %d bytes, truncated %v; want exit 3 with 100 bytes truncated", got.EndedBy, got.ExitCode, got.StdoutBytes, got.StdoutTruncated)
		}
	})
}

func TestRunCancel(t *testing.T) {
	m := newTestManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res, err := m.Run(ctx, Spec{Argv: []string{"/bin/sleep", "30"}, Profile: testProfile()})
	if err != nil {
		t.Fatal(err)
	}
	if res.EndedBy != EndedKilled || res.Signal != "SIGKILL" {
		t.Errorf("got ended %q signal %q, want killed SIGKILL", res.EndedBy, res.Signal)
	}
	if left := runLeftovers(m); len(left) > 0 {
		t.Errorf("leftovers: %v", left)
	}
}

// slowWriter accepts a few bytes per write after a pause.
type slowWriter struct {
	n     atomic.Int64
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// TestRunBackpressure checks that a slow reader makes the command block:
// the command writes as fast as it can for the whole run, yet what it got
// to write is bounded by what the reader took plus the pipe and one chunk.
func TestRunBackpressure(t *testing.T) {
	m := newTestManager(t)
	p := testProfile()
	p.Timeout, p.KillGrace = 1500*time.Millisecond, 100*time.Millisecond
	p.MaxOutputBytes = 1 << 30
	w := &slowWriter{delay: 100 * time.Millisecond}
	// The command counts what it managed to write to stdout on stderr.
	script := `i=0; while :; do head -c 4096 /dev/zero || exit; i=$((i+1)); echo $i >&2; done`
	var errb strings.Builder
	res, err := m.Run(context.Background(), Spec{Argv: []string{"/bin/sh", "-c", script}, Profile: p, Stdout: w, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(errb.String())
	written := int64(0)
	if len(fields) > 0 {
		n, _ := strconv.Atoi(fields[len(fields)-1])
		written = int64(n) * 4096
	}
	read := w.n.Load()
	if res.EndedBy != EndedTimeout {
		t.Errorf("got ended %q, want timeout", res.EndedBy)
	}
	// pipe buffer (64 KiB) + one copier chunk (32 KiB) + one 4 KiB block in flight
	if bound := read + 64<<10 + 32<<10 + 4096; written > bound {
		t.Errorf("command wrote %d bytes while the reader took %d: not back-pressured (bound %d)", written, read, bound)
	}
}

func TestRunOutputRate(t *testing.T) {
	m := newTestManager(t)
	p := testProfile()
	p.OutputRate = 20000
	start := time.Now()
	got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/head", "-c", "30000", "/dev/zero"}, Profile: p})
	if got.StdoutBytes != 30000 {
		t.Fatalf("got %d bytes, want 30000", got.StdoutBytes)
	}
	// Pacing, not a timing benchmark: 30000 bytes at 20000 B/s cannot be
	// delivered in less than a second.
	if d := time.Since(start); d < time.Second {
		t.Errorf("30000 bytes at 20000 B/s took %v, want at least 1s", d)
	}
}

func TestRunConcurrent(t *testing.T) {
	m := newTestManager(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out strings.Builder
			res, err := m.Run(context.Background(), Spec{ID: fmt.Sprintf("par%d", i), Argv: []string{"/bin/echo", strconv.Itoa(i)}, Profile: testProfile(), Stdout: &out})
			switch {
			case err != nil:
				errs <- err
			case res.ExitCode != 0 || out.String() != strconv.Itoa(i)+"\n":
				errs <- fmt.Errorf("run %d: got exit %d out %q", i, res.ExitCode, out.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if left := runLeftovers(m); len(left) > 0 {
		t.Errorf("leftovers: %v", left)
	}
}

func TestRunRefusals(t *testing.T) {
	m := newTestManager(t)
	tests := []struct {
		name string
		mod  func(*Spec)
		want error
	}{
		{"relative argv", func(s *Spec) { s.Argv = []string{"echo"} }, ErrBadSpec},
		{"empty argv", func(s *Spec) { s.Argv = nil }, ErrBadSpec},
		{"bad id", func(s *Spec) { s.ID = "../x" }, ErrBadSpec},
		{"environment too big", func(s *Spec) { s.Env = []string{"A=" + strings.Repeat("x", 9<<20)} }, ErrBadSpec},
		{"zero memory", func(s *Spec) { s.Profile.MemoryBytes = 0 }, ErrBadSpec},
		{"tty not allowed", func(s *Spec) { s.TTY = true }, ErrBadSpec},
		{"reserved target", func(s *Spec) {
			s.Mounts = []policy.Mount{{Source: "/usr/share", Target: "/etc/x", ReadOnly: true}}
		}, ErrBadSpec},
		{"unknown seccomp", func(s *Spec) { s.Profile.Seccomp = "nope" }, ErrSeccompProfile},
		{"nested targets", func(s *Spec) {
			s.Mounts = []policy.Mount{{Source: "/usr/share", Target: "/data", ReadOnly: true}, {Source: "/usr/lib", Target: "/data/lib", ReadOnly: true}}
		}, ErrBadSpec},
		{"symlinked source", func(s *Spec) {
			s.Mounts = []policy.Mount{{Source: "/bin", Target: "/data", ReadOnly: true}}
		}, ErrBadSpec},
		{"disk full", func(s *Spec) { m.cfg.MinFreeBytes = 1 << 62 }, ErrDiskFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(v uint64) { m.cfg.MinFreeBytes = v }(m.cfg.MinFreeBytes)
			s := Spec{Argv: []string{"/bin/true"}, Profile: testProfile()}
			tt.mod(&s)
			_, err := m.Run(context.Background(), s)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRunStartFailureLeavesNothing(t *testing.T) {
	m := newTestManager(t)
	for _, argv := range [][]string{{"/usr/bin/does-not-exist"}, {"/etc/hosts"}} {
		_, err := m.Run(context.Background(), Spec{Argv: argv, Profile: testProfile()})
		var se *StartError
		if !errors.As(err, &se) || !errors.Is(err, ErrStart) {
			t.Errorf("%v: got %v, want a *StartError", argv, err)
		} else if se.Attempts != 1 {
			t.Errorf("%v: got %d attempts, want 1 (not the transient kind)", argv, se.Attempts)
		}
		if left := runLeftovers(m); len(left) > 0 {
			t.Errorf("%v: leftovers after a failed start: %v", argv, left)
		}
	}
	// The Manager still works afterwards.
	if got := runSpec(t, m, Spec{Argv: []string{"/bin/true"}}); got.ExitCode != 0 {
		t.Errorf("run after failed starts: exit %d", got.ExitCode)
	}
	if z := zombieChildren(t); len(z) > 0 {
		t.Errorf("unreaped children after failed starts: %v", z)
	}
}

// zombieChildren lists this process's children in state Z.
func zombieChildren(t testing.TB) []string {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var out []string
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(data)) {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			// "pid (comm) S ...": the state follows the last ')'.
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				out = append(out, pid)
			}
		}
	}
	return out
}

func TestRunUmaskAndNetwork(t *testing.T) {
	m := newTestManager(t)
	got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "umask; hostname"}})
	if got.Stdout != "0077\nsandbox\n" {
		t.Errorf("got %q, want umask 0077 and hostname sandbox", got.Stdout)
	}
	// A listener and a client on 127.0.0.1 inside the sandbox: works only
	// when the profile brings loopback up.
	script := "import socket\ntry:\n s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\n c=socket.create_connection(s.getsockname(), timeout=2); print('up')\nexcept OSError as e:\n print('down', e.errno)\n"
	for _, tt := range []struct {
		network policy.Network
		want    string
	}{
		{policy.NetworkNone, "down 101\n"}, // ENETUNREACH: lo is down
		{policy.NetworkLoopback, "up\n"},
	} {
		p := testProfile()
		p.Network = tt.network
		got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/python3", "-c", script}, Profile: p})
		if got.Stdout != tt.want {
			t.Errorf("network %s: got %q (stderr %q), want %q", tt.network, got.Stdout, got.Stderr, tt.want)
		}
	}
}

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox/pid1"
)

// These tests check the containers' PID 1 (package pid1) through real
// runs: signals reach the command, its exact end is reported, PID 1
// cannot be attacked by the command, and a broken filter never lets the
// command run.

// readyWriter collects output and closes ready once it contains marker.
type readyWriter struct {
	mu     sync.Mutex
	b      strings.Builder
	marker string
	ready  chan struct{}
	once   sync.Once
}

func newReadyWriter(marker string) *readyWriter {
	return &readyWriter{marker: marker, ready: make(chan struct{})}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.marker) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitReady waits for the marker (or fails the test after a minute).
func (w *readyWriter) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-w.ready:
	case <-time.After(time.Minute):
		t.Fatalf("the command never printed %q; output %q", w.marker, w.String())
	}
}

// TestPID1ExitStatus: exit codes and deaths by signal of the command are
// reported exactly, through PID 1's status record.
func TestPID1ExitStatus(t *testing.T) {
	m := newTestManager(t)
	tests := []struct {
		name   string
		script string
		code   int
		signal string
	}{
		{"exit 0", "exit 0", 0, ""},
		{"exit 1", "exit 1", 1, ""},
		{"exit 42", "exit 42", 42, ""},
		{"exit 255", "exit 255", 255, ""},
		{"SIGSEGV", "kill -SEGV $$", -1, "SIGSEGV"},
		{"SIGKILL", "kill -KILL $$", -1, "SIGKILL"},
		{"background child left running", "/bin/sleep 313.7 & exit 3", 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runSpec(t, m, Spec{ID: "exit", Argv: []string{"/bin/sh", "-c", tt.script}})
			if got.ExitCode != tt.code || got.Signal != tt.signal || got.EndedBy != EndedExit {
				t.Errorf("got exit %d signal %q ended %q (stderr %q), want exit %d signal %q ended exit",
					got.ExitCode, got.Signal, got.EndedBy, got.Stderr, tt.code, tt.signal)
			}
		})
	}
	// The background sleep died with the namespace when the command ended.
	if left := leftoverProcs(m.cfg.CgroupParent); len(left) > 0 {
		t.Errorf("processes left after the runs: %v", left)
	}
}

// TestPID1Signal: Manager.Signal's INT, TERM and HUP reach a command
// without handlers and end it with that signal.
func TestPID1Signal(t *testing.T) {
	m := newTestManager(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			out := newReadyWriter("ready")
			done := make(chan Result, 1)
			go func() {
				res, err := m.Run(context.Background(), Spec{ID: "pid1-sig", Argv: []string{"/bin/sh", "-c", "echo ready; exec /bin/sleep 60"}, Stdout: out, Profile: testProfile()})
				if err != nil {
					t.Error(err)
				}
				done <- res
			}()
			out.waitReady(t)
			time.Sleep(50 * time.Millisecond) // let the exec of sleep happen
			if err := m.Signal("pid1-sig", sig); err != nil {
				t.Fatal(err)
			}
			res := <-done
			if res.Signal != unixSignalName(sig) || res.EndedBy != EndedExit {
				t.Errorf("got signal %q ended %q, want %s, exit", res.Signal, res.EndedBy, unixSignalName(sig))
			}
		})
	}
}

func unixSignalName(s syscall.Signal) string { return signalName(s) }

// TestPID1Attacks: the command sees PID 1 but cannot read its memory,
// files or environment, trace it, kill it or stop it; PID 1's command
// line (world-readable, on the host too) holds no environment value.
func TestPID1Attacks(t *testing.T) {
	m := newTestManager(t)
	script := `tr '\0' '\n' </proc/1/cmdline | head -n 4 | tr '\n' ' '; echo
for f in mem environ maps; do if cat /proc/1/$f >/dev/null 2>&1; then echo "read /proc/1/$f"; fi; done
if ls /proc/1/fd >/dev/null 2>&1; then echo "listed /proc/1/fd"; fi
if readlink /proc/1/exe >/dev/null 2>&1; then echo "read /proc/1/exe"; fi
if grep -q "hunt""er2" /proc/1/cmdline; then echo "secret in /proc/1/cmdline"; fi
kill -KILL 1; kill -STOP 1
sleep 0.2
grep '^State:' /proc/1/status
python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print("ptrace", l.ptrace(16, 1, 0, 0), ctypes.get_errno())'
echo alive`
	got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", script}, Env: []string{"TOKEN=hunter2"}})
	want := pid1.Path + " pipe -- /bin/sh "
	lines := strings.Split(got.Stdout, "\n")
	if lines[0] != want {
		t.Errorf("PID 1's command line: got %q, want %q", lines[0], want)
	}
	rest := strings.Join(lines[1:], "\n")
	if rest != "State:\tS (sleeping)\nptrace -1 1\nalive\n" || got.ExitCode != 0 {
		t.Errorf("got exit %d output\n%s\nwant PID 1 sleeping, ptrace EPERM, alive (stderr %q)", got.ExitCode, rest, got.Stderr)
	}
}

// TestPID1EnvironmentNotInherited: the command's environment does not
// reach PID 1's dynamic loader (LD_PRELOAD would run code in PID 1 before
// its filter). ld.so reports an unloadable LD_PRELOAD object once per
// process that sees the variable: only the command may.
func TestPID1EnvironmentNotInherited(t *testing.T) {
	m := newTestManager(t)
	got := runSpec(t, m, Spec{Argv: []string{"/bin/true"}, Env: []string{"LD_PRELOAD=/nonexistent/evil.so"}})
	if n := strings.Count(got.Stderr, "evil.so"); n != 1 || got.ExitCode != 0 {
		t.Errorf("got %d loader complaints, exit %d (stderr %q), want 1 (the command's own)", n, got.ExitCode, got.Stderr)
	}
}

// TestPID1BrokenFilter: a missing, empty, ragged or invalid program makes
// the start fail with a clear error, and the command never runs (it would
// leave a marker in the workspace).
func TestPID1BrokenFilter(t *testing.T) {
	m := newTestManager(t)
	ws := filepath.Join(filepath.Dir(m.cfg.StateRoot), "ws", "filter")
	mounts := []policy.Mount{{Root: "workspace", Source: ws, Target: "/work", Workspace: true}}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	tests := []struct {
		name  string
		file  *os.File
		stage pid1.Stage
	}{
		{"not a file", devNull, pid1.StageFilterRead},
		{"empty", memfdOf(t, nil), pid1.StageFilterSize},
		{"ragged", memfdOf(t, make([]byte, 13)), pid1.StageFilterSize},
		{"invalid program", memfdOf(t, []byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}), pid1.StageChildFilter},
	}
	p := testProfile()
	if _, err := m.seccompFor(&p); err != nil {
		t.Fatal(err)
	}
	good := m.seccompCache[SeccompDefault]
	defer func() { m.seccompCache[SeccompDefault] = good }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.seccompCache[SeccompDefault] = &seccompProgram{file: tt.file}
			var stderr strings.Builder
			_, err := m.Run(context.Background(), Spec{Argv: []string{"/usr/bin/touch", "/work/ran"}, Mounts: mounts, Profile: p, Stderr: &stderr})
			var pe *pid1.Error
			if !errors.Is(err, ErrStart) || !errors.As(err, &pe) {
				t.Fatalf("got %v, want a start error from PID 1", err)
			}
			if pe.Stage != tt.stage && !(tt.stage == pid1.StageChildFilter && pe.Stage == pid1.StageFilter) {
				t.Errorf("got stage %s, want %s", pe.Stage, tt.stage)
			}
			if !strings.Contains(err.Error(), "sandbox init: "+pe.Stage.String()) || !strings.HasPrefix(stderr.String(), "execgate init: ") {
				t.Errorf("error %q / stderr %q do not name the failing stage", err, stderr.String())
			}
			if _, err := os.Stat(filepath.Join(ws, "ran")); err == nil {
				t.Fatal("the command ran without its filter")
			}
			if left := runLeftovers(m); len(left) > 0 {
				t.Errorf("leftovers after a failed start: %v", left)
			}
		})
	}
	m.seccompCache[SeccompDefault] = good
	if got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/touch", "/work/ran"}, Mounts: mounts}); got.ExitCode != 0 {
		t.Fatalf("control run: exit %d, stderr %q", got.ExitCode, got.Stderr)
	}
	if _, err := os.Stat(filepath.Join(ws, "ran")); err != nil {
		t.Errorf("control run left no marker: %v", err)
	}
}

func memfdOf(t *testing.T, data []byte) *os.File {
	t.Helper()
	f, err := sealedMemfd("test-filter", data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPID1ExecFailure: a command that cannot be executed is a start error
// naming execve and the errno.
func TestPID1ExecFailure(t *testing.T) {
	m := newTestManager(t)
	_, err := m.Run(context.Background(), Spec{Argv: []string{"/usr/bin/does-not-exist"}, Profile: testProfile()})
	if !errors.Is(err, ErrStart) || !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "sandbox init: execve: no such file or directory") {
		t.Errorf("got %v, want a start error: sandbox init: execve: no such file or directory", err)
	}
}

// TestPID1TTYSignals: on a terminal the command is the foreground process
// group: Ctrl-C written to the terminal interrupts it, and a resize sends
// it SIGWINCH.
func TestPID1TTYSignals(t *testing.T) {
	m := newTestManager(t)
	p := testProfile()
	p.TTY = true
	t.Run("ctrl-c", func(t *testing.T) {
		out := newReadyWriter("ready")
		pr, pw := io.Pipe()
		defer pw.Close()
		done := make(chan Result, 1)
		go func() {
			res, err := m.Run(context.Background(), Spec{Argv: []string{"/bin/sh", "-c", "echo ready; exec /bin/sleep 60"}, Profile: p, TTY: true, Stdin: pr, Stdout: out})
			pr.Close()
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		out.waitReady(t)
		time.Sleep(50 * time.Millisecond) // let the exec of sleep happen
		if _, err := pw.Write([]byte{0x03}); err != nil {
			t.Fatal(err)
		}
		if res := <-done; res.Signal != "SIGINT" {
			t.Errorf("got exit %d signal %q (output %q), want SIGINT", res.ExitCode, res.Signal, out.String())
		}
	})
	t.Run("winch", func(t *testing.T) {
		out := newReadyWriter("ready")
		resize := make(chan WindowSize, 1)
		done := make(chan Result, 1)
		go func() {
			res, err := m.Run(context.Background(), Spec{
				Argv:    []string{"/bin/sh", "-c", "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done"},
				Profile: p, TTY: true, Resize: resize, Stdout: out,
			})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		out.waitReady(t)
		resize <- WindowSize{Rows: 40, Cols: 100}
		res := <-done
		if res.ExitCode != 0 || !strings.Contains(out.String(), "40 100\r\n") {
			t.Errorf("got exit %d output %q, want the new size from the WINCH trap", res.ExitCode, out.String())
		}
	})
}

// TestPID1CustomProfileNeeds: a custom seccomp profile that would leave
// PID 1 unable to supervise the command (no wait4 here) is refused by
// name, before anything starts.
func TestPID1CustomProfileNeeds(t *testing.T) {
	m := newTestManager(t)
	data, err := json.Marshal(SeccompFile{Allow: subtract(defaultAllowKnown(), []string{"wait4"})})
	if err != nil {
		t.Fatal(err)
	}
	p := testProfile()
	p.Seccomp, p.SeccompFile, p.SeccompData = "nowait", "/etc/execgate/nowait.json", data
	_, err = m.Run(context.Background(), Spec{Argv: []string{"/bin/true"}, Profile: p})
	if !errors.Is(err, ErrSeccompProfile) || !strings.Contains(err.Error(), "wait4") {
		t.Errorf("got %v, want ErrSeccompProfile naming wait4", err)
	}
}

// TestPID1ReapsOrphans: orphans that end while the command runs are
// reaped by PID 1 at once; none stays a zombie (each would hold a slot of
// the pids limit).
func TestPID1ReapsOrphans(t *testing.T) {
	m := newTestManager(t)
	script := `for i in 1 2 3 4 5 6 7 8; do ( /bin/true & ); done
sleep 0.5
echo "zombies=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)"`
	got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", script}})
	if got.ExitCode != 0 || got.Stdout != "zombies=0\n" {
		t.Errorf("got exit %d output %q (stderr %q), want no zombie", got.ExitCode, got.Stdout, got.Stderr)
	}
}

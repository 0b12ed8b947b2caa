package sandbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// TestAttackConcurrentIsolation runs bob's long command (which also makes
// a System V shared memory segment and message queue) and, while it runs,
// lets alice look for it in /proc and in IPC, and signal the host: another
// run's processes and IPC objects and the host's pids are out of reach.
func TestAttackConcurrentIsolation(t *testing.T) {
	s := suite(t)
	// Control: inside one run, an IPC object is visible to its maker.
	if out := s.sh(t, runOpts{user: "carol"}, "ipcmk -M 4096 >/dev/null && ipcs -m | grep -c '^0x'"); strings.TrimSpace(out.stdout) != "1" {
		t.Fatalf("control: System V IPC does not work inside a sandbox: %v", out)
	}
	marker := leftoverMarker + "5"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		spec := Spec{
			ID: fmt.Sprintf("atk-%d-%d", os.Getpid(), runSeq.Add(1)), Subject: "bob",
			Argv: []string{"/bin/sh", "-c", "ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null; exec sleep " + marker},
			Env:  []string{"PATH=/usr/bin:/bin"}, Cwd: "/",
			Profile: attackProfile(),
		}
		_, _ = s.mgr.Run(ctx, spec)
	})
	// Wait until bob's sleep runs on the host.
	deadline := time.Now().Add(10 * time.Second)
	for len(markedProcs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(markedProcs()) == 0 {
		cancel()
		wg.Wait()
		t.Fatal("bob's command never started")
	}
	host := os.Getpid()
	script := fmt.Sprintf(`cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' '; echo; echo "NPROC=$(ls /proc | grep -c '^[0-9]')"
kill -0 %d 2>&1 || echo HOST-PID-UNREACHABLE; ipcs -m -q | grep -c '^0x' | sed 's/^/IPC=/'; echo done`, host)
	out := s.sh(t, runOpts{user: "alice", concurrent: true}, script)
	cancel()
	wg.Wait()
	if strings.Contains(out.stdout, marker) {
		t.Errorf("alice sees bob's process: %v", out)
	}
	if !strings.Contains(out.stdout, "HOST-PID-UNREACHABLE") {
		t.Errorf("a host pid (%d) answered a signal from inside: %v", host, out)
	}
	if !strings.Contains(out.stdout, "IPC=0") {
		t.Errorf("alice sees System V IPC objects (bob made a shared memory segment and a queue): %v", out)
	}
	// sh, cat, tr and ls at most: the shell's own pipeline.
	for _, l := range lines(out.stdout) {
		if n, ok := strings.CutPrefix(l, "NPROC="); ok && len(n) != 1 {
			t.Errorf("alice's /proc lists %s processes, want only her own few: %v", n, out)
		}
	}
}

// TestAttackDiskFill fills /tmp, the workspace (with a size cap) and one
// file past RLIMIT_FSIZE: each write stops at its limit.
func TestAttackDiskFill(t *testing.T) {
	s := suite(t)
	t.Run("tmp", func(t *testing.T) {
		out := s.sh(t, runOpts{}, "head -c 64M /dev/zero > /tmp/fill; echo rc=$?; du -k /tmp/fill | cut -f1")
		if !strings.Contains(out.stderr, "No space left on device") {
			t.Errorf("filling /tmp (16 MiB) did not hit ENOSPC: %v", out)
		}
	})
	t.Run("fsize", func(t *testing.T) {
		o := runOpts{profile: func(p *policy.Profile) { p.FileSizeBytes = 1 << 20 }}
		out := s.sh(t, o, "head -c 4M /dev/zero > /tmp/big; echo rc=$?; wc -c < /tmp/big")
		if ls := lines(out.stdout); len(ls) < 2 || ls[len(ls)-1] != "1048576" {
			t.Errorf("file grew past RLIMIT_FSIZE (1 MiB): %v", out)
		}
	})
	t.Run("workspace", func(t *testing.T) {
		o := runOpts{user: "filler", profile: func(p *policy.Profile) { p.WorkspaceBytes = 8 << 20 }}
		out := s.run(t, o, "/bin/sh", "-c", "head -c 32M /dev/zero > /work/fill; echo rc=$?; wc -c < /work/fill; rm -f /work/fill")
		if out.err != nil {
			t.Fatalf("run with a workspace size limit: %v", out)
		}
		if !strings.Contains(out.stderr, "No space left on device") && !strings.Contains(out.stderr, "Disk quota exceeded") {
			t.Errorf("filling an 8 MiB workspace did not hit ENOSPC/EDQUOT: %v", out)
		}
	})
}

// TestAttackCPUBurn spins past RLIMIT_CPU: the result says cpu.
func TestAttackCPUBurn(t *testing.T) {
	s := suite(t)
	o := runOpts{profile: func(p *policy.Profile) {
		p.CPUSeconds = 1
		p.Timeout = time.Minute // two CPU seconds may take long on a loaded machine
	}}
	out := s.sh(t, o, "while :; do :; done")
	if out.res.EndedBy != EndedCPU {
		t.Errorf("ended by %q, want %q: %+v", out.res.EndedBy, EndedCPU, out.res)
	}
}

// TestAttackStderrFlood floods stderr: the cap is on both streams together.
func TestAttackStderrFlood(t *testing.T) {
	s := suite(t)
	const capBytes = 32 << 10
	o := runOpts{profile: func(p *policy.Profile) { p.MaxOutputBytes = capBytes }}
	out := s.sh(t, o, "yes out & yes err >&2")
	if out.res.EndedBy != EndedOutput {
		t.Errorf("ended by %q, want %q: %+v", out.res.EndedBy, EndedOutput, out.res)
	}
	if n := int64(len(out.stdout) + len(out.stderr)); n > capBytes {
		t.Errorf("delivered %d bytes on both streams, cap %d", n, capBytes)
	}
}

// TestAttackBadStarts asks for commands that cannot start: each Run
// returns (an error or a failed result), and nothing of the container is
// left behind at once, not only at the end of the suite.
func TestAttackBadStarts(t *testing.T) {
	s := suite(t)
	cases := []struct {
		name string
		argv []string
		cwd  string
	}{
		{"missing binary", []string{"/nonexistent/binary"}, "/"},
		{"directory", []string{"/usr/bin"}, "/"},
		{"not executable", []string{"/etc/hosts"}, "/"},
		{"noexec tmp", []string{"/tmp"}, "/"},
		{"missing cwd", []string{"/bin/true"}, "/nonexistent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := s.mgr.Run(t.Context(), Spec{
				ID: fmt.Sprintf("atk-%d-%d", os.Getpid(), runSeq.Add(1)), Subject: "alice",
				Argv: c.argv, Env: []string{"PATH=/usr/bin:/bin"}, Cwd: c.cwd, Profile: attackProfile(),
			})
			if err == nil && res.ExitCode == 0 {
				t.Errorf("%v in %s: succeeded: %+v", c.argv, c.cwd, res)
			}
			if left := attackRunLeftovers(s.cfg); len(left) > 0 {
				t.Errorf("left behind after a failed start: %v", left)
			}
		})
	}
}

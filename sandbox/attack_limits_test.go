package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// cgroupRunDirs lists the run cgroups currently under the suite's parent
// in one v1 hierarchy.
func cgroupRunDirs(parent, controller string) []string {
	var out []string
	root := filepath.Join("/sys/fs/cgroup", controller, parent)
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestAttackForkBomb runs a fork bomb and watches the container's pids
// cgroup from the host: it never exceeds the limit, the run ends, and the
// host can still start processes afterwards.
func TestAttackForkBomb(t *testing.T) {
	s := suite(t)
	const limit = 32
	o := runOpts{user: "bomber", profile: func(p *policy.Profile) {
		p.Pids = limit
		p.Timeout = 3 * time.Second
	}}
	ctx, cancel := context.WithCancel(t.Context())
	var peak int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, d := range cgroupRunDirs(s.cfg.CgroupParent, "pids") {
				b, err := os.ReadFile(filepath.Join(d, "pids.current"))
				if n, err2 := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && err2 == nil {
					peak = max(peak, n)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Re-ignited every 0.2 s: PID 1 reaps zombies at once, so a bomb whose
	// forks all fail at the limit can die out between two samples.
	out := s.sh(t, o, `b(){ b | b & }; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do b; sleep 0.2; done; sleep 10`)
	cancel()
	wg.Wait()
	t.Logf("fork bomb: ended_by=%s exit=%d peak pids.current=%d", out.res.EndedBy, out.res.ExitCode, peak)
	if out.res.EndedBy != EndedPids && out.res.EndedBy != EndedTimeout {
		t.Errorf("ended by %q, want %q or %q", out.res.EndedBy, EndedPids, EndedTimeout)
	}
	// The cgroup's limit is the profile's plus one for the container's
	// PID 1 (package pid1).
	if peak > limit+1 {
		t.Errorf("pids.current peaked at %d, limit %d (+1 for PID 1)", peak, limit)
	}
	if peak < limit/2 {
		t.Errorf("pids.current peaked at %d only: the bomb did not run or was not observed", peak)
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Errorf("the host cannot start a process after the fork bomb: %v", err)
	}
	// A normal run still works.
	if out := s.sh(t, runOpts{}, "echo alive"); strings.TrimSpace(out.stdout) != "alive" {
		t.Errorf("sandbox after the fork bomb: %v", out)
	}
}

// TestAttackForkFailure starts more background processes than the pids
// limit allows; the shell's fork fails, it exits non-zero, and the result
// says pids (read from the cgroup's own pids.events).
func TestAttackForkFailure(t *testing.T) {
	s := suite(t)
	o := runOpts{profile: func(p *policy.Profile) { p.Pids = 8 }}
	out := s.sh(t, o, "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do sleep 5 & done; wait")
	if out.res.EndedBy != EndedPids || out.res.ExitCode == 0 {
		t.Errorf("got ended_by %q exit %d, want %q and a failed command: %v", out.res.EndedBy, out.res.ExitCode, EndedPids, out)
	}
}

// TestAttackMemoryHog touches more memory than the profile allows.
func TestAttackMemoryHog(t *testing.T) {
	s := suite(t)
	o := runOpts{profile: func(p *policy.Profile) { p.MemoryBytes = 48 << 20 }}
	out := s.run(t, o, s.probePath, "hog", "512")
	if out.err != nil {
		t.Fatalf("run: %v", out)
	}
	if out.res.EndedBy != EndedMemory {
		t.Errorf("ended by %q, want %q: %v", out.res.EndedBy, EndedMemory, out)
	}
	if out.res.ExitCode == 0 || strings.Contains(out.stdout, "touched 512") {
		t.Errorf("the hog finished: %v", out)
	}
}

// TestAttackTimeout sleeps past the timeout, once politely and once
// ignoring SIGTERM (then KILL must follow after the grace).
func TestAttackTimeout(t *testing.T) {
	s := suite(t)
	for name, script := range map[string]string{
		"sleep":        "sleep 60",
		"ignore-term":  `trap "" TERM; sleep 60; sleep 60`,
		"term-handler": `trap 'echo got-term; exit 3' TERM; sleep 60 & wait`,
	} {
		t.Run(name, func(t *testing.T) {
			o := runOpts{profile: func(p *policy.Profile) {
				p.Timeout = time.Second
				p.KillGrace = 500 * time.Millisecond
			}}
			start := time.Now()
			out := s.sh(t, o, script)
			took := time.Since(start)
			if out.res.EndedBy != EndedTimeout {
				t.Errorf("ended by %q, want %q: %v", out.res.EndedBy, EndedTimeout, out)
			}
			if out.res.ExitCode == 0 {
				t.Errorf("exit code 0 after a timeout: %v", out)
			}
			if took > 20*time.Second {
				t.Errorf("Run returned after %v: the kill did not happen", took)
			}
			if name == "term-handler" && (!strings.Contains(out.stdout, "got-term") || out.res.ExitCode != 3) {
				t.Errorf("the command's TERM handler did not run before the kill: %v", out)
			}
		})
	}
}

// cappedWriter counts what reaches the caller.
type cappedWriter struct {
	mu sync.Mutex
	n  int64
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += int64(len(p))
	w.mu.Unlock()
	return len(p), nil
}

// TestAttackOutputFlood floods stdout: the run is killed at the cap (or,
// with KeepOnOutputCap, runs on and the rest is discarded) and no more
// than the cap reaches the caller.
func TestAttackOutputFlood(t *testing.T) {
	s := suite(t)
	const capBytes = 64 << 10
	t.Run("kill", func(t *testing.T) {
		w := &cappedWriter{}
		o := runOpts{stdout: w, profile: func(p *policy.Profile) { p.MaxOutputBytes = capBytes }}
		out := s.run(t, o, "/usr/bin/yes", "flood")
		if out.err != nil {
			t.Fatalf("run: %v", out)
		}
		if out.res.EndedBy != EndedOutput {
			t.Errorf("ended by %q, want %q: %+v", out.res.EndedBy, EndedOutput, out.res)
		}
		if !out.res.StdoutTruncated {
			t.Errorf("stdout not marked truncated: %+v", out.res)
		}
		if w.n > capBytes || out.res.StdoutBytes+out.res.StderrBytes > capBytes {
			t.Errorf("delivered %d bytes (result says %d+%d), cap %d", w.n, out.res.StdoutBytes, out.res.StderrBytes, capBytes)
		}
	})
	t.Run("keep", func(t *testing.T) {
		w := &cappedWriter{}
		o := runOpts{stdout: w, profile: func(p *policy.Profile) {
			p.MaxOutputBytes = capBytes
			p.KeepOnOutputCap = true
		}}
		out := s.run(t, o, "/usr/bin/head", "-c", "1048576", "/dev/zero")
		if out.err != nil {
			t.Fatalf("run: %v", out)
		}
		if out.res.EndedBy != EndedExit || out.res.ExitCode != 0 {
			t.Errorf("got ended_by %q exit %d, want exit 0: %+v", out.res.EndedBy, out.res.ExitCode, out.res)
		}
		if w.n != capBytes || !out.res.StdoutTruncated {
			t.Errorf("delivered %d bytes truncated=%v, want exactly %d and truncated", w.n, out.res.StdoutTruncated, capBytes)
		}
	})
}

// TestAttackBackgroundSurvivors starts processes meant to outlive the run:
// setsid in the background, a double-forked daemon, and one that ignores
// SIGHUP. After Run returns none of them may exist on the host.
func TestAttackBackgroundSurvivors(t *testing.T) {
	s := suite(t)
	// Control: a marked process on the host is seen.
	ctl := exec.Command("/bin/sleep", leftoverMarker+"9")
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	seen := len(markedProcs()) > 0
	_ = ctl.Process.Kill()
	_ = ctl.Wait()
	if !seen {
		t.Fatal("control: a marked host process was not found")
	}
	for name, script := range map[string]string{
		"setsid":      "setsid sleep " + leftoverMarker + "1 & echo started",
		"double-fork": `( setsid sh -c "sleep ` + leftoverMarker + `2 &" & ) ; echo started`,
		"nohup":       "nohup sleep " + leftoverMarker + "3 >/dev/null 2>&1 & echo started",
	} {
		t.Run(name, func(t *testing.T) {
			out := s.sh(t, runOpts{}, script)
			if !strings.Contains(out.stdout, "started") {
				t.Fatalf("script did not start: %v", out)
			}
			if left := markedProcs(); len(left) > 0 {
				t.Errorf("alive after Run returned: %v", left)
			}
		})
	}
}

// markedProcs lists host processes whose command line has the marker.
func markedProcs() []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmd := procCmdline(pid); strings.Contains(cmd, leftoverMarker) {
			out = append(out, fmt.Sprintf("%d %s", pid, cmd))
		}
	}
	return out
}

// TestAttackCancel cancels the caller's context mid-run: the result says
// killed (or the error says cancelled) and nothing survives.
func TestAttackCancel(t *testing.T) {
	s := suite(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	prof := attackProfile()
	spec := Spec{
		ID: fmt.Sprintf("atk-%d-%d", os.Getpid(), runSeq.Add(1)), Subject: "alice",
		Argv: []string{"/bin/sh", "-c", "sleep " + leftoverMarker + "4"}, Env: []string{"PATH=/usr/bin:/bin"},
		Cwd: "/", Profile: prof, Stdout: io.Discard, Stderr: io.Discard,
	}
	res, err := s.mgr.Run(ctx, spec)
	if err == nil && res.EndedBy != EndedKilled {
		t.Errorf("cancelled run: got ended_by %q, want %q", res.EndedBy, EndedKilled)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: error %v does not say cancelled", err)
	}
	if left := markedProcs(); len(left) > 0 {
		t.Errorf("alive after a cancelled Run returned: %v", left)
	}
}

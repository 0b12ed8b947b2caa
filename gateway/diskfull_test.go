package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/sandbox"
)

// TestExecDiskFull: while a file system the sandbox keeps a reserve on
// (here a filled 8 MiB tmpfs standing for the audit log's, passed as
// sandbox.Config.ReserveDirs as serve does) is below MinFreeBytes, /v1/exec
// answers 507 disk_full, nothing runs, and the refusal is audited.
func TestExecDiskFull(t *testing.T) {
	testSandbox(t) // skips without root, fails under CI
	full := t.TempDir()
	if err := unix.Mount("tmpfs", full, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=8m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(full, unix.MNT_DETACH) })
	filler, err := os.Create(filepath.Join(full, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(buf); err != nil {
			break // ENOSPC
		}
	}
	filler.Close()
	base := t.TempDir()
	mgr, err := sandbox.New(context.Background(), sandbox.Config{
		Instance:     fmt.Sprintf("gwdisk-%d", os.Getpid()),
		StateRoot:    filepath.Join(base, "state"),
		MinFreeBytes: 2 << 20,
		ReserveDirs:  []string{full},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	env := startServer(t, withRunner(mgr, nil))
	r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "echo", "args": []string{"x"}})
	if r.status != http.StatusInsufficientStorage || r.errCode() != CodeDiskFull {
		t.Fatalf("got %d %s, want 507 %s", r.status, r.body, CodeDiskFull)
	}
	var end map[string]any
	for _, l := range env.auditFor(r.header.Get("X-Request-Id")) {
		if l["type"] == "exec_end" {
			end = l
		}
	}
	if end == nil || end["error"] == nil || !containsStr(end["error"], "disk_full") {
		t.Errorf("exec_end %v, want one with the disk_full error", end)
	}
	// Space freed: the same request runs.
	if err := os.Remove(filepath.Join(full, "filler")); err != nil {
		t.Fatal(err)
	}
	r = env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "echo", "args": []string{"x"}})
	if r.status != http.StatusOK {
		t.Errorf("after freeing space: got %d %s, want 200", r.status, r.body)
	}
}

// TestExecDiskFullWhileRunning: a run whose workspace (a real 16 MiB tmpfs)
// falls below the reserve while it runs is killed by the sandbox's disk
// watcher: /v1/exec answers 200 with ended_by disk_full, exec_end records
// it, and the exec counter's outcome is disk_full.
func TestExecDiskFullWhileRunning(t *testing.T) {
	testSandbox(t) // skips without root, fails under CI
	base := t.TempDir()
	mgr, err := sandbox.New(context.Background(), sandbox.Config{
		Instance:     fmt.Sprintf("gwdiskw-%d", os.Getpid()),
		StateRoot:    filepath.Join(base, "state"),
		MinFreeBytes: 4 << 20,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	env := startServer(t, withRunner(mgr, nil))
	ws := filepath.Join(env.ws, "alice") // the policy's {{WS}}/{sub}
	if err := os.Mkdir(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", ws, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=16m,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ws, unix.MNT_DETACH) })
	done := make(chan response, 1)
	go func() {
		done <- env.do("POST", "/v1/exec", env.token("alice", "operator"), map[string]any{"command": "sleep", "args": []string{"17"}})
	}()
	waitForProcess(t, "/usr/bin/sleep\x0017\x00")
	// The host fills the workspace's file system below the 4 MiB reserve.
	if err := os.WriteFile(filepath.Join(ws, "filler"), make([]byte, 13<<20), 0o600); err != nil {
		t.Fatalf("fill the workspace file system: %v", err)
	}
	var r response
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run still goes 10 s after its workspace fell below the reserve")
	}
	if m := r.json(t); r.status != http.StatusOK || m["ended_by"] != "disk_full" {
		t.Fatalf("got %d %s, want 200 with ended_by disk_full", r.status, r.body)
	}
	var end map[string]any
	for _, l := range env.auditFor(r.header.Get("X-Request-Id")) {
		if l["type"] == "exec_end" {
			end = l
		}
	}
	if end == nil || end["ended_by"] != "disk_full" {
		t.Errorf("exec_end %v, want ended_by disk_full", end)
	}
}

// waitForProcess waits until a process's /proc/<pid>/cmdline is cmdline.
func waitForProcess(t *testing.T, cmdline string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(data) == cmdline {
				return
			}
		}
	}
	t.Fatalf("no process with command line %q after 10 s", cmdline)
}

func containsStr(v any, sub string) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, sub)
}

package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

func TestWorkspaceSizeLimit(t *testing.T) {
	m := newTestManager(t)
	ws := filepath.Join(filepath.Dir(m.cfg.StateRoot), "ws", "bob")
	p := testProfile()
	p.WorkspaceBytes = 8 << 20
	p.FileSizeBytes = 64 << 20
	mounts := []policy.Mount{{Root: "workspace", Source: ws, Target: "/work", Workspace: true}}
	got := runSpec(t, m, Spec{
		Argv:    []string{"/bin/sh", "-c", "head -c 20000000 /dev/zero > /work/big; echo rc=$?; echo keep > /work/small 2>/dev/null; ls -l /work/big | cut -d' ' -f5"},
		Mounts:  mounts,
		Profile: p,
	})
	if !strings.Contains(got.Stdout, "rc=1") || !strings.Contains(got.Stderr, "No space left on device") {
		t.Errorf("writing 20 MB into an 8 MiB workspace: got stdout %q stderr %q, want ENOSPC", got.Stdout, got.Stderr)
	}
	if !isMountPoint(ws) {
		t.Fatalf("workspace %s is not the image's mount point", ws)
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == ws && (!strings.Contains(f[5], "nosuid") || !strings.Contains(f[5], "nodev")) {
			t.Errorf("workspace image mounted with %s, want nosuid,nodev", f[5])
		}
	}
	// A second run sees the data of the first (same image, kept mounted).
	got = runSpec(t, m, Spec{Argv: []string{"/bin/ls", "/work"}, Mounts: mounts, Profile: p})
	if !strings.Contains(got.Stdout, "big") {
		t.Errorf("second run: got %q, want the first run's file", got.Stdout)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil { // idempotent: newTestManager's cleanup closes again
			t.Error(err)
		}
		if isMountPoint(ws) {
			t.Errorf("workspace image still mounted after Close")
		}
	})
}

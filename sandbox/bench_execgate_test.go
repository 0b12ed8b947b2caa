package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/execgate/execgate/policy"
)

// execgateLegName is the execgate leg's name in the table.
const execgateLegName = "execgate"

// newExecgateLeg prepares the execgate leg: a Manager of its own (state
// root in a temp directory, its own cgroup parent) and a workspace. Each
// run is a full Manager.Run of /bin/true with the default profile: fresh
// container, cgroups, namespaces, mounts, seccomp, and the teardown, all
// counted.
func newExecgateLeg(t *testing.T) (benchLeg, error) {
	base := t.TempDir()
	ws := filepath.Join(base, "work")
	if err := os.Mkdir(ws, 0o755); err != nil {
		return benchLeg{}, err
	}
	if err := os.Chown(ws, attackUID, attackUID); err != nil {
		return benchLeg{}, err
	}
	cfg := Config{
		Instance:     fmt.Sprintf("bench-%d", os.Getpid()),
		StateRoot:    filepath.Join(base, "state"),
		CgroupParent: fmt.Sprintf("/execgate-bench-%d", os.Getpid()),
	}
	mgr, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return benchLeg{}, fmt.Errorf("sandbox.New: %w", err)
	}
	t.Cleanup(func() {
		if err := mgr.Close(); err != nil {
			t.Errorf("close bench manager: %v", err)
		}
	})
	prof := benchProfile()
	mounts := []policy.Mount{{Root: "work", Source: ws, Target: attackWorkTarget, Workspace: true}}
	var seq atomic.Int64
	run := func(ctx context.Context) error {
		res, err := mgr.Run(ctx, Spec{
			ID:      fmt.Sprintf("bench-%d", seq.Add(1)),
			Subject: "bench",
			Argv:    []string{"/bin/true"},
			Env:     []string{"PATH=/usr/bin:/bin"},
			Cwd:     attackWorkTarget,
			Mounts:  mounts,
			Profile: prof,
			Stdout:  io.Discard,
			Stderr:  io.Discard,
		})
		if err != nil {
			return err
		}
		if res.ExitCode != 0 || res.EndedBy != EndedExit {
			return fmt.Errorf("/bin/true in the sandbox: %+v", res)
		}
		return nil
	}
	return benchLeg{
		name: execgateLegName,
		what: "sandbox.Manager.Run of /bin/true, default profile (network none, 256 MiB, 64 pids): " +
			"fresh libcontainer container with its own cgroups, namespaces, read-only root, /tmp, workspace and seccomp; destroyed before Run returns",
		run: run,
	}, nil
}

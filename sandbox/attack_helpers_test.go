package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// attackSuite is the one Manager every attack test shares, with its own
// state root, cgroup parent and workspace tree, so that the leftover check
// in TestMain can tell its debris from anything else on the host.
type attackSuite struct {
	mgr       *Manager
	cfg       Config
	wsRoot    string // host directory holding one workspace per user
	probePath string // the probe inside the sandbox
}

const (
	attackProbeTarget = "/opt/probe" // where helperDir is mounted read-only
	attackWorkTarget  = "/work"      // where a user's workspace is mounted
	attackUID         = 65534
)

var (
	suiteOnce sync.Once
	suiteVal  *attackSuite
	suiteErr  error
	runSeq    atomic.Int64
)

// needRoot skips a test without root, except under CI=true, where a test
// that cannot get its capability fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the sandbox attack tests need root (euid %d) and CI is set", os.Geteuid())
	}
	t.Skipf("the sandbox attack tests need root (euid %d; with CI set: fails)", os.Geteuid())
}

// suite returns the shared Manager, creating it on first use.
func suite(t *testing.T) *attackSuite {
	t.Helper()
	needRoot(t)
	suiteOnce.Do(func() { suiteVal, suiteErr = newAttackSuite() })
	if suiteErr != nil {
		t.Fatalf("attack suite: %v", suiteErr)
	}
	return suiteVal
}

func newAttackSuite() (*attackSuite, error) {
	base, err := os.MkdirTemp("", "execgate-attack-")
	if err != nil {
		return nil, err
	}
	attackBase = base
	wsRoot := filepath.Join(base, "workspaces")
	if err := os.MkdirAll(wsRoot, 0o755); err != nil {
		return nil, err
	}
	cfg := Config{
		Instance:     fmt.Sprintf("attack-%d", os.Getpid()),
		StateRoot:    filepath.Join(base, "state"),
		CgroupParent: fmt.Sprintf("/execgate-attack-%d", os.Getpid()),
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("EXECGATE_ATTACK_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mgr, err := New(context.Background(), cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("sandbox.New: %w", err)
	}
	attackCfg = &cfg
	attackMgr = mgr
	probe, err := probeProgram.build()
	if err != nil {
		return nil, err
	}
	return &attackSuite{mgr: mgr, cfg: cfg, wsRoot: wsRoot, probePath: filepath.Join(attackProbeTarget, filepath.Base(probe))}, nil
}

// workspace returns user's host workspace, created owned by the sandbox uid.
func (s *attackSuite) workspace(t *testing.T, user string) string {
	t.Helper()
	dir := filepath.Join(s.wsRoot, user)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, attackUID, attackUID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// attackProfile is a complete profile with small limits, as the policy
// loader would produce it.
func attackProfile() policy.Profile {
	return policy.Profile{
		Name:           "attack",
		Untrusted:      true,
		Timeout:        15 * time.Second,
		KillGrace:      500 * time.Millisecond,
		MemoryBytes:    128 << 20,
		Pids:           64,
		CPUShares:      512,
		CPUQuota:       1,
		CPUSeconds:     30,
		OpenFiles:      256,
		FileSizeBytes:  64 << 20,
		TmpfsBytes:     16 << 20,
		Umask:          0o022,
		MaxOutputBytes: 4 << 20,
		Network:        policy.NetworkNone,
		NoExecWork:     false,
		Seccomp:        "default",
		UID:            attackUID,
		GID:            attackUID,
	}
}

// runOpts changes one run's spec.
type runOpts struct {
	user       string                // workspace owner, default "alice"
	profile    func(*policy.Profile) // profile changes
	mounts     []policy.Mount        // extra mounts
	stdout     io.Writer             // default: captured
	tty        bool                  // ask for a terminal (the profile must allow it)
	concurrent bool                  // other runs are live: skip the per-run leftover check
}

// runOutcome is what a run produced.
type runOutcome struct {
	stdout, stderr string
	res            Result
	err            error
}

func (o runOutcome) String() string {
	return fmt.Sprintf("err=%v result=%+v\nstdout:\n%s\nstderr:\n%s", o.err, o.res, o.stdout, o.stderr)
}

// run executes argv in a fresh sandbox with the user's workspace at /work
// and the helper programs at /opt/probe.
func (s *attackSuite) run(t *testing.T, o runOpts, argv ...string) runOutcome {
	t.Helper()
	if o.user == "" {
		o.user = "alice"
	}
	prof := attackProfile()
	if o.profile != nil {
		o.profile(&prof)
	}
	mounts := []policy.Mount{
		{Root: "work", Source: s.workspace(t, o.user), Target: attackWorkTarget, Workspace: true},
		{Root: "probe", Source: helperDir, Target: attackProbeTarget, ReadOnly: true},
	}
	mounts = append(mounts, o.mounts...)
	var stdout, stderr bytes.Buffer
	var out io.Writer = &stdout
	if o.stdout != nil {
		out = o.stdout
	}
	spec := Spec{
		ID:      fmt.Sprintf("atk-%d-%d", os.Getpid(), runSeq.Add(1)),
		Subject: o.user,
		Argv:    argv,
		Env:     []string{"PATH=/usr/bin:/bin", "HOME=" + attackWorkTarget, "LC_ALL=C"},
		Cwd:     attackWorkTarget,
		Mounts:  mounts,
		Profile: prof,
		Stdout:  out,
		Stderr:  &stderr,
		TTY:     o.tty,
	}
	ctx, cancel := context.WithTimeout(t.Context(), prof.Timeout+30*time.Second)
	defer cancel()
	res, err := s.mgr.Run(ctx, spec)
	if !o.concurrent {
		if left := attackRunLeftovers(s.cfg); len(left) > 0 {
			t.Errorf("left behind after the run of %v: %v", argv, left)
		}
	}
	return runOutcome{stdout: stdout.String(), stderr: stderr.String(), res: res, err: err}
}

// sh runs a shell one-liner in a sandbox and fails the test if the run
// itself failed (not the command).
func (s *attackSuite) sh(t *testing.T, o runOpts, script string) runOutcome {
	t.Helper()
	out := s.run(t, o, "/bin/sh", "-c", script)
	if out.err != nil {
		t.Fatalf("sandbox run failed: %v", out)
	}
	return out
}

// randomName is a unique, unguessable file name for canaries and markers.
func randomName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// lines splits output into non-empty trimmed lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// This test binary is also libcontainer's init: the sandbox re-executes
// /proc/self/exe as "<binary> init" in each container. init runs before
// the tests, so the init never runs them.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		sandboxInit()
	}
}

func TestRunExitCode(t *testing.T) {
	tests := []struct {
		name string
		res  sandbox.Result
		want int
	}{
		{"success", sandbox.Result{ExitCode: 0, EndedBy: sandbox.EndedExit}, 0},
		{"failure", sandbox.Result{ExitCode: 3, EndedBy: sandbox.EndedExit}, 3},
		{"signal", sandbox.Result{ExitCode: -1, Signal: "SIGSEGV", EndedBy: sandbox.EndedExit}, 128 + 11},
		{"unknown signal", sandbox.Result{ExitCode: -1, Signal: "SIGWHAT", EndedBy: sandbox.EndedExit}, runExitFailure},
		{"timeout", sandbox.Result{ExitCode: -1, Signal: "SIGKILL", EndedBy: sandbox.EndedTimeout}, runExitTimeout},
		{"memory", sandbox.Result{ExitCode: -1, Signal: "SIGKILL", EndedBy: sandbox.EndedMemory}, runExitMemory},
		{"pids", sandbox.Result{ExitCode: 2, EndedBy: sandbox.EndedPids}, runExitPids},
		{"output", sandbox.Result{ExitCode: -1, Signal: "SIGKILL", EndedBy: sandbox.EndedOutput}, runExitOutput},
		{"cpu", sandbox.Result{ExitCode: -1, Signal: "SIGXCPU", EndedBy: sandbox.EndedCPU}, runExitCPU},
		{"disk_full", sandbox.Result{ExitCode: -1, Signal: "SIGKILL", EndedBy: sandbox.EndedDiskFull}, runExitFailure},
		{"killed", sandbox.Result{ExitCode: -1, Signal: "SIGKILL", EndedBy: sandbox.EndedKilled}, runExitKilled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runExitCode(tt.res); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no policy", []string{"--sub", "a", "--", "echo"}, "--policy is required"},
		{"no subject", []string{"--policy", "/x", "--", "echo"}, "--sub is required"},
		{"no command", []string{"--policy", "/x", "--sub", "a"}, "no command"},
		{"bad env", []string{"--policy", "/x", "--sub", "a", "--env", "NOEQUALS", "--", "echo"}, "want KEY=VALUE"},
		{"missing policy file", []string{"--policy", "/nonexistent/p.yaml", "--sub", "a", "--", "echo"}, "load policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(context.Background(), append([]string{"run"}, tt.args...), &out, &errb)
			if code != runExitFailure || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("got exit %d stderr %q, want %d and %q", code, errb.String(), runExitFailure, tt.want)
			}
		})
	}
}

const runTestPolicy = `version: 1
roles:
  viewer: {description: read-only tools}
roots:
  workspace: {workspace: true, host: "/var/lib/execgate-test/ws/{sub}", target: /work}
profiles:
  standard:
    timeout: 1s
    kill_grace: 100ms
    memory: 64MiB
    pids: 16
    max_output: 64KiB
    network: none
    seccomp: default
    mounts: [workspace]
defaults:
  profile: standard
  cwd: workspace
env:
  set: {PATH: /usr/bin:/bin, HOME: /work}
commands:
  echo:
    path: /usr/bin/echo
    roles: [viewer]
    positionals: {max: 4, rest: {type: text}}
  sleep:
    path: /usr/bin/sleep
    roles: [viewer]
    positionals: {max: 1, rest: {type: text}}
  false:
    path: /usr/bin/false
    roles: [viewer]
`

// TestRunCommand runs `execgate run` in-process against a real sandbox.
func TestRunCommand(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(runTestPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(dir, "ws")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"allowed", []string{"--roles", "viewer", "--", "echo", "hello"}, 0, "hello\n", ""},
		{"exit code passes through", []string{"--roles", "viewer", "--", "false"}, 1, "", ""},
		{"denied role", []string{"--roles", "nobody", "--", "echo", "x"}, runExitDenied, "", "denied: "},
		{"denied command", []string{"--roles", "viewer", "--", "rm", "-rf", "/"}, runExitDenied, "", "denied: unknown_command"},
		{"timeout", []string{"--roles", "viewer", "--", "sleep", "10"}, runExitTimeout, "", "ended by timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"run", "--policy", pol, "--sub", "alice", "--workspace-root", ws}, tt.args...)
			code := dispatch(context.Background(), args, &out, &errb)
			if code != tt.wantCode || out.String() != tt.wantStdout || !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("got exit %d stdout %q stderr %q; want %d, %q, stderr containing %q",
					code, out.String(), errb.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(ws, "alice")); err != nil {
		t.Errorf("workspace not created under --workspace-root: %v", err)
	}
}

func TestSelfcheckCommand(t *testing.T) {
	needRoot(t)
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"selfcheck", "--state-root", t.TempDir()}, &out, &errb); code != 0 {
		t.Fatalf("selfcheck on this host: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "ok   binary location") || !strings.Contains(out.String(), "selfcheck passed") {
		t.Errorf("got %q, want every check listed and passed", out.String())
	}
	// A state root inside the binary's directory names the missing piece.
	self, _ := os.Executable()
	out.Reset()
	errb.Reset()
	code := dispatch(context.Background(), []string{"selfcheck", "--state-root", filepath.Join(filepath.Dir(self), "state")}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "FAIL binary location") || !strings.Contains(errb.String(), "binary location") {
		t.Errorf("got exit %d stdout %q stderr %q, want 1 naming the binary location", code, out.String(), errb.String())
	}
}

func TestSweepDeadRunInstances(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	// A live invocation: its lock is held.
	// Names unique to this test process: cgroup parents are host-wide.
	liveName, deadName := fmt.Sprintf("run-%d1", os.Getpid()), fmt.Sprintf("run-%d2", os.Getpid())
	liveCfg := sandbox.Config{Instance: liveName, StateRoot: filepath.Join(base, liveName)}
	live, err := sandbox.New(context.Background(), liveCfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// A dead one: what a SIGKILLed invocation leaves (no lock holder).
	dead := filepath.Join(base, deadName)
	if err := os.MkdirAll(filepath.Join(dead, "containers", "eg-run-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Not an execgate run instance: never touched.
	other := filepath.Join(base, "default")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	sweepDeadRunInstances(context.Background(), log, base)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead instance %s still there (%v)", dead, err)
	}
	for _, keep := range []string{liveCfg.StateRoot, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
	if got, err := live.Run(context.Background(), sandbox.Spec{Argv: []string{"/bin/true"}, Profile: runTestProfile()}); err != nil || got.ExitCode != 0 {
		t.Errorf("live instance after the sweep: %v, exit %d", err, got.ExitCode)
	}
}

func runTestProfile() policy.Profile {
	return policy.Profile{
		Name: "t", Timeout: 5 * time.Second, KillGrace: time.Second, MemoryBytes: 64 << 20, Pids: 16,
		CPUShares: 1024, CPUQuota: 1, CPUSeconds: 5, OpenFiles: 64, FileSizeBytes: 1 << 20,
		TmpfsBytes: 1 << 20, Umask: 0o077, MaxOutputBytes: 1 << 20, Network: policy.NetworkNone,
		Seccomp: "default", UID: 65534, GID: 65534,
	}
}

// TestRunCgroupParent: `execgate run --cgroup-parent` creates the run's
// cgroup under that parent (watched from the host while the command
// sleeps), and `run` and `selfcheck` refuse bad values with a clear error.
func TestRunCgroupParent(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(runTestPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	top := fmt.Sprintf("/execgate-runcgp-%d", os.Getpid())
	parent := top + "/sandboxes"
	t.Cleanup(func() {
		for _, c := range []string{"pids", "memory", "cpu", "cpuacct", "blkio", "cpuset", "devices", "freezer", "systemd", "unified", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"} {
			_ = os.Remove(filepath.Join("/sys/fs/cgroup", c, parent))
			_ = os.Remove(filepath.Join("/sys/fs/cgroup", c, top))
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	seen := make(chan string, 1)
	go func() {
		for ctx.Err() == nil {
			ents, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup/pids", parent))
			for _, e := range ents {
				procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", parent, e.Name(), "cgroup.procs"))
				if e.IsDir() && strings.HasPrefix(e.Name(), "eg-") && err == nil && len(strings.TrimSpace(string(procs))) > 0 {
					select {
					case seen <- e.Name():
					default:
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), []string{"run", "--policy", pol, "--sub", "alice", "--roles", "viewer",
		"--workspace-root", filepath.Join(dir, "ws"), "--cgroup-parent", parent, "--", "sleep", "0.5"}, &out, &errb)
	cancel()
	if code != 0 {
		t.Fatalf("run: exit %d, stderr %q", code, errb.String())
	}
	select {
	case id := <-seen:
		t.Logf("run cgroup %s/%s held the command", parent, id)
	default:
		t.Errorf("no eg-* cgroup with processes seen under /sys/fs/cgroup/pids%s during the run", parent)
	}
	// Bad values: refused before anything starts, naming the flag.
	for _, bad := range []struct{ value, want string }{
		{"relative/x", "want an absolute path"},
		{"/", "must not be the root cgroup"},
		{"/execgate/../system.slice", "no . or .. component"},
		{"/execgate/x/", "want a clean path"},
	} {
		for _, cmd := range [][]string{
			{"run", "--policy", pol, "--sub", "alice", "--cgroup-parent", bad.value, "--", "echo", "x"},
			{"selfcheck", "--state-root", t.TempDir(), "--cgroup-parent", bad.value},
		} {
			var o, e bytes.Buffer
			code := dispatch(context.Background(), cmd, &o, &e)
			if code == 0 || !strings.Contains(e.String(), "--cgroup-parent: cgroup parent "+fmt.Sprintf("%q", bad.value)) || !strings.Contains(e.String(), bad.want) {
				t.Errorf("%s --cgroup-parent %q: got exit %d stderr %q, want a refusal with %q", cmd[0], bad.value, code, e.String(), bad.want)
			}
		}
	}
	// selfcheck shows the parent it checked.
	var o, e bytes.Buffer
	if code := dispatch(context.Background(), []string{"selfcheck", "--state-root", t.TempDir(), "--cgroup-parent", parent}, &o, &e); code != 0 || !strings.Contains(o.String(), "ok   cgroup parent                    "+parent+" (cgroup v") {
		t.Errorf("selfcheck --cgroup-parent %s: exit %d, stdout %q", parent, code, o.String())
	}
}

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/execgate/execgate/sandbox"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// testFrontMain is the front when Split re-executes the test binary. Its
// last argument says what to do.
func testFrontMain() int {
	ctx := context.Background()
	c, err := FrontClient(ctx, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "front:", err)
		return 3
	}
	defer func() { _ = c.Close() }()
	switch os.Args[len(os.Args)-1] {
	case "echo":
		var out bytes.Buffer
		_, res, err := c.Run(ctx, Job{ID: "front-echo", Request: req("echo", "from", "front"), Stdout: &out})
		if err != nil {
			fmt.Fprintln(os.Stderr, "front run:", err)
			return 4
		}
		fmt.Printf("uid=%d exit=%d out=%s", os.Getuid(), res.ExitCode, out.String())
		return 0
	case "denied":
		_, _, err := c.Run(ctx, Job{ID: "front-denied", Request: req("touch", "x")})
		fmt.Printf("denied=%v", errors.Is(err, ErrDenied))
		return 0
	case "die":
		pr, pw := io.Pipe()
		go func() { _, _, _ = c.Run(ctx, Job{ID: "front-die", Request: req("yes"), Stdout: pw}) }()
		if _, err := pr.Read(make([]byte, 16)); err != nil {
			return 5
		}
		os.Exit(7) // dies with a job running
	case "wait":
		<-c.Done() // until the executor goes away
		return 0
	case "reload":
		return frontReload(ctx, c)
	}
	return 2
}

func splitFront(t *testing.T, mode string) (int, string, *procSandbox) {
	t.Helper()
	sb := newProcSandbox()
	code, out := splitFrontWith(t, sb, mode)
	return code, out, sb
}

// splitFrontWith runs Split with the given sandbox and a test front in mode.
func splitFrontWith(t *testing.T, sb Sandbox, mode string) (int, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("Split needs root (with CI set: fails)")
		}
		t.Fatal("Split needs root (CI=true: not skipping)")
	}
	out, err := os.CreateTemp(t.TempDir(), "front-out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	local := NewLocal(sb, loadPolicy(t), testLog(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := Split(ctx, SplitConfig{Local: local, AllowNobody: true, Args: []string{mode}, Stdout: out, Stderr: out, Log: testLog(t), ShutdownGrace: 5 * time.Second})
	t.Logf("Split: code %d, error %v", code, err)
	b, _ := os.ReadFile(out.Name())
	return code, string(b)
}

func TestSplitEcho(t *testing.T) {
	code, out, _ := splitFront(t, "echo")
	if code != 0 {
		t.Fatalf("got exit code %d (front output %q), want 0", code, out)
	}
	fu, err := LookupFrontUser(DefaultFrontUser, true)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("uid=%d exit=0 out=from front\n", fu.UID)
	if out != want {
		t.Errorf("front output: got %q, want %q", out, want)
	}
}

func TestSplitDeniedFromFront(t *testing.T) {
	code, out, _ := splitFront(t, "denied")
	if code != 0 || out != "denied=true" {
		t.Errorf("got code %d output %q, want 0 and %q", code, out, "denied=true")
	}
}

func TestSplitFrontDiesKillsJobs(t *testing.T) {
	code, out, sb := splitFront(t, "die")
	if code != 7 {
		t.Errorf("got exit code %d (front output %q), want the front's 7", code, out)
	}
	if n := sb.running(); n != 0 {
		t.Errorf("got %d jobs still running after the front died, want 0", n)
	}
}

func TestSplitTermStopsFront(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("Split needs root (with CI set: fails)")
		}
		t.Fatal("Split needs root (CI=true: not skipping)")
	}
	local := NewLocal(newProcSandbox(), loadPolicy(t), testLog(t))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel) // as SIGTERM does through main's NotifyContext
	code, err := Split(ctx, SplitConfig{Local: local, AllowNobody: true, Args: []string{"wait"}, Log: testLog(t), ShutdownGrace: 5 * time.Second})
	// The front waits for the executor's socket to close; SIGTERM's
	// default action ends it, which is a death by signal.
	if code == 0 || err == nil {
		t.Errorf("got code %d error %v, want the front's death reported", code, err)
	}
}

func TestCheckUnprivileged(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		wantErr error
	}{
		{"unprivileged", "Uid:\t65534\t65534\t65534\t65534\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n", nil},
		{"without no_new_privs", "Uid:\t65534\t65534\t65534\t65534\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t0\n", ErrPrivileged},
		{"root uid", "Uid:\t0\t0\t0\t0\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n", ErrPrivileged},
		{"saved uid root", "Uid:\t1000\t1000\t0\t1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n", ErrPrivileged},
		{"capabilities", "Uid:\t1000\t1000\t1000\t1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000200000\nNoNewPrivs:\t1\n", ErrPrivileged},
		{"ambient", "Uid:\t1000\t1000\t1000\t1000\nCapPrm:\t0\nCapEff:\t0\nCapAmb:\t0000000000000400\nNoNewPrivs:\t1\n", ErrPrivileged},
		{"missing CapEff", "Uid:\t1000\t1000\t1000\t1000\nCapPrm:\t0\n", errAny},
		{"garbage", "Uid:\tx\nCapEff:\tzz\n", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := t.TempDir() + "/status"
			if err := os.WriteFile(p, []byte(tt.status), 0o600); err != nil {
				t.Fatal(err)
			}
			err := CheckUnprivileged(p)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.wantErr == errAny && err == nil:
				t.Error("got nil, want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
	if os.Geteuid() == 0 {
		if err := CheckUnprivileged("/proc/self/status"); !errors.Is(err, ErrPrivileged) {
			t.Errorf("this root process: got %v, want ErrPrivileged", err)
		}
	}
}

var errAny = errors.New("any error")

// TestFrontEnv: the front gets the environment the process started with,
// not the GOMAXPROCS=1 a Manager sets for its container inits.
func TestFrontEnv(t *testing.T) {
	// The value the process started with (an earlier test's Manager may
	// already have set GOMAXPROCS=1 in the environment).
	start, had := "", false
	for _, kv := range sandbox.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			start, had = v, true
		}
	}
	t.Setenv("GOMAXPROCS", "1") // as sandbox.New does
	var got []string
	for _, kv := range frontEnv() {
		if strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, FrontFDEnv+"=") {
			got = append(got, kv)
		}
	}
	want := []string{FrontFDEnv + "=3"}
	if had {
		want = []string{"GOMAXPROCS=" + start, FrontFDEnv + "=3"}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("front environment has %q, want %q", got, want)
	}
}

func TestWithoutEnv(t *testing.T) {
	got := withoutEnv([]string{"A=1", FrontFDEnv + "=9", FrontFDEnv + "X=2"}, FrontFDEnv)
	if strings.Join(got, ",") != "A=1,"+FrontFDEnv+"X=2" {
		t.Errorf("got %v", got)
	}
}

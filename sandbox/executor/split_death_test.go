package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// testExecutorEnv makes the test binary run Split as a separate executor
// process, so that a test can kill it.
const testExecutorEnv = "EXECGATE_TEST_EXECUTOR"

func testExecutorMain() int {
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		return 10
	}
	dir, err := os.MkdirTemp("", "execgate-exec-death-")
	if err != nil {
		return 11
	}
	defer os.RemoveAll(dir)
	set, err := policy.LoadBytes("policy.yaml", []byte(strings.ReplaceAll(string(b), "@DIR@", dir)), policy.LoadOptions{})
	if err != nil {
		return 12
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	code, _ := Split(context.Background(), SplitConfig{Local: NewLocal(newProcSandbox(), set, log), AllowNobody: true, Args: []string{"wait"}, Log: log})
	return code
}

// TestExecutorDeathKillsFront kills the executor with SIGKILL: the front
// must not outlive it (Pdeathsig, and EOF on its socket).
func TestExecutorDeathKillsFront(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("Split needs root (with CI set: fails)")
		}
		t.Fatal("Split needs root (CI=true: not skipping)")
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), testExecutorEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := 0
	sc := bufio.NewScanner(out)
	for pid == 0 && sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			PID int    `json:"pid"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "front started" {
			pid = line.PID
		}
	}
	if pid == 0 {
		t.Fatal("the executor never reported its front")
	}
	time.Sleep(200 * time.Millisecond) // let the front connect
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("front %d not running before the executor died: %v", pid, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("front %d still alive 10s after the executor was killed", pid)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

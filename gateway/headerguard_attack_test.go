package gateway

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestHeaderGuardPipelinedBehindRunningCommand: an oversized header block
// pipelined behind an exec request that runs for a second waits in the
// guard while the command runs (net/http's background read of the
// connection is held, not failed: the command is not cancelled), the
// exec's complete answer goes out first, then the guard's 413.
func TestHeaderGuardPipelinedBehindRunningCommand(t *testing.T) {
	env := startServer(t, nil)
	body := `{"command":"sleep","args":["1"]}`
	exec := "POST /v1/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + env.token("alice", "operator") +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	huge := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1<<20) + "\r\n\r\n"
	rs := rawExchange(t, hostOf(env.url), exec, huge)
	if len(rs) != 2 {
		t.Fatalf("got %d answers %v, want the exec's, then 413", len(rs), statuses(rs))
	}
	var res struct {
		ExitCode *int   `json:"exit_code"`
		EndedBy  string `json:"ended_by"`
	}
	if err := json.Unmarshal(rs[0].body, &res); err != nil || rs[0].status != 200 || res.ExitCode == nil || *res.ExitCode != 0 || res.EndedBy != "exit" {
		t.Errorf("exec before the oversized block: got %d %s, want 200 with exit_code 0, ended_by exit", rs[0].status, rs[0].body)
	}
	checkGuard413(t, env, "oversized block behind a running command", rs[1])
}

package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestHeaderGuardAfterOtherFramings: an oversized header block after a
// HEAD request, an HTTP/1.0 keep-alive request with a body, and an
// Expect: 100-continue request whose handler reads the body (net/http's
// interim 100 goes out first): the first request gets net/http's answer
// (never the guard's), the oversized block the guard's 413, nothing in
// between.
func TestHeaderGuardAfterOtherFramings(t *testing.T) {
	env := startServer(t, nil)
	addr := hostOf(env.url)
	huge := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1<<20) + "\r\n\r\n"
	check := `{"command":"echo","args":["x"]}`
	cases := []struct {
		name, first string
		want        []int // statuses before the 413
	}{
		{"HEAD", "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", nil},
		{"HTTP/1.0 keep-alive with a body", "POST /healthz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nbody", nil},
		{"Expect 100-continue, body read", "POST /v1/exec/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + env.token("alice", "viewer") +
			"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " + strconv.Itoa(len(check)) + "\r\n\r\n" + check, []int{100, 200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := rawExchangeMethods(t, addr, []string{strings.Fields(tc.first)[0]}, tc.first, huge)
			if len(rs) < 2 {
				t.Fatalf("got %d answers %v, want the first request's, then 413", len(rs), statuses(rs))
			}
			before := statuses(rs[:len(rs)-1])
			for i, st := range before {
				if st == 413 || tc.want != nil && (len(before) != len(tc.want) || st != tc.want[i]) {
					t.Errorf("answers before the oversized block: got %v, want %v (none 413)", before, tc.want)
					break
				}
			}
			checkGuard413(t, env, tc.name, rs[len(rs)-1])
		})
	}
}

// rawExchangeMethods is rawExchange reading the answers as answers to
// requests of the given methods (in order; GET after them), so that the
// answer to a HEAD request is read without a body.
func rawExchangeMethods(t *testing.T, addr string, methods []string, parts ...string) []rawResponse {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for _, p := range parts {
			if _, err := io.WriteString(conn, p); err != nil {
				return
			}
		}
	}()
	defer func() { conn.Close(); <-wrote }()
	br := bufio.NewReader(conn)
	var out []rawResponse
	for i := 0; ; {
		method := "GET"
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, rawResponse{status: resp.StatusCode, header: resp.Header, body: body})
		if resp.StatusCode >= 200 {
			i++ // an interim answer (100) belongs to the same request
		}
	}
}

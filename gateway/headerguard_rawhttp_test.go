package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNetHTTPErrorsEnveloped: requests net/http refuses before any handler
// (no Host, a malformed header line, an unknown protocol version) get the
// API's JSON error envelope with a request id and the security headers,
// not net/http's text/plain, and leave an access line with that id.
func TestNetHTTPErrorsEnveloped(t *testing.T) {
	env := startServer(t, nil)
	addr := strings.TrimPrefix(env.url, "http://")
	cases := []struct {
		name, req string
		status    int
		code      string
	}{
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, CodeInvalidRequest},
		{"malformed header line", "GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, CodeInvalidRequest},
		{"bad header name", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, CodeInvalidRequest},
		{"unsupported version", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505, CodeInvalidRequest},
		{"two Content-Lengths", "POST /v1/exec HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", 400, CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not the JSON envelope: %v", err)
			}
			id := resp.Header.Get("X-Request-Id")
			switch {
			case resp.StatusCode != tc.status:
				t.Errorf("status: got %d, want %d", resp.StatusCode, tc.status)
			case !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"):
				t.Errorf("Content-Type: got %q", resp.Header.Get("Content-Type"))
			case resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY":
				t.Errorf("security headers missing: %v", resp.Header)
			case id == "" || body.Error.RequestID != id || body.Error.Code != tc.code:
				t.Errorf("got id %q, body %+v, want code %s with the header's id", id, body.Error, tc.code)
			case !strings.Contains(env.logs.String(), id):
				t.Errorf("no access line with request id %s", id)
			}
		})
	}
	// A handler's own error answer is untouched.
	if r := env.do("GET", "/no/such/route", "", nil); r.status != 404 || r.errCode() != CodeNotFound {
		t.Errorf("handler 404: got %d %s", r.status, r.body)
	}
}

// TestRawHTTPErrorParse: only net/http's own error form is taken for one.
func TestRawHTTPErrorParse(t *testing.T) {
	cases := []struct {
		name, in string
		status   int
		ok       bool
	}{
		{"net/http 400", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host header", 400, true},
		{"net/http 505", "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nunsupported protocol version", 505, true},
		{"a handler's answer", "HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\nX-Request-Id: x\r\n\r\n{}", 0, false},
		{"error headers after other headers", "HTTP/1.1 400 Bad Request\r\nDate: x\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nx", 0, false},
		{"a 2xx in net/http's form", "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nx", 0, false},
		{"body bytes", "HTTP/1.1 4", 0, false},
		{"not a status", "HTTP/1.1 4xx Bad\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, ok := rawHTTPError([]byte(tc.in))
			if ok != tc.ok || status != tc.status {
				t.Errorf("got %d %v, want %d %v", status, ok, tc.status, tc.ok)
			}
		})
	}
}

// FuzzRawHTTPError: any bytes parse or not without a panic, and what is
// taken for net/http's error is exactly its form.
func FuzzRawHTTPError(f *testing.F) {
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		status, _, ok := rawHTTPError(p)
		if !ok {
			return
		}
		head, _, found := strings.Cut(string(p), string(netHTTPErrorHeaders))
		if status < 400 || status > 599 || !found || !strings.HasPrefix(head, "HTTP/1.1 ") || strings.Contains(head, "\n") {
			t.Fatalf("%q taken for net/http's error (status %d)", p, status)
		}
	})
}

package gateway

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeLoopbackPort returns a loopback port nothing listens on right now.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNginx runs the shipped deploy/nginx/execgate.conf in a real nginx on
// loopback in front of upstream and returns its HTTPS address.
func startNginx(t *testing.T, upstream string, extra map[string]string) (addr string, pool *x509.CertPool) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("nginx not installed (make deps) (with CI set: fails)")
		}
		t.Fatal("nginx not installed")
	}
	dir := t.TempDir()
	certFile, keyFile, pool := testCert(t)
	headers, err := filepath.Abs("../deploy/nginx/execgate-error-headers.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("../deploy/nginx/execgate.conf")
	if err != nil {
		t.Fatal(err)
	}
	https, plain := freeLoopbackPort(t), freeLoopbackPort(t)
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	c := string(conf)
	for old, repl := range extra {
		if !strings.Contains(c, old) {
			t.Fatalf("deploy/nginx/execgate.conf no longer contains %q: adjust the test", old)
		}
		c = strings.ReplaceAll(c, old, repl)
	}
	for old, repl := range map[string]string{
		"listen 443 ssl http2;":                  fmt.Sprintf("listen 127.0.0.1:%d ssl;", https),
		"listen 80;":                             fmt.Sprintf("listen 127.0.0.1:%d;", plain),
		"/etc/ssl/execgate/fullchain.pem":        certFile,
		"/etc/ssl/execgate/privkey.pem":          keyFile,
		"/var/log/nginx":                         logs,
		"/etc/nginx/execgate-error-headers.conf": headers,
		"server 127.0.0.1:8080;":                 "server " + upstream + ";",
	} {
		if !strings.Contains(c, old) {
			t.Fatalf("deploy/nginx/execgate.conf no longer contains %q: adjust the test", old)
		}
		c = strings.ReplaceAll(c, old, repl)
	}
	if err := os.WriteFile(filepath.Join(dir, "execgate.conf"), []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf("daemon off;\nmaster_process off;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp { include %s/execgate.conf; }\n", dir, logs, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr = fmt.Sprintf("127.0.0.1:%d", https)
	waitFor(t, "nginx", func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return addr, pool
}

// checkEnvelope asserts an error answer in the gateway's envelope.
func checkEnvelope(t *testing.T, what string, status int, h http.Header, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(body, &b); err != nil {
		t.Errorf("%s: body %q is not the JSON envelope: %v", what, body, err)
		return
	}
	id := h.Get("X-Request-Id")
	if status != wantStatus || b.Error.Code != wantCode || len(id) != 32 || b.Error.RequestID != id || b.Error.Message == "" {
		t.Errorf("%s: got %d %s (X-Request-Id %q), want %d %s with a matching request id", what, status, body, id, wantStatus, wantCode)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Strict-Transport-Security") == "" {
		t.Errorf("%s: headers %v: want JSON and the security headers", what, h)
	}
}

// TestNginxErrorsAreJSON: the shipped nginx configuration, in a real nginx
// in front of a real gateway on loopback, answers its own refusals in the
// gateway's JSON envelope.
func TestNginxErrorsAreJSON(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Network.TrustedProxies = []string{"127.0.0.1/32"} })
	// A short read timeout on / so that a slow command shows nginx's 504.
	addr, pool := startNginx(t, hostOf(env.url), map[string]string{"proxy_read_timeout 120s;": "proxy_read_timeout 1s;"})
	base := "https://" + addr
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1
	}}
	defer client.CloseIdleConnections()
	do := func(method, path string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, data
	}

	if st, _, body := do("GET", "/healthz", nil); st != 200 {
		t.Fatalf("through nginx: got %d %s, want 200", st, body)
	}
	// The gateway's own errors pass through untouched.
	st, h, body := do("GET", "/v1/commands", nil)
	checkEnvelope(t, "gateway 401 through nginx", st, h, body, 401, CodeUnauthorized)

	st, h, body = do("GET", "/v1/commands", nil, "X-Big", strings.Repeat("b", 20<<10))
	checkEnvelope(t, "header over large_client_header_buffers (494)", st, h, body, 413, CodePayloadTooLarge)

	st, h, body = do("POST", "/v1/exec", strings.NewReader(strings.Repeat("a", 2<<20)), "Content-Type", "application/json")
	checkEnvelope(t, "body over client_max_body_size", st, h, body, 413, CodePayloadTooLarge)

	st, h, body = do("GET", "/metrics", nil)
	checkEnvelope(t, "/metrics", st, h, body, 404, CodeNotFound)

	// A request nginx cannot parse: HTTP/1.1 without Host.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\n\r\n")
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.Close()
	checkEnvelope(t, "request without Host (400)", resp.StatusCode, resp.Header, data, 400, CodeInvalidRequest)

	// nginx's own rate limit on /auth/ (2 r/s, burst 5): 429, not 503.
	limited := false
	for range 20 {
		st, h, body = do("POST", "/auth/token", strings.NewReader("{}"), "Content-Type", "application/json")
		if st == 429 {
			checkEnvelope(t, "nginx limit_req", st, h, body, 429, CodeRateLimited)
			limited = true
			break
		}
	}
	if !limited {
		t.Error("20 quick /auth/token requests: nginx never answered 429")
	}

	// The gateway takes longer than proxy_read_timeout: 504, code
	// unavailable, no Retry-After (the command may have run).
	st, h, body = do("POST", "/v1/exec", strings.NewReader(`{"command":"sleep","args":["3"]}`),
		"Content-Type", "application/json", "Authorization", "Bearer "+env.token("alice", "operator"))
	checkEnvelope(t, "gateway too slow", st, h, body, 504, CodeUnavailable)
	if h.Get("Retry-After") != "" {
		t.Error("gateway too slow: Retry-After invites a retry of a command that may have run")
	}

	// The gateway is down: 503 unavailable in JSON (nginx saw 502).
	env.stop()
	st, h, body = do("GET", "/healthz", nil)
	checkEnvelope(t, "gateway down", st, h, body, 503, CodeUnavailable)
	if h.Get("Retry-After") == "" {
		t.Error("gateway down: no Retry-After")
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

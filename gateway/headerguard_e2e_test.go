package gateway

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawResponse is one answer read off a raw connection.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r rawResponse) errBody() errorBody {
	var b errorBody
	_ = json.Unmarshal(r.body, &b)
	return b
}

// rawExchange opens a TCP connection to addr, writes every part (in order,
// from its own goroutine, ignoring write errors: the server may close
// first) and reads answers, as answers to GET requests, until the server
// closes the connection.
func rawExchange(t *testing.T, addr string, parts ...string) []rawResponse {
	t.Helper()
	return rawExchangeMethods(t, addr, nil, parts...)
}

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

// checkGuard413 asserts the guard's answer: 413 JSON with a request id that
// matches the header, the security headers, and an audit line.
func checkGuard413(t *testing.T, env *testEnv, what string, r rawResponse) {
	t.Helper()
	b := r.errBody()
	id := r.header.Get("X-Request-Id")
	if r.status != 413 || b.Error.Code != CodePayloadTooLarge || id == "" || b.Error.RequestID != id {
		t.Fatalf("%s: got %d %v %s, want 413 payload_too_large with X-Request-Id", what, r.status, r.header, r.body)
	}
	if r.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", what, r.header.Get("Content-Type"))
	}
	for _, kv := range securityHeaders(false) {
		if got := r.header.Get(kv[0]); got != kv[1] {
			t.Errorf("%s: %s = %q, want %q", what, kv[0], got, kv[1])
		}
	}
	waitFor(t, "the audit line of "+what, func() bool {
		for _, l := range env.auditFor(id) {
			if l["type"] == string(EventRejected) && l["reason"] == CodePayloadTooLarge && l["remote_ip"] == "127.0.0.1" {
				return true
			}
		}
		return false
	})
	if !strings.Contains(env.logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("%s: no log line with request_id %s", what, id)
	}
}

func TestHeaderGuardOverLoopback(t *testing.T) {
	env := startServer(t, nil)
	addr := hostOf(env.url)
	tok := env.token("alice", "viewer")
	small := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	huge := "GET /v1/commands HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1<<20) + "\r\n\r\n"
	many := "GET /v1/commands HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("A: b\r\n", 20000) + "\r\n"
	// JSON allows blank lines between tokens: the body holds CRLFCRLF.
	body := "{\"command\":\"echo\",\r\n\r\n" + strings.Repeat(" ", 100<<10) + "\r\n\r\n" + `"args":["GET / HTTP/1.1"]}`
	post := "POST /v1/exec/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	chunked := "POST /v1/exec/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
		"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n"

	t.Run("1 MB header", func(t *testing.T) {
		rs := rawExchange(t, addr, huge)
		if len(rs) != 1 {
			t.Fatalf("got %d answers, want 1", len(rs))
		}
		checkGuard413(t, env, "1 MB header", rs[0])
	})
	t.Run("many small headers", func(t *testing.T) {
		rs := rawExchange(t, addr, many)
		if len(rs) != 1 {
			t.Fatalf("got %d answers, want 1", len(rs))
		}
		checkGuard413(t, env, "20000 small headers", rs[0])
	})
	t.Run("pipelined after a normal request", func(t *testing.T) {
		rs := rawExchange(t, addr, small+huge)
		if len(rs) != 2 || rs[0].status != 200 {
			t.Fatalf("got %d answers (%v), want 200 then 413", len(rs), rs)
		}
		checkGuard413(t, env, "pipelined 1 MB header", rs[1])
	})
	t.Run("keep-alive after a normal request", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		_, _ = io.WriteString(conn, small)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		go func() { _, _ = io.WriteString(conn, many) }()
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		checkGuard413(t, env, "keep-alive oversized", rawResponse{status: resp.StatusCode, header: resp.Header, body: data})
	})
	t.Run("bodies are not headers", func(t *testing.T) {
		// 100 KiB bodies (Content-Length and chunked) with blank lines in
		// them, then normal requests and an oversized one on the same
		// connection: only the last is refused.
		rs := rawExchange(t, addr, post, chunked, small, many)
		if len(rs) != 4 {
			t.Fatalf("got %d answers, want 4", len(rs))
		}
		for i, want := range []int{200, 200, 200} {
			if rs[i].status != want {
				t.Errorf("answer %d: got %d %s, want %d", i, rs[i].status, rs[i].body, want)
			}
		}
		checkGuard413(t, env, "oversized after bodies", rs[3])
	})
	t.Run("between the limit and twice it", func(t *testing.T) {
		r := env.do("GET", "/v1/commands", tok, nil, "X-Big", strings.Repeat("b", 40<<10))
		if r.status != 413 || r.errCode() != CodePayloadTooLarge {
			t.Errorf("40 KiB header: got %d %s, want 413 payload_too_large", r.status, r.body)
		}
	})
}

// TestHeaderGuardSlowloris: a client dripping its header block still hits
// http.read_header_timeout; the guard does not keep it alive.
func TestHeaderGuardSlowloris(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.HTTP.ReadHeaderTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", hostOf(env.url))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		closed <- err
	}()
	drip := "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("A: b\r\n", 1000)
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return // the server hung up
		case <-deadline:
			t.Fatal("the server kept a dripping connection open past read_header_timeout")
		case <-time.After(50 * time.Millisecond):
			_, _ = conn.Write([]byte{drip[i%len(drip)]})
		}
	}
}

// TestHeaderGuardOverTLS: with the gateway's own TLS, HTTP/2 is still
// negotiated by ALPN (and its headers past the limit get the middleware's
// 413), and HTTP/1.1 connections are guarded: a 1 MB header gets the JSON
// 413 with HSTS.
func TestHeaderGuardOverTLS(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile} })
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer h2.CloseIdleConnections()
	url := strings.Replace(env.url, "http://", "https://", 1)
	resp, err := h2.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.TLS == nil {
		t.Errorf("TLS: got %s, want HTTP/2.0 by ALPN", resp.Proto)
	}
	req, _ := http.NewRequest("GET", url+"/v1/commands", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 40<<10))
	resp, err = h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(data), CodePayloadTooLarge) {
		t.Errorf("HTTP/2, 40 KiB header: got %d %s, want 413 payload_too_large", resp.StatusCode, data)
	}

	// HTTP/1.1 over TLS: a normal request, then a 1 MB header on the same
	// connection.
	conn, err := tls.Dial("tcp", hostOf(env.url), &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 over TLS: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	go func() {
		_, _ = io.WriteString(conn, "GET /v1/commands HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 1<<20)+"\r\n\r\n")
	}()
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	r := rawResponse{status: resp.StatusCode, header: resp.Header, body: data}
	checkGuard413(t, env, "1 MB header over TLS", r)
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("the guard's 413 over TLS has no Strict-Transport-Security")
	}

	// A client that never finishes its handshake does not hold up others.
	stall, err := net.Dial("tcp", hostOf(env.url))
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	resp, err = h2.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("with a stalled handshake pending: %v", err)
	}
	resp.Body.Close()
}

// testCert writes a self-signed certificate for 127.0.0.1 and its key.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	return certFile, keyFile, pool
}

// TestHeaderGuardWaitsForEarlierAnswers: with a small limit the oversized
// block arrives in the same read as an earlier, unanswered request; the
// guard lets that answer go out first, then refuses.
func TestHeaderGuardWaitsForEarlierAnswers(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.HTTP.MaxHeaderBytes = 1024 })
	addr := hostOf(env.url)
	over := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8000) + "\r\n\r\n"
	cases := []struct{ name, first string }{
		{"pipelined", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"after an Upgrade request", "GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		{"after a body", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := rawExchange(t, addr, tc.first+over)
			if len(rs) != 2 || rs[0].status == 413 {
				t.Fatalf("got %d answers (%v), want the first request's answer, then 413", len(rs), rs)
			}
			checkGuard413(t, env, tc.name, rs[1])
		})
	}
}

// TestHeaderGuardHijack: bytes after an Upgrade request that the handler
// takes over (WebSocket) reach the handler unchanged, even when they look
// like an endless header block: the guard waits for the answer, sees the
// hijack and steps aside.
func TestHeaderGuardHijack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const limit, payload = 1024, 64 << 10
	refused := make(chan int, 1)
	gl := &guardListener{Listener: ln, limit: limit, refuse: func(net.Conn, int) []byte {
		refused <- 1
		return []byte("HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	}}
	srv := &http.Server{ConnState: connState, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			w.WriteHeader(204)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.CopyN(conn, brw, payload) // echo what follows
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(gl) }()
	defer func() { _ = srv.Close(); <-done }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	data := strings.Repeat("x", payload) // no line end: an oversized "header block" to a parser
	go func() {
		_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"+data)
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	echo, err := io.ReadAll(io.LimitReader(br, payload))
	if err != nil || string(echo) != data {
		t.Fatalf("echo after the hijack: %d bytes, %v; want the %d bytes sent", len(echo), err, payload)
	}
	select {
	case <-refused:
		t.Error("the guard refused a hijacked connection")
	default:
	}
}

// TestGuardedTLSKeepsRequestTLS: handlers see Request.TLS on guarded
// HTTP/1.1 connections as on HTTP/2 ones.
func TestGuardedTLSKeepsRequestTLS(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := &guardListener{Listener: ln, limit: 1024, refuse: func(net.Conn, int) []byte { return nil }}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	tl := newTLSGuardListener(ln, cfg, 5*time.Second, gl, discardLogger())
	srv := &http.Server{ConnState: connState, ConnContext: tlsConnContext, TLSConfig: &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
		Handler: withTLSState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || !r.TLS.HandshakeComplete {
				w.WriteHeader(500)
				return
			}
			_, _ = io.WriteString(w, r.Proto)
		}))}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(tl) }()
	defer func() { _ = srv.Close(); <-done }()
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 {
			t.Errorf("h2=%v: handler saw no Request.TLS (status %d)", h2, resp.StatusCode)
		}
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		if string(body) != want {
			t.Errorf("h2=%v: served %q, want %s", h2, body, want)
		}
	}
}

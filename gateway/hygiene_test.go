package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBodyAndHeaderLimits(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	big := `{"command":"echo","args":["` + strings.Repeat("a", 2<<20) + `"]}`
	if r := env.do("POST", "/v1/exec", tok, big); r.status != 413 || r.errCode() != CodePayloadTooLarge {
		t.Errorf("2 MiB body: got %d %s, want 413 payload_too_large", r.status, r.body)
	}
	// Chunked: no Content-Length, so the limit bites while reading.
	req, _ := http.NewRequest("POST", env.url+"/v1/exec", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !bytes.Contains(body, []byte(CodePayloadTooLarge)) {
		t.Errorf("chunked 2 MiB body: got %d %s, want 413 payload_too_large", resp.StatusCode, body)
	}
	if r := env.do("GET", "/v1/commands", tok, nil, "X-Big", strings.Repeat("b", 40<<10)); r.status != 413 || r.errCode() != CodePayloadTooLarge {
		t.Errorf("40 KiB header: got %d %s, want 413 payload_too_large", r.status, r.body)
	}
	// Past twice the limit too: the header guard answers (headerguard_conn.go).
	if r := env.do("GET", "/v1/commands", tok, nil, "X-Big", strings.Repeat("b", 200<<10)); r.status != 413 || r.errCode() != CodePayloadTooLarge {
		t.Errorf("200 KiB header: got %d %s, want 413 payload_too_large", r.status, r.body)
	}
}

func TestStrictJSON(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	cases := []struct {
		name, body, field, reason string
	}{
		{"unknown field", `{"command":"echo","shell":true}`, "shell", ""},
		{"trailing data", `{"command":"echo"} {"command":"echo"}`, "", ""},
		{"trailing garbage", `{"command":"echo"}x`, "", ""},
		{"wrong type args", `{"command":"echo","args":"hi"}`, "args", ""},
		{"wrong type timeout", `{"command":"echo","timeout_ms":"5"}`, "timeout_ms", ""},
		{"wrong type env", `{"command":"echo","env":{"TZ":1}}`, "env", ""},
		{"negative timeout", `{"command":"echo","timeout_ms":-1}`, "timeout_ms", ""},
		{"both forms", `{"command":"echo","cmdline":"echo"}`, "command", ""},
		{"neither form", `{}`, "command", ""},
		{"args with cmdline", `{"cmdline":"echo","args":["x"]}`, "args", ""},
		{"empty body", ``, "", ""},
		{"array", `[]`, "", ""},
		{"null", `null`, "command", ""},
		{"invalid UTF-8", "{\"command\":\"echo\",\"args\":[\"a\xff\"]}", "", "invalid_utf8"},
		{"bad stdin encoding", `{"command":"echo","stdin_encoding":"hex"}`, "stdin_encoding", ""},
	}
	for _, tc := range cases {
		r := env.do("POST", "/v1/exec", tok, tc.body)
		var b errorBody
		_ = jsonUnmarshal(r.body, &b)
		if r.status != 400 || b.Error.Code != CodeInvalidRequest || b.Error.Field != tc.field || b.Error.Reason != tc.reason {
			t.Errorf("%s: got %d %s, want 400 invalid_request field %q reason %q", tc.name, r.status, r.body, tc.field, tc.reason)
		}
	}
	r := env.do("POST", "/v1/exec", tok, nil, "Content-Type", "text/plain")
	if r.status != 400 || !strings.Contains(string(r.body), "Content-Type") {
		t.Errorf("text/plain: got %d %s, want 400 naming Content-Type", r.status, r.body)
	}
}

func TestEnvelopeAndHeaders(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	cases := []struct {
		method, path, tok string
		status            int
		code              string
	}{
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/readyz", "", 200, ""},
		{"GET", "/nothere", "", 404, CodeNotFound},
		{"PUT", "/v1/exec", tok, 405, CodeMethodNotAllowed},
		{"GET", "/v1/commands", "", 401, CodeUnauthorized},
		{"GET", "/v1/health", tok, 403, CodeForbidden},
		{"POST", "/auth/token", "", 404, CodeNotFound}, // no credentials configured
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		r := env.do(tc.method, tc.path, tc.tok, nil)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s %s: got %d %s, want %d %q", tc.method, tc.path, r.status, r.body, tc.status, tc.code)
		}
		id := r.header.Get("X-Request-Id")
		if len(id) != 32 || seen[id] {
			t.Errorf("%s %s: X-Request-Id %q missing or reused", tc.method, tc.path, id)
		}
		seen[id] = true
		if tc.code != "" && !strings.Contains(string(r.body), `"request_id":"`+id+`"`) {
			t.Errorf("%s %s: body %s lacks request_id %s", tc.method, tc.path, r.body, id)
		}
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, h, got, want)
			}
		}
		if !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s %s: no CSP", tc.method, tc.path)
		}
	}
}

func TestCORS(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.HTTP.CORSOrigins = []string{"https://app.example.com"}
		cfg.HTTP.CORSCredentials = true
	})
	r := env.do("OPTIONS", "/v1/exec", "", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed preflight: got %d %v", r.status, r.header)
	}
	r = env.do("OPTIONS", "/v1/exec", "", nil, "Origin", "https://evil.example.com", "Access-Control-Request-Method", "POST")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin got CORS headers: %v", r.header)
	}
	r = env.do("GET", "/healthz", "", nil, "Origin", "null")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("origin null got CORS headers")
	}
	cfg := Default()
	cfg.HTTP.CORSOrigins = []string{"*"}
	if err := cfg.Validate(); err == nil {
		t.Error("cors_origins * was accepted")
	}
}

func TestNetworkRules(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.Network.AdminAllow = []string{"10.0.0.0/8"}
	})
	admin := env.token("root", "admin")
	if r := env.do("GET", "/v1/health", admin, nil); r.status != 403 || r.errCode() != CodeIPNotAllowed {
		t.Errorf("admin from loopback outside admin_allow: got %d %s, want 403 ip_not_allowed", r.status, r.body)
	}
	if r := env.do("GET", "/v1/commands", admin, nil); r.status != 200 {
		t.Errorf("non-admin endpoint: got %d, want 200", r.status)
	}
	blocked := startServer(t, func(cfg *Config, _ *Deps) { cfg.Network.Block = []string{"127.0.0.0/8"} })
	if r := blocked.do("GET", "/healthz", "", nil); r.status != 403 || r.errCode() != CodeIPNotAllowed {
		t.Errorf("blocked network: got %d %s, want 403 ip_not_allowed", r.status, r.body)
	}
	limited := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.WSPerIP = "1-M" })
	up := func() response {
		return limited.do("GET", "/v1/commands", limited.token("a", "viewer"), nil, "Upgrade", "websocket", "Connection", "Upgrade")
	}
	if r := up(); r.status != 200 {
		t.Errorf("first upgrade attempt: got %d", r.status)
	}
	if r := up(); r.status != 429 || r.errCode() != CodeRateLimited {
		t.Errorf("second upgrade attempt over ws_per_ip: got %d %s, want 429", r.status, r.body)
	}
	// ws_per_user counts the verified subject's upgrades, from any address.
	perUser := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.WSPerUser = "2-M" })
	upAs := func(sub string) response {
		return perUser.do("GET", "/v1/commands", perUser.token(sub, "viewer"), nil, "Upgrade", "websocket", "Connection", "Upgrade")
	}
	for i := range 2 {
		if r := upAs("bob"); r.status != 200 {
			t.Errorf("bob's upgrade %d within ws_per_user: got %d %s", i+1, r.status, r.body)
		}
	}
	if r := upAs("bob"); r.status != 429 || r.errCode() != CodeRateLimited {
		t.Errorf("bob's third upgrade over ws_per_user: got %d %s, want 429 rate_limited", r.status, r.body)
	}
	if r := upAs("carol"); r.status != 200 {
		t.Errorf("carol's upgrade after bob's limit: got %d %s, want 200", r.status, r.body)
	}
	if r := perUser.do("GET", "/v1/commands", perUser.token("bob", "viewer"), nil); r.status != 200 {
		t.Errorf("bob's plain request (no upgrade): got %d, want 200", r.status)
	}
	ws := startServer(t, func(cfg *Config, _ *Deps) { cfg.Network.WSBlock = []string{"127.0.0.1"} })
	if r := ws.do("GET", "/v1/commands", ws.token("a", "viewer"), nil, "Upgrade", "websocket", "Connection", "Upgrade"); r.status != 403 || r.errCode() != CodeIPNotAllowed {
		t.Errorf("blocked WebSocket upgrade: got %d %s, want 403 ip_not_allowed", r.status, r.body)
	}
}

func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile} })
	url := strings.Replace(env.url, "http://", "https://", 1) + "/healthz"
	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	client := func(max uint16) *http.Client {
		cfg := &tls.Config{RootCAs: pool, MaxVersion: max}
		if max != 0 && max < tls.VersionTLS12 {
			// Go's client refuses TLS < 1.2 by itself unless asked: the
			// refusal below must come from the server.
			cfg.MinVersion = tls.VersionTLS10 //nolint:gosec // the old client under test
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	resp, err := client(0).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("TLS: got %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := client(v).Get(url); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("a %s client: got %v, want the server to refuse its protocol version", tls.VersionName(v), err)
		}
	}
	client(0).CloseIdleConnections()
	// A TLS key readable by others is refused.
	_ = os.Chmod(keyFile, 0o644)
	cfg := testConfig(t, t.TempDir())
	cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile}
	s := &Server{cfg: cfg}
	if err := s.initNetwork(); err == nil {
		t.Error("a TLS key readable by others was accepted")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAccessLogLine(t *testing.T) {
	env := startServer(t, nil)
	r := env.do("POST", "/v1/exec", env.token("alice", "viewer"), map[string]any{"command": "echo", "args": []string{"x"}})
	id := r.header.Get("X-Request-Id")
	var line map[string]any
	for _, l := range strings.Split(env.logs.String(), "\n") {
		if strings.Contains(l, id) && strings.Contains(l, `"msg":"request"`) {
			if err := jsonUnmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]any{"request_id": id, "subject": "alice", "session_id": id, "remote_ip": "127.0.0.1",
		"method": "POST", "route": "/v1/exec", "status": float64(200)}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access line %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	if _, ok := line["latency_ms"].(float64); !ok {
		t.Errorf("access line has no latency_ms: %v", line)
	}
}

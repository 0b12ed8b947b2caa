package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestRateLimitPerIP(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.ExecPerIP = "3-M" })
	body := map[string]any{"command": "echo"}
	for i := range 3 {
		// Different users: the per-IP limit counts them together.
		r := env.do("POST", "/v1/exec/check", env.token(fmt.Sprintf("u%d", i), "viewer"), body)
		if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: got %d, limit %q remaining %q", i, r.status, r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
		}
	}
	// A spoofed X-Forwarded-For from an untrusted peer changes nothing.
	r := env.do("POST", "/v1/exec/check", env.token("u9", "viewer"), body, "X-Forwarded-For", "203.0.113.7", "X-Real-IP", "203.0.113.8")
	if r.status != 429 || r.errCode() != CodeRateLimited {
		t.Fatalf("4th request: got %d %s, want 429 rate_limited", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1..60", r.header.Get("Retry-After"))
	}
	if r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("rate headers %v", r.header)
	}
}

func TestRateLimitPerUser(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.ExecPerUser = "2-M" })
	alice, bob := env.token("alice", "viewer"), env.token("bob", "viewer")
	body := map[string]any{"command": "echo"}
	for i := range 2 {
		if r := env.do("POST", "/v1/exec/check", alice, body); r.status != 200 {
			t.Fatalf("alice %d: got %d", i, r.status)
		}
	}
	if r := env.do("POST", "/v1/exec/check", alice, body); r.status != 429 {
		t.Errorf("alice 3rd: got %d, want 429", r.status)
	}
	if r := env.do("POST", "/v1/exec/check", bob, body); r.status != 200 {
		t.Errorf("bob: got %d, want 200: limits are per user", r.status)
	}
}

func TestTrustedProxyClientIP(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.Network.TrustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8"}
		cfg.Limits.ExecPerIP = "1-M"
	})
	tok := env.token("alice", "viewer")
	body := map[string]any{"command": "echo"}
	// Rightmost untrusted entry is the client: the leftmost is attacker-set.
	for i, xff := range []string{"1.1.1.1, 198.51.100.1", "2.2.2.2, 198.51.100.2, 10.1.2.3", "198.51.100.3"} {
		if r := env.do("POST", "/v1/exec/check", tok, body, "X-Forwarded-For", xff); r.status != 200 {
			t.Errorf("client %d via proxy: got %d, want 200 (each is a different client)", i, r.status)
		}
	}
	if r := env.do("POST", "/v1/exec/check", tok, body, "X-Forwarded-For", "9.9.9.9, 198.51.100.1"); r.status != 429 {
		t.Errorf("same client, forged left part: got %d, want 429", r.status)
	}
	// IPv6 clients are grouped by /64.
	if r := env.do("POST", "/v1/exec/check", tok, body, "X-Forwarded-For", "2001:db8:1:2::1"); r.status != 200 {
		t.Errorf("v6 first: got %d", r.status)
	}
	if r := env.do("POST", "/v1/exec/check", tok, body, "X-Forwarded-For", "2001:db8:1:2:ffff::9"); r.status != 429 {
		t.Errorf("v6 same /64: got %d, want 429", r.status)
	}
}

func TestClientIPs(t *testing.T) {
	trusted, _ := parsePrefixes([]string{"127.0.0.1", "10.0.0.0/8"})
	ci := clientIPs{trusted: trusted}
	cases := []struct {
		peer, xff, real, want string
	}{
		{"192.0.2.1:5", "1.2.3.4", "", "192.0.2.1"},
		{"127.0.0.1:5", "1.2.3.4", "", "1.2.3.4"},
		{"127.0.0.1:5", "1.2.3.4, 10.0.0.1", "", "1.2.3.4"},
		{"127.0.0.1:5", "evil, 1.2.3.4", "", "1.2.3.4"},
		{"127.0.0.1:5", "1.2.3.4, garbage", "", "127.0.0.1"},
		{"127.0.0.1:5", "", "5.6.7.8", "5.6.7.8"},
		{"127.0.0.1:5", "10.0.0.2", "5.6.7.8", "5.6.7.8"},
		{"127.0.0.1:5", "", "", "127.0.0.1"},
		{"[::ffff:127.0.0.1]:5", "1.2.3.4", "", "1.2.3.4"},
		{"[2001:db8::1]:5", "1.2.3.4", "", "2001:db8::1"},
	}
	for _, tc := range cases {
		r := newReq(tc.peer)
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.real != "" {
			r.Header.Set("X-Real-IP", tc.real)
		}
		if got := ci.clientIP(r); got != tc.want {
			t.Errorf("peer %s xff %q real %q: got %s, want %s", tc.peer, tc.xff, tc.real, got, tc.want)
		}
	}
	for in, want := range map[string]string{"1.2.3.4": "1.2.3.4", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "x": "unknown"} {
		if got := rateKey(in); got != want {
			t.Errorf("rateKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// loginConfig configures alice (password "correct horse") and an API key.
func loginConfig(cfg *Config) {
	h, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	k, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	cfg.Auth.Users = []User{{Username: "alice", PasswordHash: string(h), Roles: []string{"viewer"}}}
	cfg.Auth.APIKeys = []APIKey{{ID: "ci", SecretHash: string(k), Subject: "ci-bot", Roles: []string{"operator"}}}
	cfg.Network.TrustedProxies = []string{"127.0.0.1"}
	cfg.Limits.AuthPerIP, cfg.Limits.AuthPerUser = "1000-M", "1000-M"
}

func TestAuthToken(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { loginConfig(cfg) })
	r := env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": "correct horse"})
	m := r.json(t)
	if r.status != 200 || m["token_type"] != "Bearer" || m["expires_in"] != float64(900) {
		t.Fatalf("login: got %d %s", r.status, r.body)
	}
	if r := env.do("POST", "/v1/exec", m["access_token"].(string), map[string]any{"command": "echo", "args": []string{"x"}}); r.status != 200 {
		t.Errorf("issued token: got %d %s, want 200", r.status, r.body)
	}
	r = env.do("POST", "/auth/token", "", map[string]any{"api_key": "ci.s3cret"})
	if r.status != 200 {
		t.Fatalf("api key: got %d %s", r.status, r.body)
	}
	wrongPass := env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": "nope"})
	noUser := env.do("POST", "/auth/token", "", map[string]any{"username": "mallory", "password": "nope"})
	badKey := env.do("POST", "/auth/token", "", map[string]any{"api_key": "nokey.x"})
	for name, r := range map[string]response{"wrong password": wrongPass, "unknown user": noUser, "unknown key": badKey} {
		var b errorBody
		_ = jsonUnmarshal(r.body, &b)
		if r.status != 401 || b.Error.Message != "invalid credentials" {
			t.Errorf("%s: got %d %s, want 401 invalid credentials (same for every failure)", name, r.status, r.body)
		}
	}
	if r := env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": "x", "api_key": "y"}); r.status != 400 {
		t.Errorf("both credential kinds: got %d, want 400", r.status)
	}
	// Attempts that are not even a login are attempts too: audited.
	if r := env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "passwd": "nope"}); r.status != 400 {
		t.Errorf("unknown field: got %d, want 400", r.status)
	}
	if r := env.do("POST", "/auth/token", "", `["alice","nope"]`); r.status != 400 {
		t.Errorf("not an object: got %d, want 400", r.status)
	}
	for _, l := range env.auditLines() {
		if s := fmt.Sprint(l); containsAny(s, "correct horse", "s3cret", "nope") {
			t.Errorf("audit line carries a secret: %s", s)
		}
	}
	if containsAny(env.logs.String(), "correct horse", "s3cret", "nope") {
		t.Error("the log carries a password or key")
	}
	var fails, invalid int
	for _, l := range env.auditLines() {
		if l["type"] == "auth_failure" && l["route"] == "/auth/token" {
			fails++
			if l["reason"] == CodeInvalidRequest {
				invalid++
			}
		}
	}
	if fails != 6 || invalid != 3 {
		t.Errorf("audited %d failed attempts (%d invalid requests), want 6 (3)", fails, invalid)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func TestLockout(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		loginConfig(cfg)
		cfg.Auth.Lockout.PairThreshold, cfg.Auth.Lockout.IPThreshold = 3, 6
	})
	login := func(ip, pass string) response {
		return env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": pass}, "X-Forwarded-For", ip)
	}
	for i := range 3 {
		if r := login("198.51.100.1", "wrong"); r.status != 401 {
			t.Fatalf("failure %d: got %d", i, r.status)
		}
	}
	r := login("198.51.100.1", "correct horse")
	if r.status != 429 || r.errCode() != CodeLockedOut || r.header.Get("Retry-After") == "" {
		t.Fatalf("locked pair with the right password: got %d %s, want 429 locked_out + Retry-After", r.status, r.body)
	}
	// The lockout is per user+IP: alice from elsewhere still logs in.
	if r := login("198.51.100.2", "correct horse"); r.status != 200 {
		t.Errorf("alice from another IP: got %d %s, want 200", r.status, r.body)
	}
	// Past ip_threshold, the attacking IP is locked out for every user.
	for _, u := range []string{"bob", "carol", "dave"} {
		env.do("POST", "/auth/token", "", map[string]any{"username": u, "password": "x"}, "X-Forwarded-For", "198.51.100.1")
	}
	if r := env.do("POST", "/auth/token", "", map[string]any{"username": "erin", "password": "x"}, "X-Forwarded-For", "198.51.100.1"); r.status != 429 {
		t.Errorf("IP past ip_threshold: got %d, want 429", r.status)
	}
	var lockouts int
	for _, l := range env.auditLines() {
		if l["type"] == "lockout" {
			lockouts++
		}
	}
	if lockouts != 2 {
		t.Errorf("audited %d lockouts, want 2 (pair, then IP)", lockouts)
	}
}

func TestConcurrencyCap(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerUser = 2, 1 })
	alice, bob, carol := env.token("alice", "operator"), env.token("bob", "operator"), env.token("carol", "operator")
	var wg sync.WaitGroup
	results := make([]response, 2)
	for i, tok := range []string{alice, bob} {
		wg.Go(func() {
			results[i] = env.do("POST", "/v1/exec", tok, map[string]any{"command": "sleep", "args": []string{"2"}})
		})
	}
	waitFor(t, "two running sessions", func() bool { return env.srv.sessions.count() == 2 })
	if r := env.do("POST", "/v1/exec", alice, map[string]any{"command": "echo"}); r.status != 429 || r.errCode() != CodeTooManySessions {
		t.Errorf("alice's second: got %d %s, want 429 too_many_sessions", r.status, r.body)
	}
	if r := env.do("POST", "/v1/exec", carol, map[string]any{"command": "echo"}); r.status != 429 || r.errCode() != CodeTooManySessions {
		t.Errorf("third user over the global cap: got %d %s, want 429", r.status, r.body)
	}
	wg.Wait()
	for i, r := range results {
		if r.status != 200 || r.json(t)["exit_code"] != float64(0) {
			t.Errorf("running session %d was affected: %d %s", i, r.status, r.body)
		}
	}
	if r := env.do("POST", "/v1/exec", alice, map[string]any{"command": "echo"}); r.status != 200 {
		t.Errorf("after the runs: got %d, want 200", r.status)
	}
}

// startRedis starts a throwaway redis-server on a free loopback port and
// returns its redis:// URL.
func startRedis(t *testing.T) string {
	t.Helper()
	return "redis://:test-pass@" + runRedis(t, func(port string) []string { return []string{"--port", port} }) + "/0"
}

// runRedis runs redis-server with the arguments args(port) gives plus the
// common ones, and returns host:port once it accepts connections.
func runRedis(t *testing.T, args func(port string) []string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("redis-server not installed (apt-get install -y redis-server) (with CI set: fails)")
		}
		t.Fatal("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, append(args(strconv.Itoa(port)), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", "test-pass")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, "redis", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	srvDER, _ := x509.CreateCertificate(rand.Reader, srvTmpl, must(x509.ParseCertificate(caDER)), &srvKey.PublicKey, caKey)
	kDER, _ := x509.MarshalPKCS8PrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, cert, key := write("ca.pem", "CERTIFICATE", caDER), write("srv.pem", "CERTIFICATE", srvDER), write("srv.key", "PRIVATE KEY", kDER)
	addr := runRedis(t, func(port string) []string {
		return []string{"--port", "0", "--tls-port", port, "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"}
	})
	url := "rediss://:test-pass@" + addr + "/0"
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.RedisURL, cfg.Limits.RedisCAFile = url, ca })
	if r := env.do("POST", "/v1/exec/check", env.token("alice", "viewer"), map[string]any{"command": "echo"}); r.status != 200 {
		t.Errorf("check over TLS Redis: got %d %s", r.status, r.body)
	}
	// Without the CA the server's certificate is not trusted: New fails.
	cfg := testConfig(t, t.TempDir())
	cfg.Limits.RedisURL = url
	s := &Server{cfg: cfg}
	if err := s.initLimits(t.Context()); err == nil {
		s.close()
		t.Error("an untrusted Redis certificate was accepted")
	}
}

func TestRedisSharedLimitsAndLockouts(t *testing.T) {
	url := startRedis(t)
	mk := func() *testEnv {
		return startServer(t, func(cfg *Config, _ *Deps) {
			loginConfig(cfg)
			cfg.Limits.RedisURL = url
			cfg.Limits.ExecPerUser = "3-M"
			cfg.Auth.Lockout.PairThreshold, cfg.Auth.Lockout.IPThreshold = 2, 10
		})
	}
	a, b := mk(), mk()
	tok := a.token("alice", "viewer")
	body := map[string]any{"command": "echo"}
	for i, env := range []*testEnv{a, b, a} {
		if r := env.do("POST", "/v1/exec/check", tok, body); r.status != 200 {
			t.Fatalf("request %d: got %d", i, r.status)
		}
	}
	if r := b.do("POST", "/v1/exec/check", tok, body); r.status != 429 {
		t.Errorf("4th request on the other instance: got %d, want 429 (shared limit)", r.status)
	}
	login := func(env *testEnv, pass string) response {
		return env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": pass}, "X-Forwarded-For", "198.51.100.9")
	}
	login(a, "bad")
	login(b, "bad")
	if r := login(a, "correct horse"); r.status != 429 || r.errCode() != CodeLockedOut {
		t.Errorf("lockout shared through Redis: got %d %s, want 429 locked_out", r.status, r.body)
	}
	if r := a.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Errorf("readyz with Redis up: got %d", r.status)
	}
	cfg := Default()
	cfg.Limits.RedisURL = "http://x"
	if err := cfg.Validate(); err == nil {
		t.Error("a non-redis URL was accepted")
	}
}

// TestLoginCheckSlots: credential checks (bcrypt) run at most as many at a
// time as there are slots; a login that finds none within loginSlotWait is
// refused 429 rate_limited with Retry-After, audited, and logins work again
// once a slot is free.
func TestLoginCheckSlots(t *testing.T) {
	old := loginSlotWait
	loginSlotWait = 100 * time.Millisecond
	defer func() { loginSlotWait = old }()
	env := startServer(t, func(cfg *Config, _ *Deps) { loginConfig(cfg) })
	for range cap(env.srv.checking) { // every slot busy
		env.srv.checking <- struct{}{}
	}
	login := func() response {
		return env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": "correct horse"})
	}
	r := login()
	if r.status != 429 || r.errCode() != CodeRateLimited || r.header.Get("Retry-After") == "" {
		t.Errorf("login with every check slot busy: got %d %s (Retry-After %q), want 429 rate_limited", r.status, r.body, r.header.Get("Retry-After"))
	}
	<-env.srv.checking // one slot free
	if r := login(); r.status != 200 {
		t.Errorf("login with a free slot: got %d %s, want 200", r.status, r.body)
	}
	var busy int
	for _, l := range env.auditLines() {
		if l["type"] == "auth_failure" && l["reason"] == CodeRateLimited {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("audited %d refused-for-load logins, want 1", busy)
	}
}

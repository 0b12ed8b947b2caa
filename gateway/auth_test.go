package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rsaTestKey is generated once; 2048 bits is slow enough to share.
var rsaTestKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign signs claims with method and key, setting extra header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are valid claims for the test issuer and audience.
func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "alice", "roles": []string{"viewer"}, "iss": testIss, "aud": testAud,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestHostileTokens runs the hostile corpus against a real server that
// has an HMAC key (k1) and an RSA public key (rsa) configured.
func TestHostileTokens(t *testing.T) {
	var rsaPEM []byte
	env := startServer(t, func(cfg *Config, _ *Deps) {
		rsaPEM = pemPublic(t, &rsaTestKey.PublicKey)
		f := filepath.Join(filepath.Dir(cfg.JWT.Keys[0].File), "rsa.pub")
		if err := os.WriteFile(f, rsaPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.JWT.Keys = append(cfg.JWT.Keys, KeyConfig{ID: "rsa", File: f})
		cfg.Limits.AuthFailuresPerIP = "1000-M" // the corpus is one client failing often (TestAuthFailureLimit covers the limit)
	})
	hs, now := jwt.SigningMethodHS256, time.Now()
	k1 := map[string]any{"kid": "k1"}
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	none := func(c jwt.MapClaims, hdr map[string]any) string {
		return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c, hdr)
	}
	cases := []struct {
		name  string
		token string
		raw   string // Authorization header, when not "Bearer <token>"
		want  int
	}{
		{name: "valid HS256", token: sign(t, hs, testSecret, goodClaims(), k1), want: 200},
		{name: "valid RS256", token: sign(t, jwt.SigningMethodRS256, rsaTestKey, goodClaims(), map[string]any{"kid": "rsa"}), want: 200},
		{name: "missing token", raw: "-", want: 401},
		{name: "basic auth", raw: "Basic YWxpY2U6cGFzcw==", want: 401},
		{name: "empty bearer", raw: "Bearer ", want: 401},
		{name: "garbage", token: "not.a.jwt", want: 401},
		{name: "alg none", token: none(goodClaims(), k1), want: 401},
		{name: "alg none no kid", token: none(goodClaims(), nil), want: 401},
		{name: "alg None case", token: strings.Replace(none(goodClaims(), k1), "eyJhbGciOiJub25lIi", "eyJhbGciOiJOb25lIi", 1), want: 401},
		{name: "HS256 signed with the RSA public key", token: sign(t, hs, rsaPEM, goodClaims(), map[string]any{"kid": "rsa"}), want: 401},
		{name: "HS256 with RSA key no kid", token: sign(t, hs, rsaPEM, goodClaims(), nil), want: 401},
		{name: "RS256 claiming the HMAC kid", token: sign(t, jwt.SigningMethodRS256, rsaTestKey, goodClaims(), k1), want: 401},
		{name: "wrong secret", token: sign(t, hs, []byte("another-secret-another-secret-123"), goodClaims(), k1), want: 401},
		{name: "expired", token: sign(t, hs, testSecret, with(goodClaims(), "iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix()), k1), want: 401},
		{name: "expired beyond leeway", token: sign(t, hs, testSecret, with(goodClaims(), "exp", now.Add(-31*time.Second).Unix(), "iat", now.Add(-time.Minute).Unix()), k1), want: 401},
		{name: "expired within leeway", token: sign(t, hs, testSecret, with(goodClaims(), "exp", now.Add(-5*time.Second).Unix(), "iat", now.Add(-time.Minute).Unix()), k1), want: 200},
		{name: "nbf in the future", token: sign(t, hs, testSecret, with(goodClaims(), "nbf", now.Add(5*time.Minute).Unix()), k1), want: 401},
		{name: "iat in the future", token: sign(t, hs, testSecret, with(goodClaims(), "iat", now.Add(5*time.Minute).Unix()), k1), want: 401},
		{name: "missing exp", token: sign(t, hs, testSecret, with(goodClaims(), "exp", nil), k1), want: 401},
		{name: "missing iat", token: sign(t, hs, testSecret, with(goodClaims(), "iat", nil), k1), want: 401},
		{name: "exp as string", token: sign(t, hs, testSecret, with(goodClaims(), "exp", "9999999999"), k1), want: 401},
		{name: "wrong iss", token: sign(t, hs, testSecret, with(goodClaims(), "iss", "evil"), k1), want: 401},
		{name: "missing iss", token: sign(t, hs, testSecret, with(goodClaims(), "iss", nil), k1), want: 401},
		{name: "wrong aud", token: sign(t, hs, testSecret, with(goodClaims(), "aud", "other"), k1), want: 401},
		{name: "missing aud", token: sign(t, hs, testSecret, with(goodClaims(), "aud", nil), k1), want: 401},
		{name: "aud list with ours", token: sign(t, hs, testSecret, with(goodClaims(), "aud", []string{"x", testAud}), k1), want: 200},
		{name: "lifetime over max", token: sign(t, hs, testSecret, with(goodClaims(), "exp", now.Add(2*time.Hour).Unix()), k1), want: 401},
		{name: "exp-now over max, iat ahead within leeway", token: sign(t, hs, testSecret, with(goodClaims(), "iat", now.Add(25*time.Second).Unix(), "exp", now.Add(60*time.Minute+25*time.Second).Unix()), k1), want: 401},
		{name: "exactly max", token: sign(t, hs, testSecret, with(goodClaims(), "iat", now.Unix(), "exp", now.Add(60*time.Minute).Unix()), k1), want: 200},
		{name: "exp-iat over max, backdated", token: sign(t, hs, testSecret, with(goodClaims(), "iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(time.Minute).Unix()), k1), want: 401},
		{name: "9 KiB token", token: sign(t, hs, testSecret, with(goodClaims(), "pad", strings.Repeat("a", 9<<10)), k1), want: 401},
		{name: "1 MB token", token: sign(t, hs, testSecret, with(goodClaims(), "pad", strings.Repeat("a", 1<<20)), k1), want: 413}, // the header guard
		{name: "kid path traversal", token: sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": "../../etc/passwd"}), want: 401},
		{name: "kid absolute path", token: sign(t, hs, []byte{}, goodClaims(), map[string]any{"kid": "/dev/null"}), want: 401},
		{name: "kid NUL", token: sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": "k1\x00"}), want: 401},
		{name: "kid number", token: sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": 1}), want: 401},
		{name: "kid SQL", token: sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": "' OR '1'='1"}), want: 401},
		{name: "jku to attacker keys", token: sign(t, jwt.SigningMethodES256, attacker, goodClaims(), map[string]any{"jku": "http://127.0.0.1:1/keys", "kid": "evil"}), want: 401},
		{name: "x5u to attacker cert", token: sign(t, jwt.SigningMethodES256, attacker, goodClaims(), map[string]any{"x5u": "http://127.0.0.1:1/cert"}), want: 401},
		{name: "embedded jwk", token: sign(t, jwt.SigningMethodES256, attacker, goodClaims(), map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256"}}), want: 401},
		{name: "jku ignored on a valid token", token: sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": "k1", "jku": "http://127.0.0.1:1/keys"}), want: 200},
		{name: "bad sub path", token: sign(t, hs, testSecret, with(goodClaims(), "sub", "../../root"), k1), want: 401},
		{name: "sub dotdot", token: sign(t, hs, testSecret, with(goodClaims(), "sub", ".."), k1), want: 401},
		{name: "missing sub", token: sign(t, hs, testSecret, with(goodClaims(), "sub", nil), k1), want: 401},
		{name: "sub too long", token: sign(t, hs, testSecret, with(goodClaims(), "sub", strings.Repeat("a", 65)), k1), want: 401},
		{name: "roles not a list", token: sign(t, hs, testSecret, with(goodClaims(), "roles", "admin"), k1), want: 401},
		{name: "role with a newline", token: sign(t, hs, testSecret, with(goodClaims(), "roles", []string{"a\nb"}), k1), want: 401},
		{name: "signature stripped", token: strings.TrimRightFunc(sign(t, hs, testSecret, goodClaims(), k1), func(r rune) bool { return r != '.' }), want: 401},
		{name: "padded base64", token: sign(t, hs, testSecret, goodClaims(), k1) + "==", want: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := "Bearer " + tc.token
			if tc.raw == "-" {
				h = ""
			} else if tc.raw != "" {
				h = tc.raw
			}
			r := env.doRaw("GET", "/v1/commands", h)
			if r.status != tc.want {
				t.Fatalf("got %d (%s), want %d", r.status, r.body, tc.want)
			}
			if tc.want == 401 && r.errCode() != CodeUnauthorized {
				t.Errorf("code %q, want unauthorized", r.errCode())
			}
		})
	}
	logs := env.logs.String()
	for _, tc := range cases {
		if len(tc.token) > 20 && strings.Contains(logs, tc.token[:len(tc.token)-10]) {
			t.Errorf("%s: token appears in the log", tc.name)
		}
	}
}

// TestKeyURLsNeverFetched: jku and x5u point at a listener that must never
// be contacted.
func TestKeyURLsNeverFetched(t *testing.T) {
	env := startServer(t, nil) // first: it skips without root, and the listener's goroutine must not leak
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var contacted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			contacted.Add(1)
			c.Close()
		}
	}()
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := "http://" + ln.Addr().String() + "/keys"
	for _, hdr := range []map[string]any{{"jku": u}, {"x5u": u}, {"jku": u, "kid": "k1"}} {
		tok := sign(t, jwt.SigningMethodES256, attacker, goodClaims(), hdr)
		if r := env.do("GET", "/v1/commands", tok, nil); r.status != 401 {
			t.Errorf("%v: got %d, want 401", hdr, r.status)
		}
	}
	ln.Close()
	<-done
	if n := contacted.Load(); n != 0 {
		t.Errorf("the gateway contacted a token's key URL %d times", n)
	}
}

// doRaw sends a request with a raw Authorization header ("" = none).
func (e *testEnv) doRaw(method, path, auth string) response {
	if auth == "" {
		return e.do(method, path, "", nil)
	}
	return e.do(method, path, "", nil, "Authorization", auth)
}

func TestTokenInQuery(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	for _, q := range []string{"access_token=" + tok, "token=x", "jwt=" + tok, "x=" + tok, "Authorization=Bearer%20" + tok, "API_KEY=k",
		"token=abc%zz", "page=1;token=x", "TOKEN=x", "to%6Ben=x", "a=1&&token="} {
		r := env.do("GET", "/v1/commands?"+q, tok, nil)
		if r.status != http.StatusBadRequest || r.errCode() != CodeTokenInQuery {
			t.Errorf("?%.20s: got %d %s, want 400 token_in_query", q, r.status, r.errCode())
		}
	}
	if r := env.do("GET", "/v1/commands?page=2", tok, nil); r.status != http.StatusOK {
		t.Errorf("harmless query: got %d, want 200", r.status)
	}
	if strings.Contains(env.logs.String(), tok[:40]) {
		t.Error("a token from the query string reached the log")
	}
}

func TestVerifierUnits(t *testing.T) {
	ring, err := NewKeyring([]*Key{{ID: "k1", Algorithm: "HS256", Key: testSecret, Secret: true}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default().JWT
	cfg.Issuer, cfg.Audience = testIss, testAud
	v, err := NewVerifier(cfg, ring)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, with(goodClaims(), "roles", []string{"a", "b"}, "jti", "x1"), nil))
	if err != nil || p.Subject != "alice" || strings.Join(p.Roles, ",") != "a,b" || p.TokenID != "x1" {
		t.Fatalf("got %+v, %v; want alice [a b] x1", p, err)
	}
	_, err = v.Verify(strings.Repeat("a", 9000))
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != "too_large" || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("got %v, want too_large matching ErrUnauthorized", err)
	}
	cfg.RolesClaim = "groups"
	gv, _ := NewVerifier(cfg, ring)
	p, err = gv.Verify(sign(t, jwt.SigningMethodHS256, testSecret, with(goodClaims(), "groups", []string{"ops"}), nil))
	if err != nil || strings.Join(p.Roles, ",") != "ops" {
		t.Errorf("roles_claim groups: got %+v, %v; want roles [ops]", p, err)
	}
	if _, err := NewVerifier(Default().JWT, ring); err == nil {
		t.Error("a verifier without issuer and audience was built")
	}
	if _, err := NewKeyring(nil); !errors.Is(err, ErrKey) {
		t.Errorf("empty keyring: got %v, want ErrKey", err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true}, {"bearer abc", "abc", true}, {"Bearer  abc ", "abc", true},
		{"Basic abc", "", false}, {"Bearer", "", false}, {"", "", false}, {"Bearerabc", "", false},
	} {
		got, ok := bearerToken(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLoadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name    string
		file    string
		private bool
		alg     string
		wantAlg string
		wantErr bool
	}{
		{name: "secret", file: write("s", append(testSecret, '\n'), 0o600), wantAlg: "HS256"},
		{name: "secret HS512", file: write("s5", testSecret, 0o600), alg: "HS512", wantAlg: "HS512"},
		{name: "secret readable by group", file: write("sg", testSecret, 0o640), wantErr: true},
		{name: "secret readable by others", file: write("so", testSecret, 0o604), wantErr: true},
		{name: "short secret", file: write("short", []byte("abc"), 0o600), wantErr: true},
		{name: "rsa public", file: write("rsa.pub", pemPublic(t, &rsaTestKey.PublicKey), 0o600), wantAlg: "RS256"},
		{name: "rsa public for signing", file: write("rsa2.pub", pemPublic(t, &rsaTestKey.PublicKey), 0o600), private: true, wantErr: true},
		{name: "rsa 1024", file: write("small.pub", pemPublic(t, &small.PublicKey), 0o600), wantErr: true},
		{name: "ec private", file: write("ec", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600), private: true, wantAlg: "ES256"},
		{name: "ec key with HS256", file: write("ec2", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600), alg: "HS256", wantErr: true},
		{name: "broken PEM", file: write("bad", []byte("-----BEGIN PUBLIC KEY-----\nabc\n"), 0o600), wantErr: true},
		{name: "missing", file: filepath.Join(dir, "nothere"), wantErr: true},
		{name: "directory", file: dir, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadKey(KeyConfig{ID: "x", File: tc.file, Algorithm: tc.alg}, tc.private)
			if tc.wantErr {
				if err == nil || !errors.Is(err, ErrKey) {
					t.Fatalf("got %v, want an ErrKey", err)
				}
				return
			}
			if err != nil || k.Algorithm != tc.wantAlg {
				t.Fatalf("got %v, %v; want algorithm %s", k, err, tc.wantAlg)
			}
		})
	}
	if _, err := LoadKey(KeyConfig{ID: "../x", File: cases[0].file}, false); err == nil {
		t.Error("a key id with a slash was accepted")
	}
}

func TestSignerRefusesBadInput(t *testing.T) {
	s := NewSigner(&Key{ID: "k1", Algorithm: "HS256", Key: testSecret, Secret: true}, testIss, testAud)
	for _, tc := range []struct {
		sub   string
		roles []string
		ttl   time.Duration
	}{{"../x", nil, time.Minute}, {"a", []string{"x y"}, time.Minute}, {"a", nil, 0}} {
		if _, _, err := s.Sign(tc.sub, tc.roles, tc.ttl); err == nil {
			t.Errorf("Sign(%q, %q, %s) succeeded", tc.sub, tc.roles, tc.ttl)
		}
	}
	tok, _, err := s.Sign("bob", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if !strings.Contains(string(hdr), `"kid":"k1"`) {
		t.Errorf("header %s has no kid", hdr)
	}
}

// TestVerifiedCacheHonoursExpiry: a remembered token stops working at its exp.
func TestVerifiedCacheHonoursExpiry(t *testing.T) {
	ring, _ := NewKeyring([]*Key{{ID: "k1", Algorithm: "HS256", Key: testSecret, Secret: true}})
	cfg := Default().JWT
	cfg.Issuer, cfg.Audience, cfg.Leeway = testIss, testAud, 0
	v, _ := NewVerifier(cfg, ring)
	now := time.Now()
	tok := sign(t, jwt.SigningMethodHS256, testSecret, with(goodClaims(), "exp", now.Add(2*time.Minute).Unix()), nil)
	for range 2 { // the second one comes from the cache
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	v.now = func() time.Time { return now.Add(3 * time.Minute) }
	if _, err := v.Verify(tok); err == nil {
		t.Fatal("an expired token was accepted from the cache")
	}
}

// TestHostileCorpusFile sends every token of testdata/hostile_tokens.txt.
func TestHostileCorpusFile(t *testing.T) {
	env := startServer(t, nil)
	data, err := os.ReadFile("testdata/hostile_tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	name, n := "", 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "# ") {
			name = strings.TrimPrefix(line, "# ")
			continue
		}
		if line == "" {
			continue
		}
		n++
		if r := env.do("GET", "/v1/commands", "", nil, "Authorization", "Bearer "+line); r.status != 401 || r.errCode() != CodeUnauthorized {
			t.Errorf("%s: got %d %s, want 401 unauthorized", name, r.status, r.body)
		}
	}
	if n < 20 {
		t.Errorf("only %d tokens in the corpus", n)
	}
}

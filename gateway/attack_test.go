package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// rawHS256 signs header and payload JSON exactly as written (jwt.Sign
// re-encodes maps, so duplicate keys need hand-made segments).
func rawHS256(header, payload string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

// TestAttackTokenShapes: claim and header shapes a signed token may still
// carry; each is refused by a real server.
func TestAttackTokenShapes(t *testing.T) {
	env := startServer(t, nil)
	now := time.Now().Unix()
	hdr := `{"alg":"HS256","typ":"JWT","kid":"k1"}`
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":%d,"exp":%d,%s}`, testIss, testAud, now, now+600, extra)
	}
	hs, k1 := jwt.SigningMethodHS256, map[string]any{"kid": "k1"}
	cases := []struct {
		name, token string
		want        int
	}{
		{"control: hand-made token", rawHS256(hdr, claims(`"sub":"alice","roles":["viewer"]`)), 200},
		{"duplicate sub", rawHS256(hdr, claims(`"sub":"alice","sub":"admin","roles":["viewer"]`)), 401},
		{"duplicate roles", rawHS256(hdr, claims(`"sub":"alice","roles":["viewer"],"roles":["admin"]`)), 401},
		{"duplicate exp", rawHS256(hdr, claims(fmt.Sprintf(`"sub":"alice","exp":%d`, now+99999))), 401},
		{"duplicate alg in header", rawHS256(`{"alg":"none","alg":"HS256","kid":"k1"}`, claims(`"sub":"alice"`)), 401},
		{"duplicate kid in header", rawHS256(`{"alg":"HS256","kid":"other","kid":"k1"}`, claims(`"sub":"alice"`)), 401},
		{"crit with an unknown extension", sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": "k1", "crit": []string{"x-must"}, "x-must": true}), 401},
		{"crit naming exp", sign(t, hs, testSecret, goodClaims(), map[string]any{"kid": "k1", "crit": []string{"exp"}}), 401},
		{"roles as a string", sign(t, hs, testSecret, with(goodClaims(), "roles", "admin"), k1), 401},
		{"roles with a number", sign(t, hs, testSecret, with(goodClaims(), "roles", []any{"viewer", 1}), k1), 401},
		{"roles with an object", sign(t, hs, testSecret, with(goodClaims(), "roles", []any{map[string]any{"admin": true}}), k1), 401},
		{"roles with null", sign(t, hs, testSecret, with(goodClaims(), "roles", []any{nil}), k1), 401},
		{"sub unicode", sign(t, hs, testSecret, with(goodClaims(), "sub", "аlice"), k1), 401},
		{"sub NUL", sign(t, hs, testSecret, with(goodClaims(), "sub", "alice\x00admin"), k1), 401},
		{"sub slash", sign(t, hs, testSecret, with(goodClaims(), "sub", "a/../b"), k1), 401},
		{"sub number", sign(t, hs, testSecret, with(goodClaims(), "sub", 7), k1), 401},
		{"exp huge", rawHS256(hdr, fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":%d,"exp":1e300,"sub":"alice"}`, testIss, testAud, now)), 401},
		{"exp 1e999", rawHS256(hdr, fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":%d,"exp":1e999,"sub":"alice"}`, testIss, testAud, now)), 401},
		{"iat negative", sign(t, hs, testSecret, with(goodClaims(), "iat", -1), k1), 401},
		{"iat huge negative", rawHS256(hdr, fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":-1e300,"exp":%d,"sub":"alice"}`, testIss, testAud, now+60)), 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := env.doRaw("GET", "/v1/commands", "Bearer "+tc.token); r.status != tc.want {
				t.Fatalf("got %d (%s), want %d", r.status, r.body, tc.want)
			}
		})
	}
}

// TestAttackAuthorizationHeaderSmuggling: a proxy that reads the other of
// two Authorization headers must not see a different caller than we do.
func TestAttackAuthorizationHeaderSmuggling(t *testing.T) {
	env := startServer(t, nil)
	good := env.token("alice", "viewer")
	send := func(vals ...string) int {
		req, err := http.NewRequest("GET", env.url+"/v1/commands", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			req.Header.Add("Authorization", v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name string
		vals []string
		want int
	}{
		{"one header", []string{"Bearer " + good}, 200},
		{"lower-case scheme", []string{"bearer " + good}, 200},
		{"extra spaces", []string{"Bearer    " + good + "  "}, 200},
		{"two headers, good first", []string{"Bearer " + good, "Bearer x"}, 401},
		{"two headers, good second", []string{"Bearer x", "Bearer " + good}, 401},
		{"two equal headers", []string{"Bearer " + good, "Bearer " + good}, 401},
		{"two tokens in one header", []string{"Bearer " + good + " " + good}, 401},
		{"comma-joined", []string{"Bearer " + good + ", Bearer " + good}, 401},
		{"tab separator", []string{"Bearer\t" + good}, 401},
	}
	for _, tc := range cases {
		if got := send(tc.vals...); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestAttackAPIKeySecretNeverLogged: an API key sent without its "id."
// prefix is the bare secret; it must not become the audit subject or a
// rate-limit key.
func TestAttackAPIKeySecretNeverLogged(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { loginConfig(cfg) })
	const bare = "Bare0Secret0Without0Id0Prefix"
	if r := env.do("POST", "/auth/token", "", map[string]any{"api_key": bare}); r.status != 401 {
		t.Fatalf("got %d %s, want 401", r.status, r.body)
	}
	for _, l := range env.auditLines() {
		if s := fmt.Sprint(l); strings.Contains(s, "Secret0Without") {
			t.Errorf("audit line carries the key: %s", s)
		}
	}
	if strings.Contains(env.logs.String(), "Secret0Without") {
		t.Error("the log carries the key")
	}
}

// TestAttackBodyKeySmuggling: keys that encoding/json folds or overwrites
// would let a filter in front see another command than the one we run.
func TestAttackBodyKeySmuggling(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "operator")
	cases := []struct {
		name, body, field string
		want              int
	}{
		{"control", `{"command":"echo","args":["x"]}`, "", 200},
		{"duplicate command", `{"command":"echo","command":"cat","args":["x"]}`, "command", 400},
		{"case variant after", `{"command":"echo","Command":"cat","args":["x"]}`, "Command", 400},
		{"case variant alone", `{"COMMAND":"echo","args":["x"]}`, "COMMAND", 400},
		{"long s folds to args", `{"command":"echo","arg\u017f":["x"]}`, "argſ", 400},
		{"duplicate args", `{"command":"echo","args":["x"],"args":["y"]}`, "args", 400},
		{"duplicate env name", `{"command":"echo","args":["x"],"env":{"A":"1","A":"2"}}`, "A", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.do("POST", "/v1/exec/check", tok, tc.body)
			if r.status != tc.want {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tc.want)
			}
			var b errorBody
			_ = jsonUnmarshal(r.body, &b)
			if tc.want == 400 && (b.Error.Code != CodeInvalidRequest || b.Error.Field != tc.field) {
				t.Errorf("got code %q field %q, want invalid_request field %q", b.Error.Code, b.Error.Field, tc.field)
			}
		})
	}
	login := startServer(t, func(cfg *Config, _ *Deps) { loginConfig(cfg) })
	r := login.do("POST", "/auth/token", "", `{"username":"mallory","Username":"alice","password":"correct horse"}`)
	if r.status != 400 {
		t.Errorf("login with a case-variant username key: got %d %s, want 400", r.status, r.body)
	}
}

func TestCheckKeys(t *testing.T) {
	exact := map[string]bool{"command": true, "args": true, "env": true}
	cases := []struct {
		in, key, reason string
	}{
		{`{"command":"a","args":["b"],"env":{"A":"1","a":"2"}}`, "a", "duplicate"},
		{`{"command":"a","args":[{"x":1},{"x":1}]}`, "", ""},
		{`{"command":"a","args":[{"x":1,"x":2}]}`, "x", "duplicate"},
		{`{"command":"a","env":{}}`, "", ""},
		{`{"Env":{}}`, "Env", "case"},
		{`{"other":1}`, "", ""}, // unknown fields are the decoder's to refuse
		{`{"command":"a"`, "", ""},
		{`[{"a":1},{"a":1}]`, "", ""},
		{`{"a":{"b":{"c":1,"C":2}}}`, "C", "duplicate"},
		{`{"\u212aey":1,"key":2}`, "key", "duplicate"}, // Kelvin sign folds to k
		{`{"command":"a"} {"command":"a"}`, "", ""},
	}
	for _, tc := range cases {
		p := checkKeys([]byte(tc.in), exact)
		got := keyProblem{}
		if p != nil {
			got = *p
		}
		if got.Key != tc.key || got.Reason != tc.reason {
			t.Errorf("checkKeys(%s) = %+v, want key %q reason %q", tc.in, got, tc.key, tc.reason)
		}
	}
}

// TestAttackPathAndMethodTricks: no spelling of the exec path but the one
// route reaches a handler, and no method but POST.
func TestAttackPathAndMethodTricks(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "operator")
	body := map[string]any{"command": "echo", "args": []string{"x"}}
	for _, p := range []string{"//v1/exec", "/v1/exec/", "/v1/./exec", "/v1/%2e/exec", "/v1/x/%2e%2e/exec", "/V1/EXEC", "/v1/exec%00", "/v1/exec;x"} {
		if r := env.do("POST", p, tok, body); r.status != http.StatusNotFound {
			t.Errorf("POST %s: got %d, want 404", p, r.status)
		}
	}
	for _, m := range []string{"TRACE", "PUT", "PATCH", "GET"} {
		if r := env.do(m, "/v1/exec", tok, nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s /v1/exec: got %d, want 405", m, r.status)
		}
	}
	r := env.do("OPTIONS", "/v1/exec", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from an unlisted origin got CORS headers: %v", r.header)
	}
}

// TestAttackClientRequestID: a client's X-Request-Id is never echoed or
// logged; the gateway's own id replaces it.
func TestAttackClientRequestID(t *testing.T) {
	env := startServer(t, nil)
	evil := "evil-" + strings.Repeat("A", 10<<10)
	r := env.do("GET", "/healthz", "", nil, "X-Request-Id", evil)
	got := r.header.Get("X-Request-Id")
	if got == "" || strings.HasPrefix(got, "evil") || len(got) != 32 {
		t.Errorf("X-Request-Id = %.40q, want the gateway's own 32-hex id", got)
	}
	if strings.Contains(env.logs.String(), "evil-AAAA") {
		t.Error("the client's request id reached the log")
	}
}

// TestAttackTokenNeverLogged sends a live token (and a password) in every
// place a client controls, then greps the log and the audit log for them.
func TestAttackTokenNeverLogged(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { loginConfig(cfg) })
	secret := env.token("alice", "viewer")
	admin := env.token("root-op", "admin")
	sig := secret[strings.LastIndex(secret, ".")+1:]
	payload := strings.Split(secret, ".")[1]
	const pass = "Hunter2-Pass-Phrase"
	hdrs := []string{"User-Agent", "Referer", "Cookie", "X-Forwarded-For", "X-Real-IP", "X-Request-Id", "Origin", "Forwarded", "X-Api-Key"}
	for _, h := range hdrs {
		env.do("GET", "/v1/commands", admin, nil, h, secret)
		env.do("GET", "/v1/commands", admin, nil, h, "Bearer "+secret)
	}
	for _, a := range []string{"Token " + secret, "Bearer " + secret + "x", "Bearer " + secret[:len(secret)-3], "Basic " + secret, secret} {
		env.doRaw("GET", "/v1/commands", a)
	}
	for _, p := range []string{"/v1/" + secret, "/v1/commands/" + secret, "/v1/commands?q=" + secret, "/v1/commands?" + secret, "/v1/commands?token=" + secret, "/v1/commands?" + secret + "=1"} {
		env.do("GET", p, admin, nil)
	}
	env.do("DELETE", "/v1/sessions/"+secret, admin, nil)
	env.do("POST", "/v1/exec", admin, map[string]any{"command": "echo", "args": []string{secret}})
	env.do("POST", "/v1/exec", admin, map[string]any{"command": "echo", "args": []string{"--token=" + secret}})
	env.do("POST", "/v1/exec", admin, map[string]any{"cmdline": "echo " + secret})
	env.do("POST", "/v1/exec", admin, map[string]any{"command": "echo", "env": map[string]string{"TZ": secret}})
	env.do("POST", "/v1/exec", admin, map[string]any{"command": "cat", "stdin": secret, "args": []string{"-"}})
	env.do("POST", "/v1/exec", admin, `{"command":"echo","args":["`+secret+`"],"bogus":"`+secret+`"}`)
	env.do("POST", "/auth/token", "", map[string]any{"username": secret, "password": pass})
	env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": secret})
	env.do("POST", "/auth/token", "", map[string]any{"username": pass, "password": "x"})
	env.do("POST", "/auth/token", "", map[string]any{"api_key": "ci." + secret})
	env.do("POST", "/auth/token", "", map[string]any{"api_key": secret})
	env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": pass})
	env.stop()
	data, err := os.ReadFile(env.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"log": env.logs.String(), "audit log": string(data)} {
		for what, s := range map[string]string{"token signature": sig, "token claims": payload[:40], "token start": secret[:64], "password": pass} {
			if i := strings.Index(text, s); i >= 0 {
				line := text[strings.LastIndex(text[:i], "\n")+1:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				t.Errorf("the %s carries the %s: %.300s", name, what, line)
			}
		}
	}
}

// TestAttackSlowloris: a client that never finishes its headers is cut off
// by read_header_timeout (the 10 s read deadline only guards the test).
func TestAttackSlowloris(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.HTTP.ReadHeaderTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a connection with unfinished headers open")
	}
}

// TestAttackLoginTimingStructure: an unknown user costs the same bcrypt
// work as a known one (the dummy hash has the costliest configured cost),
// and every failure gets the same answer.
func TestAttackLoginTimingStructure(t *testing.T) {
	h10, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cr, err := newCredentials(AuthConfig{
		Users:   []User{{Username: "alice", PasswordHash: string(h4)}, {Username: "bob", PasswordHash: string(h10)}},
		APIKeys: []APIKey{{ID: "ci", SecretHash: string(h4), Subject: "ci-bot"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(cr.dummy); c != 10 {
		t.Errorf("dummy hash cost %d, want 10 (the costliest configured)", c)
	}
	for _, r := range []tokenRequest{
		{Username: "mallory", Password: "pw"}, {Username: "Alice", Password: "pw"}, {Username: "alice", Password: "nope"},
		{APIKey: "nokey.pw"}, {APIKey: "ci"}, {APIKey: "ci.nope"}, {Username: "alice", Password: strings.Repeat("p", 73)},
	} {
		if _, ok := cr.verify(r); ok {
			t.Errorf("verify(%+v) = ok, want refused", r)
		}
	}
	if _, ok := cr.verify(tokenRequest{Username: "bob", Password: "pw"}); !ok {
		t.Error("bob with his password refused")
	}
	env := startServer(t, func(cfg *Config, _ *Deps) { loginConfig(cfg) })
	answer := func(body map[string]any) string {
		r := env.do("POST", "/auth/token", "", body)
		var b errorBody
		_ = jsonUnmarshal(r.body, &b)
		b.Error.RequestID = ""
		return fmt.Sprintf("%d %+v %s %s", r.status, b, r.header.Get("WWW-Authenticate"), r.header.Get("Retry-After"))
	}
	known := answer(map[string]any{"username": "alice", "password": "nope"})
	for _, body := range []map[string]any{{"username": "mallory", "password": "nope"}, {"username": "ALICE", "password": "nope"}, {"api_key": "nokey.x"}, {"api_key": "ci.nope"}} {
		if got := answer(body); got != known {
			t.Errorf("%v: answer %q, want %q (same as a known user's)", body, got, known)
		}
	}
}

// TestAttackJSONBombs: hostile bodies get a 400 or 413, the server stays
// up, and neither the answer nor the access log line grows with the input.
func TestAttackJSONBombs(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.HTTP.MaxBodyBytes = 2 << 20 })
	tok := env.token("alice", "operator")
	big := strings.Repeat("x", 1<<20)
	cases := []struct {
		name, body string
		want       int
	}{
		{"deep arrays", strings.Repeat("[", 1<<20), 400},
		{"deep objects in args", `{"command":"echo","args":` + strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000) + "}", 400},
		{"deep unknown field", `{"x":` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + "}", 400},
		{"1 MB command", `{"command":"` + big + `"}`, 200}, // a decision: denied, not run
		{"1 MB unknown key", `{"` + big + `":1}`, 400},
		{"512 KB case-variant keys", `{"command":"echo","env":{"` + big[:512<<10] + `":"1","` + strings.ToUpper(big[:512<<10]) + `":"2"}}`, 400},
		{"timeout 1e999", `{"command":"echo","timeout_ms":1e999}`, 400},
		{"timeout negative", `{"command":"echo","timeout_ms":-1}`, 400},
		{"timeout fraction", `{"command":"echo","timeout_ms":1.5}`, 400},
		{"timeout huge", `{"command":"echo","timeout_ms":9223372036854775807}`, 400},
		{"timeout string", `{"command":"echo","timeout_ms":"5"}`, 400},
		{"output negative", `{"command":"echo","max_output_bytes":-5}`, 400},
		{"10k args", `{"command":"echo","args":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 10000), ",") + `]}`, 200},
		{"NUL in command", `{"command":"echo\u0000x"}`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.do("POST", "/v1/exec/check", tok, tc.body)
			if r.status != tc.want {
				t.Fatalf("got %d %.200s, want %d", r.status, r.body, tc.want)
			}
			if len(r.body) > 4096 {
				t.Errorf("answer of %d bytes echoes the input", len(r.body))
			}
		})
	}
	if r := env.do("GET", "/healthz", "", nil); r.status != 200 {
		t.Fatalf("server after the bombs: got %d", r.status)
	}
	for _, line := range strings.Split(env.logs.String(), "\n") {
		if len(line) > 4096 {
			t.Errorf("log line of %d bytes: %.200s", len(line), line)
		}
	}
}

// TestAttackLoginDenialFromAnotherIP: an attacker guessing alice's password
// from one address gets locked out there; alice, from her own address,
// still logs in (neither the pair lockout nor the per-user limit may be
// drained by the locked-out attacker).
func TestAttackLoginDenialFromAnotherIP(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		loginConfig(cfg)
		cfg.Auth.Lockout.PairThreshold, cfg.Auth.Lockout.IPThreshold = 3, 100
		cfg.Limits.AuthPerUser = "8-M"
	})
	login := func(ip, pass string) response {
		return env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": pass}, "X-Forwarded-For", ip)
	}
	for range 20 {
		login("203.0.113.66", "guess")
	}
	if r := login("203.0.113.66", "correct horse"); r.status != 429 {
		t.Errorf("attacker's own address: got %d, want 429 (locked out)", r.status)
	}
	if r := login("198.51.100.7", "correct horse"); r.status != 200 {
		t.Errorf("alice from her address after the attack: got %d %s, want 200", r.status, r.body)
	}
	// Spread over many addresses, each under its lockout, wrong guesses
	// past the per-user limit (8 a minute) still do not lock alice out.
	for i := range 6 {
		for range 2 {
			login(fmt.Sprintf("203.0.113.%d", 10+i), "guess")
		}
	}
	if r := login("198.51.100.8", "correct horse"); r.status != 200 {
		t.Errorf("alice after 12 wrong guesses from 6 addresses: got %d %s, want 200", r.status, r.body)
	}
	// The per-user limit counts the tokens alice is issued: 8 a minute.
	status := 0
	for i := range 9 {
		status = login(fmt.Sprintf("198.51.100.%d", 20+i), "correct horse").status
	}
	if status != 429 {
		t.Errorf("alice's 11th token within a minute: got %d, want 429 (auth_per_user)", status)
	}
}

// TestAttackLogInjection: control bytes, bare CRs and Unicode line
// separators in client headers never split a log or audit line.
func TestAttackLogInjection(t *testing.T) {
	env := startServer(t, nil)
	tok := env.token("alice", "viewer")
	for _, ua := range []string{"x\rinjected", "x\x1b[2J\x00y", "x\u2028{\"type\":\"auth_success\"}\u2029", "x\xff\xfe", "x\r\n\r\nGET /admin HTTP/1.1"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(env.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", tok, ua)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.ReadAll(conn)
		conn.Close()
	}
	env.do("GET", "/v1/commands", "bad-token", nil, "User-Agent", "ua\u2028{\"type\":\"auth_success\"}")
	env.stop()
	data, err := os.ReadFile(env.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"log": env.logs.String(), "audit log": string(data)} {
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			var m map[string]any
			if err := jsonUnmarshal([]byte(line), &m); err != nil {
				t.Errorf("%s line is not one JSON object: %.200q", name, line)
			}
			if strings.ContainsAny(line, "\r\x1b\x00\u2028") {
				t.Errorf("%s line carries a raw control or separator: %.200q", name, line)
			}
		}
	}
}

// TestAttackAdminEndpointsWithoutAdmin: every admin endpoint refuses every
// caller whose roles do not carry the admin permission, whatever the role
// is called, and a refused kill or drain changes nothing.
func TestAttackAdminEndpointsWithoutAdmin(t *testing.T) {
	env := startServer(t, nil)
	routes := []struct{ method, path string }{
		{"GET", "/v1/health"}, {"GET", "/v1/sessions"}, {"DELETE", "/v1/sessions/0123456789abcdef0123456789abcdef"}, {"POST", "/v1/admin/drain"},
	}
	for _, roles := range [][]string{nil, {"viewer"}, {"operator"}, {"Admin"}, {"ADMIN"}, {"admin:"}, {"admins"}, {"root"}, {"permissions"}} {
		tok := env.token("mallory", roles...)
		for _, rt := range routes {
			if r := env.do(rt.method, rt.path, tok, nil); r.status != http.StatusForbidden {
				t.Errorf("roles %v %s %s: got %d, want 403", roles, rt.method, rt.path, r.status)
			}
		}
	}
	if r := env.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Errorf("after refused drains /readyz: got %d, want 200 (not draining)", r.status)
	}
}

// TestAttackForwardedForVariants: spellings of one client in X-Forwarded-For
// (zone ids, IPv4-mapped IPv6, another address of the same /64) land in one
// rate-limit bucket; headers from an untrusted peer are ignored.
func TestAttackForwardedForVariants(t *testing.T) {
	trusted, _ := parsePrefixes([]string{"127.0.0.1", "::1"})
	ci := clientIPs{trusted: trusted}
	key := func(peer, xff string) string {
		r := newReq(peer)
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return rateKey(ci.clientIP(r))
	}
	same := []struct{ peer, xff, want string }{
		{"127.0.0.1:1", "198.51.100.9", "198.51.100.9"},
		{"127.0.0.1:1", "::ffff:198.51.100.9", "198.51.100.9"},
		{"[::1]:1", "198.51.100.9", "198.51.100.9"},
		{"127.0.0.1:1", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"127.0.0.1:1", "2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"127.0.0.1:1", "2001:db8:1:2::1%eth0", "2001:db8:1:2::/64"},
		{"127.0.0.1:1", "2001:db8:1:2:0:0:0:7", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::5%lo]:1", "", "2001:db8:1:2::/64"},
		{"203.0.113.5:1", "198.51.100.9", "203.0.113.5"},         // untrusted peer: XFF ignored
		{"203.0.113.5:1", "127.0.0.1", "203.0.113.5"},            // nor may it claim to be a proxy
		{"[2001:db8:9::1]:1", "198.51.100.9", "2001:db8:9::/64"}, // untrusted v6 peer
	}
	for _, tc := range same {
		if got := key(tc.peer, tc.xff); got != tc.want {
			t.Errorf("peer %s xff %q: bucket %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}

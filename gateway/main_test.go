package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeTestSandbox()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// The one sandbox Manager of the package's tests (starting one is costly).
var (
	sbOnce sync.Once
	sbMgr  *sandbox.Manager
	sbErr  error
	sbDir  string
)

func testSandbox(t testing.TB) *sandbox.Manager {
	t.Helper()
	sbOnce.Do(func() {
		sbDir, sbErr = os.MkdirTemp("", "execgate-gwtest-")
		if sbErr != nil {
			return
		}
		// EXECGATE_TEST_INSTANCE lets two checkouts test side by side
		// (an instance's cgroup parent is locked by one process).
		instance := "gwtest"
		if v := os.Getenv("EXECGATE_TEST_INSTANCE"); v != "" {
			instance = v
		}
		stateRoot := filepath.Join(sbDir, "state")
		if os.Getenv("EXECGATE_BENCH") == "1" {
			// As in production: the sandbox's state on tmpfs under /run
			// (sandbox.Config's default), not on the disk that holds the
			// audit log, whose fsyncs would then also commit the state
			// directories' journal entries.
			stateRoot = ""
		}
		sbMgr, sbErr = sandbox.New(context.Background(), sandbox.Config{
			Instance:  instance,
			StateRoot: stateRoot,
		}, slog.New(slog.DiscardHandler))
	})
	if sbErr != nil {
		if os.Getenv("CI") == "" && os.Geteuid() != 0 {
			t.Skipf("sandbox needs root: %v (with CI set: fails)", sbErr)
		}
		t.Fatalf("sandbox: %v", sbErr)
	}
	return sbMgr
}

func closeTestSandbox() {
	if sbMgr != nil {
		_ = sbMgr.Close()
	}
	if sbDir != "" {
		_ = os.RemoveAll(sbDir)
	}
}

// testEnv is one real server on a loopback port.
type testEnv struct {
	t         testing.TB
	srv       *Server
	url       string
	cfg       Config
	keyFile   string
	audit     *Auditor
	auditPath string
	ws        string // workspace parent
	policyDir string
	local     *executor.Local
	logs      *syncBuffer
	cancel    context.CancelFunc
	done      chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	testIss = "test-issuer"
	testAud = "test-audience"
)

// testSecret is the HMAC secret of the test key "k1".
var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// writePolicy writes the test policy with its workspace under ws.
func writePolicy(t testing.TB, dir, ws string) {
	t.Helper()
	data, err := os.ReadFile("testdata/policy.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), bytes.ReplaceAll(data, []byte("{{WS}}"), []byte(ws)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testConfig is a config with the test key, issuer and audience.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	cfg := Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = ""
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Policy = filepath.Join(dir, "policy")
	cfg.JWT.Issuer, cfg.JWT.Audience = testIss, testAud
	keyFile := filepath.Join(dir, "k1.key")
	if err := os.WriteFile(keyFile, testSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.JWT.Keys = []KeyConfig{{ID: "k1", File: keyFile}}
	cfg.PolicyPoll = 50 * time.Millisecond
	cfg.ShutdownGrace = 2 * time.Second
	return cfg
}

// startServer builds and serves a real server; mutate adjusts config and deps.
func startServer(t testing.TB, mutate func(*Config, *Deps)) *testEnv {
	t.Helper()
	mgr := testSandbox(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	env := &testEnv{t: t, cfg: cfg, keyFile: cfg.JWT.Keys[0].File, ws: filepath.Join(dir, "ws"), policyDir: cfg.Policy, logs: &syncBuffer{}}
	for _, d := range []string{cfg.StateDir, env.ws, env.policyDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy(t, env.policyDir, env.ws)
	env.auditPath = filepath.Join(dir, "audit.log")
	log := slog.New(slog.NewJSONHandler(env.logs, nil))
	aud, err := NewAuditor(AuditConfig{Path: env.auditPath, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	env.audit = aud
	env.local = executor.NewLocal(mgr, nil, log)
	deps := Deps{
		Runner: env.local, Audit: aud, Logger: log,
		LoadPolicy: func(ctx context.Context) (*policy.Set, error) {
			return policy.Load(ctx, []string{cfg.Policy}, policy.LoadOptions{StateDir: cfg.StateDir})
		},
		OnPolicy: func(s *policy.Set) { env.local.SetPolicy(s) },
		Version:  "test",
	}
	if mutate != nil {
		mutate(&cfg, &deps)
	}
	if deps.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deps.Listener = ln
	}
	env.url = "http://" + deps.Listener.Addr().String()
	env.cfg = cfg
	srv, err := New(context.Background(), cfg, deps)
	if err != nil {
		deps.Listener.Close()
		aud.Close()
		t.Fatalf("New: %v", err)
	}
	env.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	env.cancel, env.done = cancel, make(chan error, 1)
	go func() { env.done <- srv.Serve(ctx) }()
	t.Cleanup(env.stop)
	return env
}

// stop ends the server and the auditor (idempotent).
func (e *testEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Serve: %v", err)
	}
	e.cancel = nil
	_ = e.audit.Close()
}

// token signs a token with the test key.
func (e *testEnv) token(sub string, roles ...string) string {
	e.t.Helper()
	k := &Key{ID: "k1", Algorithm: "HS256", Key: testSecret, Secret: true}
	tok, _, err := NewSigner(k, testIss, testAud).Sign(sub, roles, 10*time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// errCode returns error.code of an error answer.
func (r response) errCode() string {
	var b errorBody
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

func (r response) errReason() string {
	var b errorBody
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Reason
}

// do sends a request; token "" sends no Authorization header.
func (e *testEnv) do(method, path, token string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// auditLines returns every audit line written so far.
func (e *testEnv) auditLines() []map[string]any {
	e.t.Helper()
	f, err := os.Open(e.auditPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			e.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// auditFor returns the audit lines of one request id.
func (e *testEnv) auditFor(requestID string) []map[string]any {
	var out []map[string]any
	for _, l := range e.auditLines() {
		if l["request_id"] == requestID {
			out = append(out, l)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func newReq(remote string) *http.Request {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = remote
	return r
}

// nilRunner and discardAudit only satisfy New's checks in tests that
// expect New to fail before anything would run.
type nilRunner struct{}

func (nilRunner) Run(context.Context, executor.Job) (*policy.Decision, sandbox.Result, error) {
	return nil, sandbox.Result{}, errors.New("not for running")
}

type discardAudit struct{}

func (discardAudit) Record(context.Context, Event) error { return nil }
func (discardAudit) RecordAllWritten(context.Context, ...Event) (AuditCommit, error) {
	return func(context.Context) error { return nil }, nil
}
func (discardAudit) Writable() error { return nil }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

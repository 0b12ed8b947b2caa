package gateway

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/execgate/execgate/policies"
	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// The API is documented twice, in prose (docs/api.md) and as OpenAPI
// (docs/openapi.yaml). These tests fail when the two disagree on an endpoint
// or an error code, when an error code of the gateway (a Code* constant) is
// undocumented, and when the server's router registers a route that is not
// documented or lacks a documented one.

const (
	apiMarkdown = "../docs/api.md"
	openAPIFile = "../docs/openapi.yaml"
)

// openAPIDoc is the part of docs/openapi.yaml the sync tests read.
type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	ErrorCodes map[string]int                  `yaml:"x-error-codes"`
	Components struct {
		Schemas struct {
			ErrorCode struct {
				Enum []string `yaml:"enum"`
			} `yaml:"ErrorCode"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

var httpMethods = map[string]bool{"get": true, "post": true, "put": true, "patch": true, "delete": true, "head": true, "options": true}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	data, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("%s: openapi = %q, want 3.1.x", openAPIFile, doc.OpenAPI)
	}
	return doc
}

// endpoints returns "METHOD /path" for every operation, paths as in OpenAPI
// ({id}).
func (d openAPIDoc) endpoints() map[string]bool {
	out := map[string]bool{}
	for path, ops := range d.Paths {
		for m := range ops {
			if httpMethods[m] {
				out[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	return out
}

// apiDoc is what the sync tests read from docs/api.md.
type apiDoc struct {
	headings   map[string]bool // "### METHOD /path"
	summary    map[string]bool // rows of the endpoint table: | `METHOD /path` | ...
	errorCodes map[string]int  // rows of the error table under "## Errors"
}

var (
	mdHeadingRe = regexp.MustCompile(`^#{2,4} (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)\s*$`)
	mdSummaryRe = regexp.MustCompile("^\\| `(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/[^`]*)` \\|")
	mdErrorRe   = regexp.MustCompile("^\\| `([a-z_]+)` \\| ([0-9]{3}) \\|")
)

func loadAPIMarkdown(t *testing.T) apiDoc {
	t.Helper()
	f, err := os.Open(apiMarkdown)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc := apiDoc{headings: map[string]bool{}, summary: map[string]bool{}, errorCodes: map[string]int{}}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		}
		if m := mdHeadingRe.FindStringSubmatch(line); m != nil {
			doc.headings[m[1]+" "+m[2]] = true
		}
		if m := mdSummaryRe.FindStringSubmatch(line); m != nil && section == "Endpoints" {
			doc.summary[m[1]+" "+m[2]] = true
		}
		if m := mdErrorRe.FindStringSubmatch(line); m != nil && section == "Errors" {
			status, _ := strconv.Atoi(m[2])
			if prev, dup := doc.errorCodes[m[1]]; dup {
				t.Errorf("%s:%d: error code %s listed twice (%d and %d)", apiMarkdown, n, m[1], prev, status)
			}
			doc.errorCodes[m[1]] = status
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return doc
}

// diffSets reports what is in a but not in b.
func diffSets(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func TestAPIDocsEndpointsInSync(t *testing.T) {
	oa := loadOpenAPI(t).endpoints()
	md := loadAPIMarkdown(t)
	if len(oa) == 0 || len(md.headings) == 0 {
		t.Fatalf("found %d OpenAPI operations and %d api.md endpoint headings: parsing is broken", len(oa), len(md.headings))
	}
	for _, e := range diffSets(oa, md.headings) {
		t.Errorf("%s is in openapi.yaml but has no \"### %s\" section in api.md", e, e)
	}
	for _, e := range diffSets(md.headings, oa) {
		t.Errorf("%s is documented in api.md but missing from openapi.yaml", e)
	}
	for _, e := range diffSets(md.headings, md.summary) {
		t.Errorf("%s has a section in api.md but no row in its endpoint table", e)
	}
	for _, e := range diffSets(md.summary, md.headings) {
		t.Errorf("%s is in api.md's endpoint table but has no section", e)
	}
	// Every endpoint issue 4 names.
	for _, e := range []string{"POST /v1/exec", "POST /v1/exec/check", "GET /v1/commands", "GET /healthz",
		"GET /readyz", "GET /v1/health", "GET /v1/sessions", "DELETE /v1/sessions/{id}",
		"POST /v1/admin/drain", "POST /auth/token", "GET /metrics"} {
		if !oa[e] {
			t.Errorf("%s is not documented", e)
		}
	}
}

func TestAPIDocsErrorCodesInSync(t *testing.T) {
	doc := loadOpenAPI(t)
	md := loadAPIMarkdown(t)
	if len(doc.ErrorCodes) == 0 || len(md.errorCodes) == 0 {
		t.Fatalf("found %d OpenAPI x-error-codes and %d api.md error rows: parsing is broken", len(doc.ErrorCodes), len(md.errorCodes))
	}
	for code, status := range doc.ErrorCodes {
		got, ok := md.errorCodes[code]
		switch {
		case !ok:
			t.Errorf("error code %s is in openapi.yaml but not in api.md's error table", code)
		case got != status:
			t.Errorf("error code %s: api.md says %d, openapi.yaml says %d", code, got, status)
		}
	}
	for code := range md.errorCodes {
		if _, ok := doc.ErrorCodes[code]; !ok {
			t.Errorf("error code %s is in api.md but not in openapi.yaml x-error-codes", code)
		}
	}
	enum := map[string]bool{}
	for _, c := range doc.Components.Schemas.ErrorCode.Enum {
		enum[c] = true
	}
	if got, want := slices.Sorted(maps.Keys(enum)), slices.Sorted(maps.Keys(doc.ErrorCodes)); !slices.Equal(got, want) {
		t.Errorf("openapi.yaml ErrorCode enum %v differs from x-error-codes %v", got, want)
	}
	// The codes and statuses issue 4 names.
	want := map[string]int{
		"invalid_request": 400, "token_in_query": 400, "unauthorized": 401, "forbidden": 403,
		"ip_not_allowed": 403, "not_found": 404, "method_not_allowed": 405, "payload_too_large": 413,
		"rate_limited": 429, "too_many_sessions": 429, "locked_out": 429, "draining": 503,
		"audit_unavailable": 503, "unavailable": 503, "internal": 500,
	}
	for code, status := range want {
		if got := doc.ErrorCodes[code]; got != status {
			t.Errorf("error code %s documented with status %d, want %d", code, got, status)
		}
	}
}

// gatewayErrorCodes returns the values of every Code* string constant in the
// package's non-test sources: the codes the gateway can answer with.
func gatewayErrorCodes(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatalf("%s: %s: %v", name, id.Name, err)
						}
						out[id.Name] = v
					}
				}
			}
		}
	}
	return out
}

func TestAPIDocsCoverGatewayErrorCodes(t *testing.T) {
	consts := gatewayErrorCodes(t)
	if len(consts) == 0 {
		t.Skip("the gateway defines no Code* constants yet")
	}
	documented := loadOpenAPI(t).ErrorCodes
	values := map[string]bool{}
	for name, code := range consts {
		values[code] = true
		if _, ok := documented[code]; !ok {
			t.Errorf("%s = %q is not documented in docs/api.md and docs/openapi.yaml", name, code)
		}
	}
	for code := range documented {
		if !values[code] {
			t.Errorf("documented error code %q is not a Code* constant of the gateway", code)
		}
	}
}

// ginPathRe turns gin's ":id" and "*path" into OpenAPI's "{id}".
var ginPathRe = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// unusedRunner satisfies Deps.Runner for a server that is only asked for its
// routes; it runs nothing.
type unusedRunner struct{}

func (unusedRunner) Run(context.Context, executor.Job) (*policy.Decision, sandbox.Result, error) {
	return nil, sandbox.Result{}, errors.New("the routes test runs nothing")
}

// docServer is a real Server built from the shipped default policy and one
// HS256 key, with a runner that runs nothing: enough for routes, decisions
// (/v1/exec/check), authentication and the audit log.
type docServer struct {
	srv       *Server
	secret    []byte // the HS256 key (the key file's content)
	auditPath string
}

func newDocServer(t *testing.T, mutate func(*Config)) docServer {
	t.Helper()
	dir := t.TempDir()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	secret := []byte(hex.EncodeToString(raw))
	keyFile := filepath.Join(dir, "jwt.key")
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.StateDir = dir
	cfg.Policy = policies.DefaultName
	cfg.MetricsListen = "" // serve /metrics on the main router
	cfg.JWT.Issuer, cfg.JWT.Audience = "execgate-test", "execgate-test"
	cfg.JWT.Keys = []KeyConfig{{ID: "test", File: keyFile}}
	if mutate != nil {
		mutate(&cfg)
	}
	auditPath := filepath.Join(dir, "audit.log")
	aud := newTestAuditor(t, auditPath)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	srv, err := New(context.Background(), cfg, Deps{
		Runner: unusedRunner{}, Audit: aud, Metrics: NewMetrics(reg), Registry: reg, Logger: log,
		LoadPolicy: func(context.Context) (*policy.Set, error) {
			return policy.LoadBytes(policies.DefaultName, policies.Default, policy.LoadOptions{StateDir: dir})
		},
	})
	if err != nil {
		t.Fatalf("build a server: %v", err)
	}
	t.Cleanup(srv.close)
	return docServer{srv: srv, secret: secret, auditPath: auditPath}
}

// registeredRoutes returns the router's routes as "METHOD /path" in OpenAPI
// form, of a server that serves /metrics on its main listener.
func registeredRoutes(t *testing.T) map[string]bool {
	t.Helper()
	ds := newDocServer(t, nil)
	eng, ok := ds.srv.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("Server.Handler() is %T, want *gin.Engine", ds.srv.Handler())
	}
	out := map[string]bool{}
	for _, r := range eng.Routes() {
		out[r.Method+" "+ginPathRe.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return out
}

func TestAPIDocsMatchRegisteredRoutes(t *testing.T) {
	routes := registeredRoutes(t)
	documented := loadOpenAPI(t).endpoints()
	for _, r := range diffSets(routes, documented) {
		t.Errorf("route %s is registered but not documented in docs/api.md and docs/openapi.yaml", r)
	}
	for _, r := range diffSets(documented, routes) {
		t.Errorf("%s is documented but the server does not register it", r)
	}
}

// structJSONFields returns the JSON names of the fields of the struct type
// typeName declared in the Go package in dir (parsed, not compiled, so a
// renamed type fails this test instead of the package's build).
func structJSONFields(t *testing.T, dir, typeName string) (map[string]bool, bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok || ts.Name.Name != typeName {
					continue
				}
				out := map[string]bool{}
				for _, field := range st.Fields.List {
					if field.Tag == nil {
						continue
					}
					tag, _ := strconv.Unquote(field.Tag.Value)
					jsonName, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
					if jsonName != "" && jsonName != "-" {
						out[jsonName] = true
					}
				}
				return out, true
			}
		}
	}
	return nil, false
}

// schemaProperties returns the property names of components.schemas.name
// (path continues into nested properties, e.g. "Error", "error").
func schemaProperties(t *testing.T, doc map[string]any, name string, path ...string) map[string]bool {
	t.Helper()
	node, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	for _, p := range path {
		props, _ := node["properties"].(map[string]any)
		node, _ = props[p].(map[string]any)
	}
	props, _ := node["properties"].(map[string]any)
	out := map[string]bool{}
	for k := range props {
		out[k] = true
	}
	return out
}

// TestAPIDocsBodiesMatchCode compares the JSON fields of the request and
// response types with the OpenAPI schemas that describe them.
func TestAPIDocsBodiesMatchCode(t *testing.T) {
	data, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir, goType, schema string
		path                []string
	}{
		{".", "execRequest", "ExecRequest", nil},
		{".", "execResponse", "ExecResponse", nil},
		{".", "checkResponse", "CheckResponse", nil},
		{".", "limitsView", "Limits", nil},
		{".", "healthResponse", "HealthResponse", nil},
		{".", "sessionInfo", "SessionInfo", nil},
		{".", "tokenRequest", "TokenRequest", nil},
		{".", "tokenResponse", "TokenResponse", nil},
		{".", "errorDetail", "Error", []string{"error"}},
		{"../policy", "CommandInfo", "CommandInfo", nil},
		{"../policy", "FlagInfo", "FlagInfo", nil},
		{"../policy", "PositionalsInfo", "PositionalsInfo", nil},
		{"../policy", "Value", "Value", nil},
	}
	for _, tt := range tests {
		t.Run(tt.goType, func(t *testing.T) {
			code, ok := structJSONFields(t, tt.dir, tt.goType)
			if !ok {
				t.Fatalf("type %s not found in %s: the API body changed; update docs/openapi.yaml, docs/api.md and this table", tt.goType, tt.dir)
			}
			documented := schemaProperties(t, doc, tt.schema, tt.path...)
			for _, f := range diffSets(code, documented) {
				t.Errorf("%s.%s (json %q) is not in openapi.yaml schema %s", tt.goType, f, f, tt.schema)
			}
			for _, f := range diffSets(documented, code) {
				t.Errorf("openapi.yaml schema %s property %q is not a field of %s", tt.schema, f, tt.goType)
			}
		})
	}
}

// tokenInURLRe matches a credential in a URL query string.
var tokenInURLRe = regexp.MustCompile(`(?i)[?&](access_?token|token|jwt|id_?token|api_?key|apikey|key|password|secret|auth)=`)

// TestAPIDocsCurlExamples checks the examples teach the right habit: every
// curl to a /v1/ endpoint sends the token in the Authorization header, and
// no URL anywhere carries a credential.
func TestAPIDocsCurlExamples(t *testing.T) {
	data, err := os.ReadFile(apiMarkdown)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ") // join continued lines
	var curls int
	for n, line := range strings.Split(text, "\n") {
		if tokenInURLRe.MatchString(line) || strings.Contains(line, "eyJ") && strings.Contains(line, "http") {
			t.Errorf("%s: a credential in a URL: %s", apiMarkdown, line)
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "curl ") {
			continue
		}
		curls++
		if strings.Contains(line, "/v1/") && !strings.Contains(line, `-H "Authorization: Bearer $`) {
			t.Errorf("%s: curl example %d calls /v1/ without an Authorization header: %s", apiMarkdown, n, line)
		}
	}
	if curls < 10 {
		t.Errorf("found %d curl examples in %s, want one per endpoint", curls, apiMarkdown)
	}
}

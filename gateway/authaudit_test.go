package gateway

import (
	"log/slog"
	"strings"
	"testing"
)

// TestAuthRecordEveryRequest: every authenticated request leaves exactly one
// auth record, also when the same token is reused (the verifier caches it):
// its decision or admin line carries auth_method and kid, and a request
// without such a line gets its own auth_success line with the status.
func TestAuthRecordEveryRequest(t *testing.T) {
	env := startServer(t, nil)
	viewer, admin := env.token("alice", "viewer"), env.token("root", "admin")
	cases := []struct {
		name, method, path, tok string
		body                    any
		status                  int
		line                    string // the type of the line carrying the auth fields
	}{
		{"commands", "GET", "/v1/commands", viewer, nil, 200, "auth_success"},
		{"commands again, same token", "GET", "/v1/commands", viewer, nil, 200, "auth_success"},
		{"check", "POST", "/v1/exec/check", viewer, map[string]any{"command": "echo"}, 200, "decision"},
		{"check again", "POST", "/v1/exec/check", viewer, map[string]any{"command": "echo"}, 200, "decision"},
		{"denied check", "POST", "/v1/exec/check", viewer, map[string]any{"command": "rm"}, 200, "decision"},
		{"bad body", "POST", "/v1/exec/check", viewer, `{"command":`, 400, "auth_success"},
		{"admin endpoint, no permission", "GET", "/v1/health", viewer, nil, 403, "auth_success"},
		{"admin health", "GET", "/v1/health", admin, nil, 200, "auth_success"},
		{"admin action", "GET", "/v1/sessions", admin, nil, 200, "admin_action"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.do(tc.method, tc.path, tc.tok, tc.body)
			if r.status != tc.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tc.status)
			}
			var carrying []map[string]any
			var types []string
			for _, l := range env.auditFor(r.header.Get("X-Request-Id")) {
				types = append(types, l["type"].(string))
				if l["auth_method"] != nil {
					carrying = append(carrying, l)
				}
			}
			if len(carrying) != 1 {
				t.Fatalf("lines %v: got %d carrying auth_method, want exactly 1", types, len(carrying))
			}
			l := carrying[0]
			if l["type"] != tc.line || l["auth_method"] != "jwt" || l["kid"] != "k1" || l["subject"] == nil {
				t.Errorf("auth record %v: want type %s, auth_method jwt, kid k1, a subject", l, tc.line)
			}
			if tc.line == "auth_success" && l["status"] != float64(tc.status) {
				t.Errorf("auth_success status %v, want %d", l["status"], tc.status)
			}
			if strings.Count(strings.Join(types, ","), "auth_success") > 1 {
				t.Errorf("lines %v: more than one auth_success", types)
			}
		})
	}
}

// TestAuthRecordUnwritable: when the auth record cannot be written, an
// authenticated read is refused (503 audit_unavailable) rather than
// answered unrecorded; the answer carries nothing of the handler's.
func TestAuthRecordUnwritable(t *testing.T) {
	var full *Auditor
	env := startServer(t, func(_ *Config, d *Deps) {
		var err error
		full, err = NewAuditor(AuditConfig{Path: "/dev/full", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		d.Audit = full
	})
	defer full.Close()
	for _, path := range []string{"/v1/commands", "/v1/health"} {
		r := env.do("GET", path, env.token("root", "admin"), nil)
		if r.status != 503 || r.errCode() != CodeAuditUnavailable || strings.Contains(string(r.body), "commands") || strings.Contains(string(r.body), "version") {
			t.Errorf("%s: got %d %s, want 503 audit_unavailable and nothing else", path, r.status, r.body)
		}
		if r.header.Get("X-Request-Id") == "" || !strings.Contains(string(r.body), r.header.Get("X-Request-Id")) {
			t.Errorf("%s: the 503 lacks the request id: %s", path, r.body)
		}
	}
}

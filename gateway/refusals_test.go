package gateway

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// countAudit counts the lines of type typ (and reason, when not "").
func countAudit(lines []map[string]any, typ EventType, reason string) int {
	n := 0
	for _, l := range lines {
		if l["type"] == string(typ) && (reason == "" || l["reason"] == reason) {
			n++
		}
	}
	return n
}

// suppressedCount sums the audit_suppressed lines of reason and remote IP group.
func suppressedCount(lines []map[string]any, reason, ip string) int {
	n := 0
	for _, l := range lines {
		if l["type"] == string(EventAuditSuppressed) && l["reason"] == reason && (ip == "" || l["remote_ip"] == ip) {
			s, _ := l["suppressed"].(float64)
			n += int(s)
		}
	}
	return n
}

func TestAuthFailureLimit(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			env := startServer(t, func(cfg *Config, _ *Deps) {
				cfg.Limits.AuthFailuresPerIP = "3-M"
				if store == "redis" {
					cfg.Limits.RedisURL = startRedis(t)
				}
			})
			bad := "not-a-token"
			for i := range 3 {
				if r := env.do("GET", "/v1/commands", bad, nil); r.status != 401 || r.errCode() != CodeUnauthorized {
					t.Fatalf("failure %d: got %d %s, want 401", i, r.status, r.body)
				}
			}
			// Past the limit: 429 with Retry-After, also with a spoofed
			// X-Forwarded-For from a peer that is no trusted proxy.
			for i, hdr := range [][]string{nil, {"X-Forwarded-For", "203.0.113.9"}, {"X-Real-IP", "203.0.113.10"}} {
				r := env.do("GET", "/v1/commands", bad, nil, hdr...)
				ra, err := strconv.Atoi(r.header.Get("Retry-After"))
				if r.status != 429 || r.errCode() != CodeRateLimited || err != nil || ra < 1 || ra > 60 {
					t.Fatalf("failure %d past the limit: got %d %s Retry-After %q, want 429 rate_limited", 4+i, r.status, r.body, r.header.Get("Retry-After"))
				}
			}
			// A valid token from the same address is never refused by it.
			if r := env.do("GET", "/v1/commands", env.token("alice", "viewer"), nil); r.status != 200 {
				t.Errorf("valid token from the same IP: got %d %s, want 200", r.status, r.body)
			}
			if got := countAudit(env.auditLines(), EventAuthFailure, ""); got != 3 {
				t.Errorf("auth_failure lines = %d, want 3 (the rest counted, not written)", got)
			}
			env.stop() // writes the summary of the open window
			lines := env.auditLines()
			if got := suppressedCount(lines, refusalAuthFailure, "127.0.0.1"); got != 3 {
				t.Errorf("audit_suppressed count = %d, want 3 (lines %v)", got, lines)
			}
		})
	}
}

// TestAuthFailureLimitIPv6: IPv6 clients share a budget per /64; the client
// address is the trusted proxy's X-Forwarded-For.
func TestAuthFailureLimitIPv6(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.Limits.AuthFailuresPerIP = "2-M"
		cfg.Network.TrustedProxies = []string{"127.0.0.1"}
	})
	fail := func(xff string) int {
		return env.do("GET", "/v1/commands", "bad", nil, "X-Forwarded-For", xff).status
	}
	for i, xff := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if got := fail(xff); got != 401 {
			t.Fatalf("failure %d: got %d, want 401", i, got)
		}
	}
	if got := fail("2001:db8:1:2:abcd::1"); got != 429 {
		t.Errorf("third failure from the same /64: got %d, want 429", got)
	}
	if got := fail("2001:db8:1:3::1"); got != 401 {
		t.Errorf("another /64: got %d, want 401", got)
	}
	env.stop()
	if got := suppressedCount(env.auditLines(), refusalAuthFailure, "2001:db8:1:2::/64"); got != 1 {
		t.Errorf("suppressed for 2001:db8:1:2::/64 = %d, want 1", got)
	}
}

// TestRefusalAuditBudget: refusals past limits.refusal_audit_per_ip are
// refused as before but counted instead of written, and the count is
// written when the window ends, while the server runs.
func TestRefusalAuditBudget(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			env := startServer(t, func(cfg *Config, _ *Deps) {
				cfg.Limits.ExecPerIP = "1-M"
				cfg.Limits.RefusalAuditPerIP = "2-S"
				if store == "redis" {
					cfg.Limits.RedisURL = startRedis(t)
				}
			})
			tok := env.token("alice", "viewer")
			env.do("POST", "/v1/exec/check", tok, map[string]any{"command": "echo"})
			const refused = 12
			for i := range refused {
				if r := env.do("POST", "/v1/exec/check", tok, map[string]any{"command": "echo"}); r.status != 429 {
					t.Fatalf("request %d: got %d, want 429", i, r.status)
				}
			}
			waitFor(t, "the audit_suppressed line", func() bool {
				lines := env.auditLines()
				return countAudit(lines, EventRejected, CodeRateLimited)+suppressedCount(lines, refusalRateLimited, "127.0.0.1") == refused
			})
			lines := env.auditLines()
			if w := countAudit(lines, EventRejected, CodeRateLimited); w < 2 || w >= refused {
				t.Errorf("rejected lines = %d, want at least 2 and fewer than %d", w, refused)
			}
		})
	}
}

func TestAPIPerIPLimit(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Limits.APIPerIP = "2-M" })
	viewer, admin := env.token("alice", "viewer"), env.token("root", "admin")
	if r := env.do("GET", "/v1/commands", viewer, nil); r.status != 200 {
		t.Fatalf("first: got %d", r.status)
	}
	if r := env.do("GET", "/v1/health", admin, nil); r.status != 200 {
		t.Fatalf("admin endpoint: got %d", r.status)
	}
	for _, path := range []string{"/v1/commands", "/v1/sessions", "/v1/health"} {
		tok := admin
		if r := env.do("GET", path, tok, nil); r.status != 429 || r.errCode() != CodeRateLimited || r.header.Get("Retry-After") == "" {
			t.Errorf("%s past api_per_ip: got %d %s, want 429 rate_limited with Retry-After", path, r.status, r.body)
		}
	}
	// Unauthenticated requests count too: the limit runs before the token check.
	if r := env.do("GET", "/v1/commands", "", nil); r.status != 429 {
		t.Errorf("no token past api_per_ip: got %d, want 429", r.status)
	}
}

func TestSuppressorBounded(t *testing.T) {
	s := newSuppressor(maxSuppressedKeys)
	now := time.Unix(1000, 0)
	until := now.Add(time.Minute)
	for i := range maxSuppressedKeys + 100 {
		s.add(refusalAuthFailure, fmt.Sprintf("10.0.%d.%d", i/256, i%256), now, until)
	}
	if len(s.m) > maxSuppressedKeys+1 {
		t.Errorf("suppression table has %d entries, want at most %d", len(s.m), maxSuppressedKeys+1)
	}
	if got := s.take(now, false); len(got) != 0 {
		t.Errorf("open windows taken before their end: %d", len(got))
	}
	var total int64
	var other int64
	for _, sum := range s.take(until, false) {
		total += sum.n
		if sum.ip == labelOther {
			other = sum.n
		}
	}
	if total != maxSuppressedKeys+100 || other != 100 {
		t.Errorf("counted %d (other %d), want %d (other 100): nothing may be lost", total, other, maxSuppressedKeys+100)
	}
	if len(s.m) != 0 {
		t.Errorf("%d entries left after take", len(s.m))
	}
}

// TestRefusalAuditTotal: many addresses together are bounded too; what is
// over limits.refusal_audit_total is counted under remote_ip "*".
func TestRefusalAuditTotal(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.Limits.RefusalAuditTotal = "3-M"
		cfg.Network.TrustedProxies = []string{"127.0.0.1"}
	})
	const clients = 7
	for i := range clients {
		r := env.do("GET", "/v1/commands", "bad", nil, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		if r.status != 401 {
			t.Fatalf("client %d: got %d, want 401 (each is under its own limit)", i, r.status)
		}
	}
	if got := countAudit(env.auditLines(), EventAuthFailure, ""); got != 3 {
		t.Errorf("auth_failure lines = %d, want 3 (refusal_audit_total)", got)
	}
	env.stop()
	if got := suppressedCount(env.auditLines(), refusalAuthFailure, allClients); got != clients-3 {
		t.Errorf("audit_suppressed under %q = %d, want %d", allClients, got, clients-3)
	}
}

package gateway

import (
	"fmt"
	"testing"
)

// TestRefusalSummariesBounded: an attacker spread over many addresses, each
// just past its own limits.auth_failures_per_ip, gets one audit_suppressed
// line per address group unless the summaries are bounded too. The lines
// written for refusals of all clients together stay within about twice
// limits.refusal_audit_total per window (the lines, then as many summaries
// of address groups, plus one "other" and one "*" summary per reason), and
// every refusal is still counted.
func TestRefusalSummariesBounded(t *testing.T) {
	const total, clients = 5, 100
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.Limits.RefusalAuditTotal = fmt.Sprintf("%d-M", total)
		cfg.Limits.AuthFailuresPerIP = "1-M"
		cfg.Network.TrustedProxies = []string{"127.0.0.1"}
	})
	for i := range clients {
		xff := fmt.Sprintf("198.51.%d.%d", 100+i/200, 1+i%200)
		for j, want := range []int{401, 429} {
			if r := env.do("GET", "/v1/commands", "bad", nil, "X-Forwarded-For", xff); r.status != want {
				t.Fatalf("client %d, attempt %d: got %d, want %d", i, j, r.status, want)
			}
		}
	}
	env.stop() // writes every summary
	lines := env.auditLines()
	written := countAudit(lines, EventAuthFailure, "")
	summaries := countAudit(lines, EventAuditSuppressed, "")
	if written+summaries > 2*total+2 {
		t.Errorf("%d auth_failure lines and %d audit_suppressed lines for %d clients: want at most %d together (refusal_audit_total %d)",
			written, summaries, clients, 2*total+2, total)
	}
	if counted := written + suppressedCount(lines, refusalAuthFailure, ""); counted != 2*clients {
		t.Errorf("written %d + suppressed counts = %d, want %d: nothing may be lost", written, counted, 2*clients)
	}
}

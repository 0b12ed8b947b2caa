package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// metricValue sums the samples of metric name whose labels include want
// (a histogram counts its observations).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil: // how many observations
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// v6Client is the n-th /64 of the flood (one address in it).
func v6Client(n int) string { return fmt.Sprintf("2001:db8:%x:%x::1", n>>16, n&0xffff) }

// TestMemStoreFloodOverLoopback floods a real server from many IPv6 /64s
// (X-Forwarded-For from a trusted loopback peer fakes the clients): the
// store stays at its cap, new clients get 429 rate_limited with
// Retry-After (never a 5xx, never unlimited), clients counted before keep
// their limits, a lockout set before the flood survives it, a login that
// could not be counted is refused before its password is checked, and the
// refusals are in the metrics, one log line and an audit_suppressed line.
func TestMemStoreFloodOverLoopback(t *testing.T) {
	reg := NewMetricsRegistry()
	env := startServer(t, func(cfg *Config, deps *Deps) {
		loginConfig(cfg) // trusts 127.0.0.1; alice / "correct horse"
		cfg.Limits.MemoryStoreMaxKeys = 1024
		cfg.Limits.ExecPerIP = "3-M"
		cfg.Auth.Lockout.PairThreshold, cfg.Auth.Lockout.IPThreshold = 3, 40
		deps.Registry, deps.Metrics = reg, NewMetrics(reg)
	})
	mem := env.srv.limits.mem
	tok := env.token("alice", "viewer")
	body := map[string]any{"command": "echo"}
	check := func(ip, token string) response {
		return env.do("POST", "/v1/exec/check", token, body, "X-Forwarded-For", ip)
	}
	login := func(ip, pass string) response {
		return env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": pass}, "X-Forwarded-For", ip)
	}
	// Before the flood: a known client, and a locked-out pair.
	const known, lockedIP = "198.51.100.7", "198.51.100.66"
	if r := check(known, tok); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("known client: got %d remaining %q", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
	for range 3 {
		login(lockedIP, "wrong")
	}
	if r := login(lockedIP, "correct horse"); r.errCode() != CodeLockedOut {
		t.Fatalf("pair before the flood: got %d %s, want locked_out", r.status, r.body)
	}

	// The flood: 3000 /64s with bad tokens, 4 at a time.
	var ok401, full429, other atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 3000; i += 4 {
				r := check(v6Client(i), "bad.token.here")
				switch {
				case r.status == 401:
					ok401.Add(1)
				case r.status == 429 && r.errCode() == CodeRateLimited && r.header.Get("Retry-After") != "" &&
					strings.Contains(string(r.body), "tracking too many clients"):
					full429.Add(1)
				default:
					other.Add(1)
					t.Errorf("flood request %d: got %d %s", i, r.status, r.body)
				}
				if st := mem.stats(); st.Keys[classWindow] > st.Max[classWindow] || st.Keys[classLock] > st.Max[classLock] {
					t.Errorf("store over its cap: %+v", st)
				}
			}
		})
	}
	wg.Wait()
	st := mem.stats()
	t.Logf("flood: %d answered 401, %d refused 429 (store full); store %+v", ok401.Load(), full429.Load(), st)
	if full429.Load() == 0 || other.Load() != 0 {
		t.Fatalf("flood: %d store-full refusals, %d other answers", full429.Load(), other.Load())
	}
	if st.Keys[classWindow] != st.Max[classWindow] {
		t.Errorf("window keys %d after the flood, want the cap %d", st.Keys[classWindow], st.Max[classWindow])
	}

	// After it: the known client keeps its window and its limit.
	if r := check(known, tok); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("known client after the flood: got %d remaining %q, want 200 and 1", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
	check(known, tok)
	if r := check(known, tok); r.status != 429 || !strings.Contains(string(r.body), "rate limit exceeded") {
		t.Errorf("known client over its limit: got %d %s, want its own 429", r.status, r.body)
	}
	// A new client cannot be counted: refused, never let through unlimited.
	if r := check("203.0.113.50", tok); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("new client at the cap: got %d %s, want 429 with Retry-After", r.status, r.body)
	}
	// The lockout survived.
	if r := login(lockedIP, "correct horse"); r.status != 429 || r.errCode() != CodeLockedOut {
		t.Errorf("locked pair after the flood: got %d %s, want 429 locked_out", r.status, r.body)
	}

	// Refusals are visible: metrics, one log line (rate-limited), audit.
	if v := metricValue(t, reg, "execgate_limit_store_refused_total", map[string]string{"class": "window"}); v < float64(full429.Load()) {
		t.Errorf("execgate_limit_store_refused_total{class=window} = %v, want >= %d", v, full429.Load())
	}
	if v := metricValue(t, reg, "execgate_rate_limited_total", map[string]string{"scope": "store_full"}); v < float64(full429.Load()) {
		t.Errorf("execgate_rate_limited_total{scope=store_full} = %v, want >= %d", v, full429.Load())
	}
	if v := metricValue(t, reg, "execgate_limit_store_keys", map[string]string{"class": "window"}); v != float64(st.Max[classWindow]) {
		t.Errorf("execgate_limit_store_keys{class=window} = %v, want %d", v, st.Max[classWindow])
	}
	if n := strings.Count(env.logs.String(), "limit store full: refusing"); n != 1 {
		t.Errorf("%d 'limit store full' log lines for %d refusals, want 1 (rate-limited)", n, full429.Load())
	}
	env.stop()
	var suppressed float64
	for _, l := range env.auditLines() {
		if l["type"] == string(EventAuditSuppressed) && l["reason"] == refusalStoreFull && l["remote_ip"] == allClients {
			suppressed += l["suppressed"].(float64)
		}
	}
	if suppressed < float64(full429.Load()) {
		t.Errorf("audit_suppressed store_full lines count %v refusals, want >= %d", suppressed, full429.Load())
	}
}

// TestMemStoreLockoutBudgetOverLoopback fills the lockout budget with
// failed logins from many /64s: then a login that could not be counted is
// refused before its password is checked (even the right one), while a
// pair whose counters exist still logs in and an earlier lockout holds.
func TestMemStoreLockoutBudgetOverLoopback(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		loginConfig(cfg)
		cfg.Limits.MemoryStoreMaxKeys = 1024 // lockout budget 128, 120 for counters
		cfg.Auth.Lockout.PairThreshold, cfg.Auth.Lockout.IPThreshold = 3, 40
	})
	login := func(ip, pass string) response {
		return env.do("POST", "/auth/token", "", map[string]any{"username": "alice", "password": pass}, "X-Forwarded-For", ip)
	}
	const lockedIP, knownIP = "198.51.100.66", "198.51.100.8"
	for range 3 {
		login(lockedIP, "wrong")
	}
	if r := login(knownIP, "wrong"); r.status != 401 {
		t.Fatalf("known pair's failure: got %d", r.status)
	}
	var refused int
	for i := range 100 {
		r := login(v6Client(i), "wrong")
		switch {
		case r.status == 401:
		case r.status == 429 && r.errCode() == CodeRateLimited && r.header.Get("Retry-After") != "":
			refused++
		default:
			t.Fatalf("login %d: got %d %s", i, r.status, r.body)
		}
	}
	st := env.srv.limits.mem.stats()
	if refused == 0 || st.Keys[classLock] > st.Max[classLock] {
		t.Fatalf("%d refused, store %+v: the lockout budget should have filled and held", refused, st)
	}
	if r := login("203.0.113.77", "correct horse"); r.status != 429 || r.errCode() != CodeRateLimited {
		t.Errorf("uncountable login with the right password: got %d %s, want 429 before checking", r.status, r.body)
	}
	if r := login(knownIP, "correct horse"); r.status != 200 {
		t.Errorf("pair with counters: got %d %s, want 200", r.status, r.body)
	}
	if r := login(lockedIP, "correct horse"); r.errCode() != CodeLockedOut {
		t.Errorf("earlier lockout: got %d %s, want locked_out", r.status, r.body)
	}
}

// TestMemStoreUnderCapUnchanged: well under the cap many clients behave as
// before: each /64 has its own limit and nothing is refused for room.
func TestMemStoreUnderCapUnchanged(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.Network.TrustedProxies = []string{"127.0.0.1"}
		cfg.Limits.ExecPerIP, cfg.Limits.ExecPerUser = "2-M", "100000-M"
	})
	tok := env.token("alice", "viewer")
	for i := range 300 {
		for j, want := range []int{200, 200, 429} {
			r := env.do("POST", "/v1/exec/check", tok, map[string]any{"command": "echo"}, "X-Forwarded-For", v6Client(i))
			if r.status != want {
				t.Fatalf("client %d request %d: got %d %s, want %d", i, j, r.status, r.body, want)
			}
			if want == 429 && !strings.Contains(string(r.body), "rate limit exceeded") {
				t.Fatalf("client %d: refused for another reason: %s", i, r.body)
			}
		}
	}
	if st := env.srv.limits.mem.stats(); st.Refused != [2]int64{} {
		t.Errorf("refusals under the cap: %+v", st)
	}
}

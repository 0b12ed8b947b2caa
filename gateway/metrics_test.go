package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/execgate/execgate/sandbox"
)

// scrape fetches url over loopback and parses the text exposition format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d, want 200", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

func labelNames(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName())
	}
	slices.Sort(out)
	return out
}

func findSample(fam *dto.MetricFamily, labels map[string]string) *dto.Metric {
	for _, m := range fam.GetMetric() {
		ok := true
		for _, l := range m.GetLabel() {
			if v, want := labels[l.GetName()], l.GetValue(); v != want {
				ok = false
			}
		}
		if ok && len(m.GetLabel()) == len(labels) {
			return m
		}
	}
	return nil
}

func TestMetricsScrape(t *testing.T) {
	reg := NewMetricsRegistry()
	m := NewMetrics(reg)
	m.ExecDone("git", OutcomeOK, 120*time.Millisecond, 100, 7)
	m.ExecDone("", OutcomeDenied, 0, 0, 0)
	m.SandboxStarted(30 * time.Millisecond)
	m.SandboxActive(+1)
	m.SandboxActive(+1)
	m.SandboxActive(-1)
	m.AuthFailed("expired")
	m.Denied("flag_not_allowed")
	m.Limited("ip")
	m.PolicyReloaded(true)
	m.PolicyReloaded(false)
	m.HTTPDone(http.MethodPost, "/v1/exec", 200, 5*time.Millisecond)
	m.HTTPDone("BREW", "", 405, time.Millisecond)

	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := NewAuditor(AuditConfig{Path: path, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Record(context.Background(), Event{Type: EventDecision}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(MetricsHandler(reg))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("metrics server not on loopback: %s", srv.URL)
	}
	fams := scrape(t, srv.URL)

	tests := []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string // one sample that must exist, with exactly these labels
		value  float64           // counter/gauge value, or histogram sample count
	}{
		{"execgate_exec_total", dto.MetricType_COUNTER, map[string]string{"command": "git", "outcome": "ok"}, 1},
		{"execgate_exec_total", dto.MetricType_COUNTER, map[string]string{"command": "unknown", "outcome": "denied"}, 1},
		{"execgate_exec_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"command": "git"}, 1},
		{"execgate_sandbox_start_seconds", dto.MetricType_HISTOGRAM, map[string]string{}, 1},
		{"execgate_active_sandboxes", dto.MetricType_GAUGE, map[string]string{}, 1},
		{"execgate_auth_failures_total", dto.MetricType_COUNTER, map[string]string{"reason": "expired"}, 1},
		{"execgate_denials_total", dto.MetricType_COUNTER, map[string]string{"reason": "flag_not_allowed"}, 1},
		{"execgate_rate_limited_total", dto.MetricType_COUNTER, map[string]string{"scope": "ip"}, 1},
		{"execgate_policy_reloads_total", dto.MetricType_COUNTER, map[string]string{"result": "success"}, 1},
		{"execgate_policy_reloads_total", dto.MetricType_COUNTER, map[string]string{"result": "failure"}, 1},
		{"execgate_output_bytes_total", dto.MetricType_COUNTER, map[string]string{"stream": "stdout"}, 100},
		{"execgate_output_bytes_total", dto.MetricType_COUNTER, map[string]string{"stream": "stderr"}, 7},
		{"execgate_http_requests_total", dto.MetricType_COUNTER, map[string]string{"method": "POST", "route": "/v1/exec", "code": "200"}, 1},
		{"execgate_http_requests_total", dto.MetricType_COUNTER, map[string]string{"method": "other", "route": "unmatched", "code": "405"}, 1},
		{"execgate_http_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"method": "POST", "route": "/v1/exec"}, 1},
		{"execgate_audit_lines_total", dto.MetricType_COUNTER, map[string]string{}, 1},
		{"execgate_audit_fsyncs_total", dto.MetricType_COUNTER, map[string]string{}, 1},
		{"execgate_audit_batch_lines", dto.MetricType_HISTOGRAM, map[string]string{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fam, ok := fams[tt.name]
			if !ok {
				t.Fatalf("metric %s missing from the scrape", tt.name)
			}
			if fam.GetType() != tt.typ {
				t.Errorf("%s type = %v, want %v", tt.name, fam.GetType(), tt.typ)
			}
			if fam.GetHelp() == "" {
				t.Errorf("%s has no help text", tt.name)
			}
			s := findSample(fam, tt.labels)
			if s == nil {
				var have [][]string
				for _, m := range fam.GetMetric() {
					have = append(have, labelNames(m))
				}
				t.Fatalf("%s: no sample with labels %v (have label sets %v)", tt.name, tt.labels, have)
			}
			var got float64
			switch tt.typ {
			case dto.MetricType_COUNTER:
				got = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				got = s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				got = float64(s.GetHistogram().GetSampleCount())
			}
			if got != tt.value {
				t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.value)
			}
		})
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Errorf("go runtime collector missing from NewMetricsRegistry")
	}
	if ts := fams["execgate_policy_last_reload_success_timestamp_seconds"]; ts == nil || ts.GetMetric()[0].GetGauge().GetValue() < 1e9 {
		t.Errorf("last reload timestamp not set: %v", ts)
	}
}

func TestMetricsAuditErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a, err := NewAuditor(AuditConfig{Path: "/dev/full", Metrics: m})
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no /dev/full: %v (with CI set: fails)", err)
		}
		t.Fatalf("open /dev/full under CI: %v", err)
	}
	err = a.Record(context.Background(), Event{Type: EventDecision})
	_ = a.Close()
	if !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("Record on /dev/full: got %v, want ErrAuditUnavailable", err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "execgate_audit_errors_total" {
			if s := findSample(f, map[string]string{"op": "write"}); s != nil && s.GetCounter().GetValue() >= 1 {
				return
			}
		}
	}
	t.Errorf("execgate_audit_errors_total{op=\"write\"} not counted")
}

func TestMetricsCommandCardinality(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for i := range maxCommandLabels + 50 {
		m.ExecDone("cmd"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), OutcomeOK, 0, 0, 0)
	}
	if got := len(m.commands); got > maxCommandLabels {
		t.Errorf("distinct command labels = %d, want at most %d", got, maxCommandLabels)
	}
	if got := m.commandLabel("never-seen-before"); got != labelOther {
		t.Errorf("commandLabel past the cap = %q, want %q", got, labelOther)
	}
}

func TestMetricsNilSafe(t *testing.T) {
	var m *Metrics
	m.ExecDone("git", OutcomeOK, time.Second, 1, 1)
	m.SandboxStarted(time.Second)
	m.SandboxActive(1)
	m.AuthFailed("x")
	m.Denied("x")
	m.Limited("ip")
	m.PolicyReloaded(true)
	m.HTTPDone("GET", "/", 200, time.Second)
	m.auditCommitted(1)
	m.auditFailed("write")
}

func TestMetricsSeparateRegistries(t *testing.T) {
	// Two gateways in one process (tests) must not collide: nothing goes to
	// the global default registry.
	NewMetrics(prometheus.NewRegistry())
	NewMetrics(prometheus.NewRegistry())
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "execgate_") {
			t.Errorf("%s registered on the default registry", f.GetName())
		}
	}
}

func TestExecOutcome(t *testing.T) {
	tests := []struct {
		endedBy string
		exit    int
		err     error
		want    string
	}{
		{"exit", 0, nil, OutcomeOK},
		{"exit", 3, nil, OutcomeNonZero},
		{"timeout", -1, nil, OutcomeTimeout},
		{"killed", -1, nil, OutcomeKilled},
		{"memory", -1, nil, OutcomeLimit},
		{"pids", 1, nil, OutcomeLimit},
		{"output", 0, nil, OutcomeLimit},
		{"cpu", -1, nil, OutcomeLimit},
		{"disk_full", -1, nil, OutcomeDiskFull},
		{"", 0, fmt.Errorf("run: %w", sandbox.ErrDiskFull), OutcomeDiskFull},
		{"", 0, errors.New("start failed"), OutcomeError},
	}
	for _, tt := range tests {
		if got := ExecOutcome(tt.endedBy, tt.exit, tt.err); got != tt.want {
			t.Errorf("ExecOutcome(%q, %d, %v) = %q, want %q", tt.endedBy, tt.exit, tt.err, got, tt.want)
		}
	}
}

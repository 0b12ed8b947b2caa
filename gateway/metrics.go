package gateway

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/execgate/execgate/sandbox"
)

// Exec outcomes: the "outcome" label of execgate_exec_total.
const (
	OutcomeOK      = "ok"      // exited 0
	OutcomeNonZero = "nonzero" // exited with another code
	OutcomeTimeout = "timeout" // wall-clock limit
	OutcomeLimit   = "limit"   // memory, pids, cpu or output cap ended it
	OutcomeKilled  = "killed"  // cancelled: client gone, admin kill, shutdown
	OutcomeDenied  = "denied"  // the policy said no (nothing ran)
	OutcomeError   = "error"   // the sandbox failed to start or run
	// OutcomeDiskFull: a file system under the free-space reserve refused
	// the run (nothing ran) or ended it (ended_by disk_full).
	OutcomeDiskFull = "disk_full"
)

// Label values used when a real value is missing or would explode cardinality.
const (
	labelUnknown = "unknown"
	labelOther   = "other"
)

// maxCommandLabels bounds distinct "command" label values; later ones
// become "other". Commands come from the policy, but a denied request can
// name anything: callers pass "" (-> "unknown") for a command the policy
// does not know.
const maxCommandLabels = 256

// Metrics holds the gateway's Prometheus collectors. Create it once per
// registry with NewMetrics; every method is safe on a nil *Metrics (a no-op),
// so tests may leave metrics out.
type Metrics struct {
	ExecTotal        *prometheus.CounterVec   // execgate_exec_total{command,outcome}
	ExecDuration     *prometheus.HistogramVec // execgate_exec_duration_seconds{command}
	SandboxStart     prometheus.Histogram     // execgate_sandbox_start_seconds
	ActiveSandboxes  prometheus.Gauge         // execgate_active_sandboxes
	TeardownErrors   prometheus.Counter       // execgate_sandbox_teardown_errors_total
	AuthFailures     *prometheus.CounterVec   // execgate_auth_failures_total{reason}
	Denials          *prometheus.CounterVec   // execgate_denials_total{reason}
	RateLimited      *prometheus.CounterVec   // execgate_rate_limited_total{scope}
	PolicyReloads    *prometheus.CounterVec   // execgate_policy_reloads_total{result}
	OutputBytes      *prometheus.CounterVec   // execgate_output_bytes_total{stream}
	HTTPRequests     *prometheus.CounterVec   // execgate_http_requests_total{method,route,code}
	HTTPDuration     *prometheus.HistogramVec // execgate_http_request_duration_seconds{method,route}
	AuditLines       prometheus.Counter       // execgate_audit_lines_total
	AuditSyncs       prometheus.Counter       // execgate_audit_fsyncs_total
	AuditErrors      *prometheus.CounterVec   // execgate_audit_errors_total{op}
	AuditBatchLines  prometheus.Histogram     // execgate_audit_batch_lines
	PolicyReloadTime prometheus.Gauge         // execgate_policy_last_reload_success_timestamp_seconds

	mu       sync.Mutex
	commands map[string]struct{}
}

// NewMetrics creates the collectors and registers them on reg (never the
// global default registry). It panics when one is already registered there,
// as prometheus.MustRegister does: create one Metrics per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ExecTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_exec_total",
			Help: "Exec requests by command and outcome (ok, nonzero, timeout, limit, killed, denied, error).",
		}, []string{"command", "outcome"}),
		ExecDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "execgate_exec_duration_seconds",
			Help:    "Wall-clock time of sandbox runs, from start request to exit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"command"}),
		SandboxStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "execgate_sandbox_start_seconds",
			Help:    "Time from asking the sandbox to run until the command started.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		ActiveSandboxes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "execgate_active_sandboxes",
			Help: "Sandboxes running now or being torn down.",
		}),
		TeardownErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "execgate_sandbox_teardown_errors_total",
			Help: "Sandbox teardowns that failed after the command's answer was sent (details in the log).",
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_auth_failures_total",
			Help: "Refused authentications by reason (missing_token, expired, bad_signature, bad_credentials, locked_out, ...).",
		}, []string{"reason"}),
		Denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_denials_total",
			Help: "Policy denials by reason code.",
		}, []string{"reason"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_rate_limited_total",
			Help: "Requests refused with 429 by scope (ip, user, sessions, lockout, auth_failures, store_full).",
		}, []string{"scope"}),
		PolicyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_policy_reloads_total",
			Help: "Policy loads and reloads by result (success, failure).",
		}, []string{"result"}),
		OutputBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_output_bytes_total",
			Help: "Output bytes produced by sandboxed commands, by stream (stdout, stderr).",
		}, []string{"stream"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "execgate_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"}),
		AuditLines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "execgate_audit_lines_total",
			Help: "Audit lines written and fsynced.",
		}),
		AuditSyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "execgate_audit_fsyncs_total",
			Help: "Audit log group commits (one write and one fsync each).",
		}),
		AuditErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "execgate_audit_errors_total",
			Help: "Audit log failures by operation (open, write, sync, ...).",
		}, []string{"op"}),
		AuditBatchLines: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "execgate_audit_batch_lines",
			Help:    "Lines per audit group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		PolicyReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "execgate_policy_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful policy load.",
		}),
		commands: make(map[string]struct{}),
	}
	reg.MustRegister(m.ExecTotal, m.ExecDuration, m.SandboxStart, m.ActiveSandboxes, m.TeardownErrors,
		m.AuthFailures, m.Denials, m.RateLimited, m.PolicyReloads, m.OutputBytes,
		m.HTTPRequests, m.HTTPDuration, m.AuditLines, m.AuditSyncs, m.AuditErrors,
		m.AuditBatchLines, m.PolicyReloadTime)
	return m
}

// NewMetricsRegistry returns a fresh registry with the Go runtime and
// process collectors, for NewMetrics and MetricsHandler.
func NewMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves reg in the Prometheus text (or OpenMetrics) format.
// Mount it on the separate metrics listener, or behind the admin permission.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:            reg, // counts scrape errors as promhttp_metric_handler_errors_total
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// commandLabel bounds the "command" label's cardinality.
func (m *Metrics) commandLabel(cmd string) string {
	if cmd == "" {
		return labelUnknown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.commands[cmd]; ok {
		return cmd
	}
	if len(m.commands) >= maxCommandLabels {
		return labelOther
	}
	m.commands[cmd] = struct{}{}
	return cmd
}

func nonEmpty(s string) string {
	if s == "" {
		return labelUnknown
	}
	return s
}

// ExecDone counts one exec request. Pass the policy's command name, "" when
// the policy does not know the command; d and the output byte counts are
// recorded when something ran (outcome other than denied).
func (m *Metrics) ExecDone(command, outcome string, d time.Duration, stdoutBytes, stderrBytes int64) {
	if m == nil {
		return
	}
	cmd := m.commandLabel(command)
	m.ExecTotal.WithLabelValues(cmd, nonEmpty(outcome)).Inc()
	if outcome == OutcomeDenied {
		return
	}
	m.ExecDuration.WithLabelValues(cmd).Observe(d.Seconds())
	m.OutputBytes.WithLabelValues("stdout").Add(float64(stdoutBytes))
	m.OutputBytes.WithLabelValues("stderr").Add(float64(stderrBytes))
}

// ExecOutcome maps a finished run to an outcome label: endedBy is the
// sandbox's EndedBy ("exit", "timeout", "memory", "pids", "output", "cpu",
// "killed", "disk_full"); runErr is the run's error (nil when it ran).
func ExecOutcome(endedBy string, exitCode int, runErr error) string {
	switch {
	case errors.Is(runErr, sandbox.ErrDiskFull) || endedBy == string(sandbox.EndedDiskFull):
		return OutcomeDiskFull
	case runErr != nil:
		return OutcomeError
	case endedBy == "timeout":
		return OutcomeTimeout
	case endedBy == "killed":
		return OutcomeKilled
	case endedBy == "memory" || endedBy == "pids" || endedBy == "output" || endedBy == "cpu":
		return OutcomeLimit
	case exitCode == 0:
		return OutcomeOK
	}
	return OutcomeNonZero
}

// SandboxStarted records how long a sandbox took to start.
func (m *Metrics) SandboxStarted(d time.Duration) {
	if m == nil {
		return
	}
	m.SandboxStart.Observe(d.Seconds())
}

// SandboxActive adds delta (+1 on start, -1 on end) to the active gauge.
func (m *Metrics) SandboxActive(delta int) {
	if m == nil {
		return
	}
	m.ActiveSandboxes.Add(float64(delta))
}

// TeardownFailed counts a sandbox teardown that failed after the answer.
func (m *Metrics) TeardownFailed() {
	if m == nil {
		return
	}
	m.TeardownErrors.Inc()
}

// AuthFailed counts a refused authentication. reason is a fixed code, never
// anything taken from the token.
func (m *Metrics) AuthFailed(reason string) {
	if m == nil {
		return
	}
	m.AuthFailures.WithLabelValues(nonEmpty(reason)).Inc()
}

// Denied counts a policy denial by its reason code.
func (m *Metrics) Denied(reason string) {
	if m == nil {
		return
	}
	m.Denials.WithLabelValues(nonEmpty(reason)).Inc()
}

// Limited counts a 429: scope is "ip", "user", "sessions", "lockout",
// "auth_failures" (per-IP failed authentications) or "store_full" (the
// in-memory limit store at its cap).
func (m *Metrics) Limited(scope string) {
	if m == nil {
		return
	}
	m.RateLimited.WithLabelValues(nonEmpty(scope)).Inc()
}

// PolicyReloaded counts a policy load: ok says whether it succeeded.
func (m *Metrics) PolicyReloaded(ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.PolicyReloads.WithLabelValues("failure").Inc()
		return
	}
	m.PolicyReloads.WithLabelValues("success").Inc()
	m.PolicyReloadTime.SetToCurrentTime()
}

// HTTPDone counts one answered request. route is the route pattern (gin's
// FullPath), "" for unmatched routes; never the raw URL.
func (m *Metrics) HTTPDone(method, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	method = httpMethodLabel(method)
	m.HTTPRequests.WithLabelValues(method, route, statusLabel(code)).Inc()
	m.HTTPDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

func httpMethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return labelOther
}

func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return labelOther
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}

func (m *Metrics) auditCommitted(lines int) {
	if m == nil {
		return
	}
	m.AuditLines.Add(float64(lines))
	m.AuditSyncs.Inc()
	m.AuditBatchLines.Observe(float64(lines))
}

func (m *Metrics) auditFailed(op string) {
	if m == nil {
		return
	}
	m.AuditErrors.WithLabelValues(op).Inc()
}

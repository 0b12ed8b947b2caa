package gateway

import (
	"context"
	"log/slog"
	"net/http"
)

// The separate metrics listener (metrics_listen) answers without
// authentication, so who may reach it is a matter of networks:
// network.metrics_allow and network.metrics_block, checked against the
// socket peer (never X-Forwarded-For: scrapers connect directly). A
// non-loopback metrics_listen without a metrics_allow list is refused at
// start, so /metrics is never open to everyone by accident.

// validateMetricsListen refuses a non-loopback metrics listener that has no
// allow list.
func (c *Config) validateMetricsListen(bad badFunc) {
	if c.MetricsListen == "" || IsLoopbackListen(c.MetricsListen) || len(c.Network.MetricsAllow) > 0 {
		return
	}
	bad("metrics_listen", "%s is not loopback: set network.metrics_allow to the scrapers' networks first", c.MetricsListen)
}

// metricsGuard refuses peers outside the metrics network rules with 403
// ip_not_allowed and gives every answer a request id and the security headers.
func (s *Server) metricsGuard(rules netRules, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newID()
		ip := ""
		if a := peerAddr(r); a.IsValid() {
			ip = a.String()
		}
		if !rules.permits(ip) {
			s.log.Warn("metrics: client refused", slog.String("request_id", id), slog.String("remote_ip", ip),
				slog.String("method", httpMethodLabel(r.Method)), slog.Int("status", http.StatusForbidden))
			s.auditRefusal(context.WithoutCancel(r.Context()), refusalIPNotAllowed, Event{
				Type: EventRejected, RequestID: id, RemoteIP: ip, UserAgent: truncate(r.UserAgent(), 256),
				Method: httpMethodLabel(r.Method), Route: "/metrics", Status: http.StatusForbidden,
				Reason: CodeIPNotAllowed, Message: "metrics",
			})
			writeRawError(w, id, false, http.StatusForbidden, CodeIPNotAllowed, "your network may not read the metrics")
			return
		}
		h := w.Header()
		h.Set("X-Request-Id", id)
		for _, kv := range securityHeaders(false) {
			h.Set(kv[0], kv[1])
		}
		next.ServeHTTP(w, r)
	})
}

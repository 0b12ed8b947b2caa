package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// What the server does when the in-memory limit store (memStore) refuses a
// new key: the request is refused (never let through unlimited), counted in
// execgate_rate_limited_total{scope="store_full"} and
// execgate_limit_store_refused_total{class}, recorded in one
// audit_suppressed line per window (reason store_full, remote_ip "*")
// instead of a line each, and reported in the error log at most once per
// storeFullLogEvery.

// refusalStoreFull is the audit_suppressed reason of store-full refusals.
const refusalStoreFull = "store_full"

// storeFullLogEvery is the least time between two "limit store full" lines.
const storeFullLogEvery = 10 * time.Second

// storeFullLog rate-limits the error log lines of store-full refusals.
type storeFullLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int64 // refusals since the last line
}

// storeFull handles err when it is a store-full refusal: it returns the
// 429 answer and true. Other errors return nil, false.
func (s *Server) storeFull(c *gin.Context, scope string, err error) (*HTTPError, bool) {
	var sf *storeFullError
	if !errors.As(err, &sf) {
		return nil, false
	}
	s.noteStoreFull(sf)
	s.metrics.Limited(refusalStoreFull)
	now := time.Now()
	s.limits.suppressed.add(refusalStoreFull, allClients, now, now.Add(sf.RetryAfter))
	e := httpErr(http.StatusTooManyRequests, CodeRateLimited, "the gateway is tracking too many clients, retry later",
		fmt.Errorf("%s for %s %s: %w", scope, rateKey(clientIP(c)), c.FullPath(), err))
	e.RetryAfter = sf.RetryAfter
	return e, true
}

// noteStoreFull writes the error log line of a store-full refusal, at most
// one per storeFullLogEvery, with the count of those it stands for.
func (s *Server) noteStoreFull(sf *storeFullError) {
	l := &s.limits.fullLog
	l.mu.Lock()
	l.missed++
	now := time.Now()
	if now.Sub(l.last) < storeFullLogEvery {
		l.mu.Unlock()
		return
	}
	n := l.missed
	l.last, l.missed = now, 0
	l.mu.Unlock()
	attrs := []any{slog.String("class", sf.Class), slog.Int64("refused", n), slog.Duration("retry_after", sf.RetryAfter)}
	if m := s.limits.mem; m != nil {
		st := m.stats()
		attrs = append(attrs, slog.Int("window_keys", st.Keys[classWindow]), slog.Int("lockout_keys", st.Keys[classLock]),
			slog.Int("max_keys", s.cfg.Limits.MemoryStoreMaxKeys))
	}
	s.log.Error("limit store full: refusing requests that need a new key (limits.memory_store_max_keys)", attrs...)
}

// watchMemStore exports m's size and refusals on the metrics registry, if
// there is one.
func (s *Server) watchMemStore(m *memStore) {
	reg := s.deps.Registry
	if reg == nil {
		return
	}
	for c, name := range classNames {
		labels := prometheus.Labels{"class": name}
		cs := []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "execgate_limit_store_keys", Help: "Entries of the in-memory limit store by class (window, lockout).", ConstLabels: labels,
			}, func() float64 { return float64(m.stats().Keys[c]) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "execgate_limit_store_max_keys", Help: "Entries the in-memory limit store may hold by class (limits.memory_store_max_keys).", ConstLabels: labels,
			}, func() float64 { return float64(m.stats().Max[c]) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "execgate_limit_store_refused_total", Help: "New keys the full in-memory limit store refused, by class.", ConstLabels: labels,
			}, func() float64 { return float64(m.stats().Refused[c]) }),
		}
		for _, col := range cs {
			if err := reg.Register(col); err != nil {
				s.log.Warn("limit store metrics", slog.String("error", err.Error()))
			}
		}
	}
}

// suppressedFull counts a refusal line of reason under remote_ip "*" when
// err is a store-full refusal of its audit limiter, and reports whether it
// did: lines of the many addresses that fill the store must not be written
// one by one either.
func suppressedFull(sup *suppressor, reason string, err error) bool {
	var sf *storeFullError
	if !errors.As(err, &sf) {
		return false
	}
	now := time.Now()
	sup.add(reason, allClients, now, now.Add(sf.RetryAfter))
	return true
}

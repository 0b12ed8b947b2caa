package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Refusals of clients that have not (or not yet) shown a valid token cost
// them nothing but would cost the audit disk a line each. Three bounds keep
// anyone from filling it, and nothing is silently lost:
//
//   - limits.auth_failures_per_ip: failed JWT authentications (401) per
//     client IP (IPv6 by /64). Past it, requests whose token fails get 429
//     rate_limited with Retry-After instead of 401, and no line of their own.
//     A valid token is never refused by it (a NAT neighbour's failures do
//     not lock anyone out).
//   - limits.refusal_audit_per_ip: lines per client IP for refusals before a
//     decision (rate_limited, ip_not_allowed, payload_too_large). Past it the
//     refusal still happens, but its line is not written.
//   - limits.refusal_audit_total: the same lines and the auth_failure lines
//     of every client together, so that many addresses cannot fill the disk
//     either. Past it they are counted under remote_ip "*".
//
// What is not written one by one is counted per reason, client IP group and
// window, and one audit_suppressed line per reason, IP group and window
// records the count when the window ends (and at shutdown). The groups
// counted apart are bounded by limits.refusal_audit_total's count (and
// maxSuppressedKeys); past it counts go under "other", so that an attacker
// spread over many addresses cannot turn the summaries into the flood the
// budget keeps out: per window, at most about twice the budget's lines.

// Refusal kinds: the reason of an audit_suppressed line.
const (
	refusalAuthFailure     = "auth_failure"
	refusalRateLimited     = CodeRateLimited
	refusalIPNotAllowed    = CodeIPNotAllowed
	refusalPayloadTooLarge = CodePayloadTooLarge
)

// allClients is the remote_ip of counts past limits.refusal_audit_total.
const allClients = "*"

// maxSuppressedKeys bounds the client IP groups of the suppression table
// (a lower limits.refusal_audit_total bounds them further); past it, counts
// go to one entry per reason whose remote_ip is "other".
const maxSuppressedKeys = 8192

// suppressFlushEvery is how often ended windows are summarised.
const suppressFlushEvery = time.Second

type suppressKey struct{ reason, ip string }

// suppressCount is one open count. Its window ends at until; a count that
// goes on into the next window before the flusher ran (it runs every
// second) simply extends it, so no count is ever split or lost.
type suppressCount struct {
	n           int64
	first, last time.Time
	until       time.Time
}

// suppressor counts audit lines not written one by one. Safe for
// concurrent use; it owns no goroutine (Server.Serve runs the flusher).
type suppressor struct {
	mu        sync.Mutex
	m         map[suppressKey]*suppressCount
	maxGroups int // client IP groups counted apart ("*" and "other" aside)
	groups    int // client IP groups in m
}

// newSuppressor counts at most maxGroups client IP groups apart.
func newSuppressor(maxGroups int) *suppressor {
	return &suppressor{m: map[suppressKey]*suppressCount{}, maxGroups: min(max(maxGroups, 1), maxSuppressedKeys)}
}

// isGroup reports whether ip is a client IP group (not "*" or "other").
func isGroup(ip string) bool { return ip != allClients && ip != labelOther }

// add counts one suppressed line of reason for ip group in the window
// ending at until.
func (s *suppressor) add(reason, ip string, now, until time.Time) {
	k := suppressKey{reason: reason, ip: ip}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[k]
	if c == nil && isGroup(k.ip) {
		if s.groups >= s.maxGroups {
			k.ip = labelOther
			c = s.m[k]
		} else {
			s.groups++
		}
	}
	if c == nil {
		c = &suppressCount{first: now}
		s.m[k] = c
	}
	c.n++
	c.last = now
	if until.After(c.until) {
		c.until = until
	}
}

// suppressedSummary is one audit_suppressed line to write.
type suppressedSummary struct {
	reason, ip  string
	n           int64
	first, last time.Time
	until       time.Time
}

// take removes and returns the counts whose window has ended by now (all of
// them when all is set), in a stable order.
func (s *suppressor) take(now time.Time, all bool) []suppressedSummary {
	s.mu.Lock()
	var out []suppressedSummary
	for k, c := range s.m {
		if all || !now.Before(c.until) {
			out = append(out, suppressedSummary{reason: k.reason, ip: k.ip, n: c.n, first: c.first, last: c.last, until: c.until})
			delete(s.m, k)
			if isGroup(k.ip) {
				s.groups--
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].first.Equal(out[j].first) {
			return out[i].first.Before(out[j].first)
		}
		return out[i].reason+out[i].ip < out[j].reason+out[j].ip
	})
	return out
}

// auditRefusal writes ev (a refusal of kind reason) unless its client IP
// group is over limits.refusal_audit_per_ip, or all clients together over
// limits.refusal_audit_total; then it only counts it. A limiter that cannot
// answer never costs a line: ev is written; but a full in-memory store
// (which many addresses can cause) has it counted under remote_ip "*".
func (s *Server) auditRefusal(ctx context.Context, reason string, ev Event) {
	key := rateKey(ev.RemoteIP)
	lc, err := s.limits.refusalAudit.Get(ctx, "refusal:ip:"+key)
	if err == nil && lc.Reached {
		s.limits.suppressed.add(reason, key, time.Now(), time.Unix(lc.Reset, 0))
		return
	}
	if suppressedFull(s.limits.suppressed, reason, err) {
		return
	}
	s.auditTotal(ctx, reason, ev)
}

// auditTotal writes ev unless every client together is over
// limits.refusal_audit_total; then it counts it under remote_ip "*".
func (s *Server) auditTotal(ctx context.Context, reason string, ev Event) {
	lc, err := s.limits.refusalAuditAll.Get(ctx, "refusal:all")
	if err == nil && lc.Reached {
		s.limits.suppressed.add(reason, allClients, time.Now(), time.Unix(lc.Reset, 0))
		return
	}
	if suppressedFull(s.limits.suppressed, reason, err) {
		return
	}
	if err := s.audit.Record(ctx, ev); err != nil {
		s.log.Error("audit", slog.String("request_id", ev.RequestID), slog.String("error", err.Error()))
	}
}

// authFailuresOver counts a failed authentication against the client's
// limits.auth_failures_per_ip and, when it is over, answers 429 and counts
// the failure as suppressed instead of auditing it. It reports whether it
// answered.
func (s *Server) authFailuresOver(c *gin.Context) bool {
	key := rateKey(clientIP(c))
	lc, err := s.limits.authFailIP.Get(c.Request.Context(), "authfail:ip:"+key)
	if e, ok := s.storeFull(c, "auth failure limit", err); ok {
		s.writeError(c, e) // refused: its failures could not be counted
		return true
	}
	if err != nil {
		s.log.Warn("auth failure limit unavailable", slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
		return false // the 401 is answered and audited as usual
	}
	if !lc.Reached {
		return false
	}
	s.metrics.Limited("auth_failures")
	s.limits.suppressed.add(refusalAuthFailure, key, time.Now(), time.Unix(lc.Reset, 0))
	h := c.Writer.Header()
	h.Set("X-RateLimit-Limit", strconv.FormatInt(lc.Limit, 10))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(lc.Reset, 10))
	e := httpErr(http.StatusTooManyRequests, CodeRateLimited, "too many failed authentications from your network, retry later",
		fmt.Errorf("auth failures over limits.auth_failures_per_ip for %s", key))
	e.RetryAfter = max(time.Until(time.Unix(lc.Reset, 0)), time.Second)
	s.writeError(c, e)
	return true
}

// flushSuppressedLoop writes the summaries of ended windows until ctx ends.
func (s *Server) flushSuppressedLoop(ctx context.Context) {
	t := time.NewTicker(suppressFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.flushSuppressed(ctx, now, false)
		}
	}
}

// flushSuppressed writes one audit_suppressed line per ended window (every
// window when all is set, as at shutdown).
func (s *Server) flushSuppressed(ctx context.Context, now time.Time, all bool) {
	ctx = context.WithoutCancel(ctx)
	for _, sum := range s.limits.suppressed.take(now, all) {
		ev := Event{
			Type: EventAuditSuppressed, RemoteIP: sum.ip, Reason: sum.reason, Suppressed: sum.n,
			Message: fmt.Sprintf("%d %s refusals from %s were not written one by one (first %s, last %s, window until %s)",
				sum.n, sum.reason, sum.ip, sum.first.UTC().Format(time.RFC3339), sum.last.UTC().Format(time.RFC3339), sum.until.UTC().Format(time.RFC3339)),
		}
		if set := s.currentPolicy(); set != nil {
			ev.PolicyHash = set.Hash()
		}
		recCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.audit.Record(recCtx, ev); err != nil {
			// The count must not vanish: it goes to the error log instead.
			s.log.Error("audit: suppressed-refusal summary not written", slog.String("reason", sum.reason),
				slog.String("remote_ip", sum.ip), slog.Int64("suppressed", sum.n), slog.String("error", err.Error()))
		}
		cancel()
	}
}

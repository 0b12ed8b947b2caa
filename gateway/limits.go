package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"
)

// rateLimits are the per-IP and per-user limiters of each scope.
type rateLimits struct {
	authIP, authUser, execIP, execUser, wsIP, wsUser *limiter.Limiter
	// apiIP limits the authenticated endpoints without a limit of their own;
	// authFailIP counts failed authentications, refusalAudit refusal lines
	// per IP and refusalAuditAll those of every client together.
	apiIP, authFailIP, refusalAudit, refusalAuditAll *limiter.Limiter
	// suppressed counts the refusal lines not written one by one.
	suppressed *suppressor
	// mem is the in-memory store (nil with Redis); fullLog rate-limits the
	// log lines of its refusals.
	mem     *memStore
	fullLog storeFullLog
}

func parseRate(s string) (limiter.Rate, error) {
	r, err := limiter.NewRateFromFormatted(s)
	if err != nil {
		return r, fmt.Errorf("rate %q: want <count>-<S|M|H|D>, e.g. 10-M", s)
	}
	if r.Limit < 1 {
		return r, fmt.Errorf("rate %q: count must be at least 1", s)
	}
	return r, nil
}

// initLimits builds the limiters and the lockouts on memory or Redis.
func (s *Server) initLimits(ctx context.Context) error {
	var store limiter.Store
	var locks lockStore
	var mem *memStore
	if s.cfg.Limits.RedisURL == "" {
		mem = newMemStore(s.cfg.Limits.MemoryStoreMaxKeys)
		store, locks = mem, mem
		s.watchMemStore(mem)
	} else {
		opts, err := redis.ParseURL(s.cfg.Limits.RedisURL)
		if err != nil {
			return &ConfigError{Key: "limits.redis_url", Message: "not a valid Redis URL"} // never echo: it may hold a password
		}
		if opts.TLSConfig != nil {
			opts.TLSConfig.MinVersion = max(opts.TLSConfig.MinVersion, tls.VersionTLS12)
			if s.cfg.Limits.RedisCAFile != "" {
				pem, err := os.ReadFile(s.cfg.Limits.RedisCAFile)
				if err != nil {
					return &ConfigError{Key: "limits.redis_ca_file", Message: err.Error()}
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return &ConfigError{Key: "limits.redis_ca_file", Message: "no PEM certificate in " + s.cfg.Limits.RedisCAFile}
				}
				opts.TLSConfig.RootCAs = pool
			}
		}
		client := redis.NewClient(opts)
		s.closers = append(s.closers, client.Close)
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = client.Ping(pingCtx).Err()
		cancel()
		if err != nil {
			s.close()
			return fmt.Errorf("redis: %w", err)
		}
		if store, err = redisstore.NewStoreWithOptions(client, limiter.StoreOptions{Prefix: "execgate:rl", MaxRetry: 3}); err != nil {
			s.close()
			return fmt.Errorf("redis limiter store: %w", err)
		}
		locks = redisLocks{c: client}
		s.readyChecks = append(s.readyChecks, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := client.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		})
	}
	l := s.cfg.Limits
	total, _ := parseRate(l.RefusalAuditTotal) // checked by Validate
	mk := func(spec string) *limiter.Limiter {
		r, _ := parseRate(spec) // checked by Validate
		return limiter.New(store, r)
	}
	s.limits = &rateLimits{
		authIP: mk(l.AuthPerIP), authUser: mk(l.AuthPerUser),
		execIP: mk(l.ExecPerIP), execUser: mk(l.ExecPerUser),
		wsIP: mk(l.WSPerIP), wsUser: mk(l.WSPerUser),
		apiIP: mk(l.APIPerIP), authFailIP: mk(l.AuthFailuresPerIP),
		refusalAudit: mk(l.RefusalAuditPerIP), refusalAuditAll: mk(l.RefusalAuditTotal),
		suppressed: newSuppressor(int(min(total.Limit, maxSuppressedKeys))),
	}
	s.limits.mem = mem
	s.lockouts = &lockouts{store: locks, cfg: s.cfg.Auth.Lockout}
	return nil
}

// take counts one request against lim for key; it sets the X-RateLimit-*
// headers and returns a 429 HTTPError when over the limit.
func (s *Server) take(c *gin.Context, lim *limiter.Limiter, scope, key string) error {
	lc, err := lim.Get(c.Request.Context(), key)
	if e, ok := s.storeFull(c, "rate limit "+scope, err); ok {
		return e
	}
	if err != nil {
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "rate limiter unavailable", fmt.Errorf("rate limit %s: %w", scope, err))
	}
	// Several limits apply to one request: the headers show the tightest.
	h := c.Writer.Header() // keys in canonical form: no Set/Get canonicalising
	if prev, err := strconv.ParseInt(firstValue(h["X-Ratelimit-Remaining"]), 10, 64); err != nil || lc.Remaining < prev || lc.Reached {
		h["X-Ratelimit-Limit"] = []string{strconv.FormatInt(lc.Limit, 10)}
		h["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(lc.Remaining, 10)}
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(lc.Reset, 10)}
	}
	if !lc.Reached {
		return nil
	}
	s.metrics.Limited(scope)
	e := httpErr(http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded, retry later", fmt.Errorf("rate limit %s %s", scope, key))
	e.RetryAfter = max(time.Until(time.Unix(lc.Reset, 0)), time.Second)
	ev := s.event(c, EventRejected)
	ev.Reason = CodeRateLimited
	ev.Message = "rate limit " + scope
	ev.Status = http.StatusTooManyRequests
	s.auditRefusal(c.Request.Context(), refusalRateLimited, ev)
	return e
}

func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// limitIP limits by client address (IPv6 by /64).
func (s *Server) limitIP(lim *limiter.Limiter, scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.take(c, lim, "ip", scope+":ip:"+rateKey(clientIP(c))); err != nil {
			s.writeError(c, err)
			return
		}
		c.Next()
	}
}

// limitUser limits by verified subject.
func (s *Server) limitUser(lim *limiter.Limiter, scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, _ := principal(c)
		if err := s.take(c, lim, "user", scope+":user:"+p.Subject); err != nil {
			s.writeError(c, err)
			return
		}
		c.Next()
	}
}

// allowNet refuses clients outside rules with 403 ip_not_allowed.
func (s *Server) allowNet(rules netRules, what string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !rules.permits(clientIP(c)) {
			ev := s.event(c, EventRejected)
			ev.Reason = CodeIPNotAllowed
			ev.Message = what
			ev.Status = http.StatusForbidden
			s.auditRefusal(c.Request.Context(), refusalIPNotAllowed, ev)
			s.writeError(c, httpErr(http.StatusForbidden, CodeIPNotAllowed, "your network may not use this endpoint", fmt.Errorf("%s: %s not allowed", what, clientIP(c))))
			return
		}
		c.Next()
	}
}

// wsGuard applies the WebSocket network rules and per-IP limit to any
// upgrade request.
func (s *Server) wsGuard(c *gin.Context) {
	if c.GetHeader("Upgrade") == "" {
		c.Next()
		return
	}
	if !s.netWS.permits(clientIP(c)) {
		s.writeError(c, httpErr(http.StatusForbidden, CodeIPNotAllowed, "your network may not open WebSocket connections", fmt.Errorf("ws: %s not allowed", clientIP(c))))
		return
	}
	if err := s.take(c, s.limits.wsIP, "ip", "ws:ip:"+rateKey(clientIP(c))); err != nil {
		s.writeError(c, err)
		return
	}
	c.Next()
}

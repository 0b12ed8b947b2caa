package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Keys of values the middleware chain stores on the gin.Context.
const (
	ctxRequestID = "execgate.request_id"
	ctxPrincipal = "execgate.principal"
	ctxClientIP  = "execgate.client_ip"
	ctxSession   = "execgate.session_id"
	ctxErr       = "execgate.error"
	ctxDecision  = "execgate.decision_id"
)

// handler is a route handler that returns its error; wrap turns it into a
// gin.HandlerFunc whose error goes through the one error adapter.
type handler func(c *gin.Context) error

func (s *Server) wrap(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			s.writeError(c, err)
		}
	}
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Reason    string `json:"reason,omitempty"`
	Field     string `json:"field,omitempty"`
}

// writeError is the one place an error becomes a response: the client gets
// the code and the safe message, the log gets the detail (via the access
// line, which reads ctxErr).
func (s *Server) writeError(c *gin.Context, err error) {
	var he *HTTPError
	if !errors.As(err, &he) {
		he = httpErr(http.StatusInternalServerError, CodeInternal, "internal error", err)
	}
	c.Set(ctxErr, err)
	if he.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(he.RetryAfter.Seconds()))))
	}
	c.Abort()
	body := errorBody{Error: errorDetail{
		Code: he.Code, Message: he.Message, RequestID: requestID(c), Reason: he.Reason, Field: he.Field,
	}}
	_ = writeAnswer(c, he.Status, body.appendJSON) // an error body always encodes
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

func principal(c *gin.Context) (Principal, bool) {
	p, ok := c.Get(ctxPrincipal)
	if !ok {
		return Principal{}, false
	}
	pr, ok := p.(Principal)
	return pr, ok
}

func clientIP(c *gin.Context) string { return c.GetString(ctxClientIP) }

// newID returns 16 random bytes in hex.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never happens on Linux
	}
	return hex.EncodeToString(b[:])
}

// securityHeaderValues go on every response. The value slices are shared by
// every response: full (len == cap), so an Add appends to a copy.
var securityHeaderValues = []struct {
	k string
	v []string
}{
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"Referrer-Policy", []string{"no-referrer"}},
	{"Cache-Control", []string{"no-store"}},
	{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"}},
	{"Cross-Origin-Resource-Policy", []string{"same-origin"}},
}

var hstsValue = []string{"max-age=31536000"}

// first is the outermost middleware: request id, security headers, access
// log and panic recovery.
func (s *Server) first(c *gin.Context) {
	start := time.Now()
	id := newID()
	c.Set(ctxRequestID, id)
	h := c.Writer.Header()
	h["X-Request-Id"] = []string{id}
	for _, kv := range securityHeaderValues { // keys canonical already: no Set
		h[kv.k] = kv.v
	}
	if s.cfg.TLS.CertFile != "" {
		h["Strict-Transport-Security"] = hstsValue
	}
	c.Set(ctxClientIP, s.clientIPs.clientIP(c.Request))
	defer s.accessLog(c, start)
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(r)
			}
			s.writeError(c, httpErr(http.StatusInternalServerError, CodeInternal, "internal error", fmt.Errorf("panic: %v", r)))
		}
	}()
	c.Next()
}

// accessLog writes the one access line of a request; never the query string
// (a token could be in it), never a header.
func (s *Server) accessLog(c *gin.Context, start time.Time) {
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestID(c)),
		slog.String("subject", ""),
		slog.String("session_id", c.GetString(ctxSession)),
		slog.String("remote_ip", clientIP(c)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", c.Writer.Status()),
		slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if p, ok := principal(c); ok {
		attrs[1] = slog.String("subject", p.Subject)
	}
	s.metrics.HTTPDone(c.Request.Method, c.FullPath(), c.Writer.Status(), time.Since(start))
	level := slog.LevelInfo
	if v, ok := c.Get(ctxErr); ok {
		if err, ok := v.(error); ok {
			attrs = append(attrs, slog.String("error", err.Error()))
			if c.Writer.Status() >= 500 {
				level = slog.LevelError
			}
		}
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// tokenParamRe matches query parameter names that carry credentials.
var tokenParamRe = regexp.MustCompile(`(?i)^(access_?token|token|jwt|id_?token|auth|authorization|bearer|api_?key|apikey|key|password|secret)$`)

// jwtLikeRe matches a value that looks like a JWT (base64url JSON header).
var jwtLikeRe = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?`)

// noTokenInQuery refuses any request carrying a credential in its URL.
func (s *Server) noTokenInQuery(c *gin.Context) {
	raw := c.Request.URL.RawQuery
	if raw == "" {
		c.Next()
		return
	}
	// Every pair as written, not URL.Query(): it drops a pair it cannot
	// unescape ("token=abc%zz"), which a proxy or an app may still read.
	for _, pair := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		name, val, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if v, err := url.QueryUnescape(val); err == nil {
			val = v
		}
		if tokenParamRe.MatchString(name) || jwtLikeRe.MatchString(val) {
			s.writeError(c, httpErr(http.StatusBadRequest, CodeTokenInQuery,
				"credentials must be sent in the Authorization header, never in the URL", fmt.Errorf("query parameter %q", truncate(name, 64))))
			return
		}
	}
	if jwtLikeRe.MatchString(raw) {
		s.writeError(c, httpErr(http.StatusBadRequest, CodeTokenInQuery,
			"credentials must be sent in the Authorization header, never in the URL", errors.New("query string")))
		return
	}
	c.Next()
}

// headerLimit refuses requests whose headers exceed http.max_header_bytes.
func (s *Server) headerLimit(c *gin.Context) {
	n := len(c.Request.Method) + len(c.Request.RequestURI) + 16
	for k, vs := range c.Request.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if n > s.cfg.HTTP.MaxHeaderBytes {
		s.writeError(c, httpErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request headers too large", fmt.Errorf("%d header bytes", n)))
		return
	}
	if c.Request.ContentLength > s.cfg.HTTP.MaxBodyBytes {
		s.writeError(c, httpErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body too large", fmt.Errorf("content-length %d", c.Request.ContentLength)))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.HTTP.MaxBodyBytes)
	c.Next()
}

// cors answers CORS from the allowlist only; never "*".
func (s *Server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || !s.corsOrigins[origin] {
		if c.Request.Method == http.MethodOptions && origin != "" {
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if s.cfg.HTTP.CORSCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset")
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}

// authenticate requires a valid bearer token.
func (s *Server) authenticate(c *gin.Context) {
	// Two Authorization headers: a proxy may check one and we the other.
	if len(c.Request.Header.Values("Authorization")) > 1 {
		s.authFailed(c, &TokenError{Reason: "ambiguous", Err: errors.New("more than one Authorization header")})
		return
	}
	tok, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		s.authFailed(c, &TokenError{Reason: "missing"})
		return
	}
	p, _, err := s.verifier.Load().verify(tok)
	if err != nil {
		s.authFailed(c, err)
		return
	}
	c.Set(ctxPrincipal, p)
	if c.GetHeader("Upgrade") != "" { // a WebSocket upgrade: limits.ws_per_user (wsGuard took ws_per_ip)
		if err := s.take(c, s.limits.wsUser, "user", "ws:user:"+p.Subject); err != nil {
			s.writeError(c, err)
			return
		}
	}
	s.startAuthRecord(c, p) // every authenticated request leaves an auth record (authaudit.go)
	c.Next()
}

func (s *Server) authFailed(c *gin.Context, err error) {
	reason := "invalid"
	var te *TokenError
	if errors.As(err, &te) {
		reason = te.Reason
	}
	s.metrics.AuthFailed(reason)
	if s.authFailuresOver(c) { // past limits.auth_failures_per_ip: 429, counted, not audited one by one
		return
	}
	ev := s.event(c, EventAuthFailure)
	ev.AuthMethod = "jwt"
	ev.Reason = reason
	ev.Error = err.Error()
	s.auditTotal(c.Request.Context(), refusalAuthFailure, ev) // within limits.refusal_audit_total; refused either way
	c.Header("WWW-Authenticate", `Bearer realm="execgate"`)
	s.writeError(c, errUnauthorized(err))
}

// requirePermission refuses callers none of whose roles carries the policy
// permission perm (e.g. "admin", granted by roles' permissions in the policy).
func (s *Server) requirePermission(perm string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, _ := principal(c)
		if set := s.currentPolicy(); set != nil && set.HasPermission(p.Roles, perm) {
			c.Next()
			return
		}
		s.writeError(c, errForbidden("role_forbidden", "this endpoint needs the "+perm+" permission", fmt.Errorf("subject %s lacks permission %s", p.Subject, perm)))
	}
}

// event starts an audit event filled from the request.
func (s *Server) event(c *gin.Context, t EventType) Event {
	ev := Event{
		Type: t, RequestID: requestID(c), SessionID: c.GetString(ctxSession), DecisionID: c.GetString(ctxDecision),
		RemoteIP: clientIP(c), UserAgent: truncate(c.Request.UserAgent(), 256),
		Method: c.Request.Method, Route: c.FullPath(),
	}
	if p, ok := principal(c); ok {
		ev.Subject, ev.Roles = p.Subject, p.Roles
	}
	if set := s.currentPolicy(); set != nil {
		ev.PolicyHash = set.Hash()
	}
	return ev
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

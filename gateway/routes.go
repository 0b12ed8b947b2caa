package gateway

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// routes builds the engine: every middleware and endpoint.
func (s *Server) routes() *gin.Engine {
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ForwardedByClientIP = false
	_ = e.SetTrustedProxies(nil) // the client IP is ours to compute (clientIPs)
	e.ContextWithFallback = true
	e.Use(s.first, s.allowNet(s.netAll, "global"), s.noTokenInQuery, s.headerLimit, s.cors, s.wsGuard)
	e.NoRoute(s.wrap(func(*gin.Context) error {
		return httpErr(http.StatusNotFound, CodeNotFound, "no such endpoint", errors.New("no route"))
	}))
	e.NoMethod(s.wrap(func(*gin.Context) error {
		return httpErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed", errors.New("no method"))
	}))

	e.GET("/healthz", s.wrap(s.handleHealthz))
	e.GET("/readyz", s.wrap(s.handleReadyz))
	e.POST("/auth/token", s.limitIP(s.limits.authIP, "auth"), s.wrap(s.handleToken))

	execIP, execUser := s.limitIP(s.limits.execIP, "exec"), s.limitUser(s.limits.execUser, "exec")
	e.POST("/v1/exec", execIP, s.authenticate, execUser, s.wrap(s.handleExec))
	e.POST("/v1/exec/check", execIP, s.authenticate, execUser, s.wrap(s.handleCheck))
	// Every other authenticated endpoint: a per-IP limit before the token is checked.
	apiIP := s.limitIP(s.limits.apiIP, "api")
	e.GET("/v1/commands", apiIP, s.authenticate, s.wrap(s.handleCommands))

	admin := []gin.HandlerFunc{s.allowNet(s.netAdmin, "admin"), apiIP, s.authenticate, s.requirePermission("admin")}
	e.GET("/v1/health", append(admin, s.wrap(s.handleHealth))...)
	e.GET("/v1/sessions", append(admin, s.wrap(s.handleSessions))...)
	e.DELETE("/v1/sessions/:id", append(admin, s.wrap(s.handleKill))...)
	e.POST("/v1/admin/drain", append(admin, s.wrap(s.handleDrain))...)
	if s.deps.Registry != nil && s.cfg.MetricsListen == "" {
		h := MetricsHandler(s.deps.Registry)
		e.GET("/metrics", append(admin, func(c *gin.Context) { h.ServeHTTP(c.Writer, c.Request) })...)
	}
	return e
}

package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/execgate/execgate/policy"
)

func (s *Server) handleHealthz(c *gin.Context) error {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
	return nil
}

// handleReadyz: policy loaded, sandbox self-check passed (New), audit log
// writable, not draining.
func (s *Server) handleReadyz(c *gin.Context) error {
	if s.currentPolicy() == nil {
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "not ready", errors.New("no policy"))
	}
	if err := s.audit.Writable(); err != nil {
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "not ready", err)
	}
	if s.draining.Load() {
		return httpErr(http.StatusServiceUnavailable, CodeDraining, "draining", ErrDraining)
	}
	for _, check := range s.readyChecks {
		if err := check(c.Request.Context()); err != nil {
			return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "not ready", err)
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
	return nil
}

// healthResponse is GET /v1/health.
type healthResponse struct {
	Version        string  `json:"version"`
	UptimeS        float64 `json:"uptime_s"`
	PolicyHash     string  `json:"policy_hash"`
	ActiveSessions int     `json:"active_sessions"`
	Draining       bool    `json:"draining"`
	Sandbox        any     `json:"sandbox"`
	AuditWritable  bool    `json:"audit_writable"`
}

func (s *Server) handleHealth(c *gin.Context) error {
	resp := healthResponse{Version: s.deps.Version, UptimeS: time.Since(s.started).Seconds(),
		ActiveSessions: s.sessions.count(), Draining: s.draining.Load(), Sandbox: s.deps.SandboxFeatures,
		AuditWritable: s.audit.Writable() == nil}
	if set := s.currentPolicy(); set != nil {
		resp.PolicyHash = set.Hash()
	}
	c.JSON(http.StatusOK, resp)
	return nil
}

func (s *Server) handleSessions(c *gin.Context) error {
	ev := s.event(c, EventAdminAction)
	ev.Action = "list_sessions"
	withAuth(c, &ev)
	if err := s.recordAuthed(c, ev); err != nil {
		return auditUnavailable(err)
	}
	c.JSON(http.StatusOK, gin.H{"sessions": s.sessions.list()})
	return nil
}

func (s *Server) handleKill(c *gin.Context) error {
	id := c.Param("id")
	ev := s.event(c, EventAdminAction)
	ev.Action, ev.Target = "kill_session", truncate(id, 64)
	withAuth(c, &ev)
	if err := s.recordAuthed(c, ev); err != nil {
		return auditUnavailable(err)
	}
	if !s.sessions.kill(id) {
		return httpErr(http.StatusNotFound, CodeNotFound, "no such session", errors.New("session not running"))
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *Server) handleDrain(c *gin.Context) error {
	ev := s.event(c, EventAdminAction)
	ev.Action = "drain"
	withAuth(c, &ev)
	if err := s.recordAuthed(c, ev); err != nil {
		return auditUnavailable(err)
	}
	s.draining.Store(true)
	c.JSON(http.StatusAccepted, gin.H{"draining": true, "active_sessions": s.sessions.count()})
	return nil
}

func (s *Server) handleCommands(c *gin.Context) error {
	p, _ := principal(c)
	cmds := s.currentPolicy().CommandsFor(p.Roles)
	if cmds == nil {
		cmds = []policy.CommandInfo{}
	}
	c.JSON(http.StatusOK, gin.H{"commands": cmds})
	return nil
}

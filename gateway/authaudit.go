package gateway

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Every authenticated request leaves an auth record in the audit log
// before its answer is sent. The first audit line the request writes of its
// own (the decision of /v1/exec and /v1/exec/check, an admin action)
// carries the auth fields (auth_method, kid) and is that record: one line,
// one fsync per request on the hot path. A request that writes no such line
// (GET /v1/commands, GET /v1/health, a 400 before any decision, a 403 on an
// admin endpoint) gets its own auth_success line, written and synced by
// authWriter when the handler starts to answer. When that line cannot be
// written the answer becomes 503 audit_unavailable: no authenticated
// request is answered unrecorded. docs/audit.md describes it.

// ctxAuth holds the request's *authRecord.
const ctxAuth = "execgate.auth"

// authRecord is the state of one request's auth record.
type authRecord struct {
	keyID   string
	written bool // a line carrying the auth fields is durable
}

func authState(c *gin.Context) *authRecord {
	if v, ok := c.Get(ctxAuth); ok {
		return v.(*authRecord)
	}
	return nil
}

// withAuth puts the auth fields on ev when no line of this request has
// carried them yet; record it with recordAuthed.
func withAuth(c *gin.Context, ev *Event) {
	if st := authState(c); st != nil && !st.written {
		ev.AuthMethod, ev.KeyID = "jwt", st.keyID
	}
}

// recordAuthed records a request's own line (filled by withAuth) and notes
// that the request's auth record is written when the line carried it.
func (s *Server) recordAuthed(c *gin.Context, ev Event) error {
	err := s.audit.Record(c.Request.Context(), ev)
	if err == nil && ev.AuthMethod != "" {
		if st := authState(c); st != nil {
			st.written = true
		}
	}
	return err
}

// startAuthRecord is called by authenticate once the token verified.
func (s *Server) startAuthRecord(c *gin.Context, p Principal) {
	c.Set(ctxAuth, &authRecord{keyID: p.KeyID})
	c.Writer = &authWriter{ResponseWriter: c.Writer, s: s, c: c}
}

// authWriter writes the request's auth_success line, when no other line
// carried the auth fields, before the first byte of the answer.
type authWriter struct {
	gin.ResponseWriter
	s        *Server
	c        *gin.Context
	checked  bool
	replaced bool // the auth record failed: the answer is our 503
}

// ensure runs once, before the status or any byte is passed on.
func (w *authWriter) ensure(status int) {
	if w.checked {
		return
	}
	w.checked = true
	st := authState(w.c)
	if st == nil || st.written {
		return
	}
	ev := w.s.event(w.c, EventAuthSuccess)
	ev.AuthMethod, ev.KeyID, ev.Status = "jwt", st.keyID, status
	if err := w.s.audit.Record(w.c.Request.Context(), ev); err != nil {
		w.s.log.Error("audit", slog.String("request_id", ev.RequestID), slog.String("error", err.Error()))
		w.replace(auditUnavailable(err))
		return
	}
	st.written = true
}

// replace answers he instead of what the handler meant to answer.
func (w *authWriter) replace(he *HTTPError) {
	w.replaced = true
	w.c.Set(ctxErr, error(he))
	h := w.ResponseWriter.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Location"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.ResponseWriter.WriteHeader(he.Status)
	eb := errorBody{Error: errorDetail{Code: he.Code, Message: he.Message, RequestID: requestID(w.c)}}
	body, _ := eb.appendJSON(nil) // an error body always encodes
	_, _ = w.ResponseWriter.Write(body)
}

func (w *authWriter) WriteHeader(code int) {
	w.ensure(code)
	if !w.replaced {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *authWriter) WriteHeaderNow() {
	w.ensure(w.ResponseWriter.Status())
	w.ResponseWriter.WriteHeaderNow()
}

func (w *authWriter) Write(b []byte) (int, error) {
	w.ensure(w.ResponseWriter.Status())
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *authWriter) WriteString(s string) (int, error) {
	w.ensure(w.ResponseWriter.Status())
	if w.replaced {
		return len(s), nil
	}
	return w.ResponseWriter.WriteString(s)
}

// Hijack (a WebSocket upgrade) needs the auth record first, like an answer.
func (w *authWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.ensure(http.StatusSwitchingProtocols)
	if w.replaced {
		return nil, nil, errors.New("audit log unavailable: answered 503 instead")
	}
	return w.ResponseWriter.Hijack()
}

func (w *authWriter) Flush() {
	w.ensure(w.ResponseWriter.Status())
	w.ResponseWriter.Flush()
}

package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
)

// net/http answers a request it cannot parse (no Host, a malformed header
// line, an unsupported protocol version, ...) itself, before any handler:
// "HTTP/1.1 400 Bad Request", a text/plain body, no X-Request-Id, none of
// the security headers. The header guard sees that answer on its way out
// (net/http writes it in one piece, with exactly netHTTPErrorHeaders, and
// never so for a handler's answer, which always has a Date and an
// X-Request-Id) and sends the API's JSON envelope instead, with the same
// status, a request id and the security headers, and logs its access line.

// netHTTPErrorHeaders are the headers net/http writes on its own errors.
var netHTTPErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// rawHTTPError parses net/http's own error answer: its status and the text
// after it ("400 Bad Request: missing required Host header").
func rawHTTPError(p []byte) (status int, text string, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !found || len(rest) < 4 || rest[3] != ' ' {
		return 0, "", false
	}
	head, body, found := bytes.Cut(rest, netHTTPErrorHeaders)
	if !found || bytes.IndexByte(head, '\n') >= 0 {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil || status < 400 || status > 599 {
		return 0, "", false
	}
	return status, string(body), true
}

// envelopeRawError returns the JSON answer that replaces net/http's error
// p, or nil when p is not one.
func (l *guardListener) envelopeRawError(c net.Conn, p []byte) []byte {
	status, text, ok := rawHTTPError(p)
	if !ok || l.rawError == nil {
		return nil
	}
	return l.rawError(c, status, text)
}

// netHTTPError logs net/http's refusal of an unparsable request and returns
// its JSON answer (code invalid_request; payload_too_large for 431).
func (s *Server) netHTTPError(c net.Conn, status int, text string) []byte {
	id := newID()
	code, msg := CodeInvalidRequest, "malformed HTTP request"
	if status == http.StatusRequestHeaderFieldsTooLarge {
		code, msg = CodePayloadTooLarge, "request headers too large"
	}
	if _, detail, found := bytes.Cut([]byte(text), []byte(": ")); found && len(detail) < 200 {
		msg += ": " + string(bytes.TrimSpace(detail)) // net/http's reason, never client bytes
	}
	ip := ""
	if a := addrIP(c.RemoteAddr().String()); a.IsValid() {
		ip = a.String()
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", id), slog.String("subject", ""), slog.String("session_id", ""),
		slog.String("remote_ip", ip), slog.String("method", ""), slog.String("route", "unmatched"),
		slog.Int("status", status), slog.Float64("latency_ms", 0), slog.String("error", "net/http: "+msg))
	s.metrics.HTTPDone("", "", status, 0)
	return rawErrorResponse(id, s.cfg.TLS.CertFile != "", status, code, msg)
}

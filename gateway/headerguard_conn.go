package gateway

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// The header guard gives every oversized request header block on the API's
// own plain-HTTP listener the gateway's answer: 413 payload_too_large as
// JSON with X-Request-Id and the security headers, an access log line and
// an audit line (within limits.refusal_audit_per_ip). Without it net/http
// answers a header block past its hard limit with a plain-text 431 that no
// handler ever sees.
//
// It wraps each accepted connection: Read passes every byte through
// unchanged and feeds a frameTracker, which finds the header blocks. When a
// block passes http.max_header_bytes the guard writes the 413 itself and
// closes the connection; nothing more than the caller's own read buffer is
// ever held. If an earlier request on the connection is still unanswered
// (pipelining, or an Upgrade request that may be taken over), the guard
// first lets those answers go out (http.Server.ConnState says when) and
// refuses only then, or gives up if the connection is hijacked. Whatever the
// tracker cannot follow it stops guarding, and net/http's own limit
// (MaxHeaderBytes, set to twice max_header_bytes) stays the backstop.
//
// With tls.cert_file set, tlsGuardListener (headerguard_tls.go) guards the
// HTTP/1.1 connections after their handshake and leaves HTTP/2 ones alone.
// Behind nginx, nginx's own limits answer first (deploy/nginx/execgate.conf).

// rejectDrain bounds the wait for the client to stop sending after the 413
// (so that closing does not reset the connection before the answer is read).
// 4 MiB covers a client that sends a header block of a few MiB (a 1 MB
// token is 1.4 MB in base64) before it reads: with 1 MiB the close could
// reset the connection under such a client (TestHostileTokens' "1 MB
// token" then saw a broken pipe instead of the 413). Time bounds it too.
const (
	rejectDrainTime  = 500 * time.Millisecond
	rejectDrainBytes = 4 << 20
	rejectWriteTime  = 5 * time.Second
)

// guardListener wraps the accepted connections of a listener.
type guardListener struct {
	net.Listener
	limit int
	// refuse logs and audits a refused connection and returns the answer.
	refuse func(c net.Conn, blockBytes int) []byte
	// rawError logs net/http's own refusal of an unparsable request and
	// returns the JSON answer sent in its place (headerguard_rawhttp.go);
	// nil sends net/http's as is.
	rawError func(c net.Conn, status int, text string) []byte
}

// Accept wraps the next connection.
func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// wrap guards one connection.
func (l *guardListener) wrap(c net.Conn) *guardConn {
	return &guardConn{Conn: c, l: l, tr: newFrameTracker(l.limit), wake: make(chan struct{}, 1)}
}

// guardConn is one guarded connection.
type guardConn struct {
	net.Conn
	l *guardListener

	rmu sync.Mutex // serialises Read; guards tr
	tr  *frameTracker

	mu       sync.Mutex
	answered int64 // requests answered (ConnState idle transitions)
	hijacked bool
	closed   bool
	refused  bool
	deadline time.Time     // the read deadline net/http set
	wake     chan struct{} // a change of the above
}

func (c *guardConn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// connState is the http.Server.ConnState hook that tells guarded
// connections when an answer has gone out or the connection was taken over.
func connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*guardConn)
	if !ok {
		return
	}
	c.mu.Lock()
	switch st {
	case http.StateIdle:
		c.answered++
	case http.StateHijacked:
		c.hijacked = true
	case http.StateClosed:
		c.closed = true
	}
	c.mu.Unlock()
	c.kick()
}

func (c *guardConn) passThrough() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hijacked
}

// Read reads from the connection and follows its framing; it refuses the
// connection when a header block is over the limit.
func (c *guardConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.tr.off() || c.passThrough() {
		return c.Conn.Read(p)
	}
	if c.tr.overBlock >= 0 { // refused by an earlier Read, answers pending
		if err := c.waitAnswered(c.tr.overBlock); err != nil {
			return 0, err
		}
		if c.passThrough() {
			return c.Conn.Read(p)
		}
		return 0, c.refuse()
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	c.tr.feed(p[:n])
	if c.tr.overBlock < 0 {
		return n, err
	}
	c.mu.Lock()
	answered := c.answered
	c.mu.Unlock()
	switch {
	case c.tr.overBlock <= answered:
		return 0, c.refuse() // no earlier request waits for its answer
	case c.tr.overDone:
		c.tr.dropOver() // net/http has the whole block: its limit and ours answer it
	}
	return n, err
}

// waitAnswered waits until the requests before block number block have been
// answered, the connection is taken over or closed, or the read deadline
// passes (net/http aborts a background read that way).
func (c *guardConn) waitAnswered(block int64) error {
	for {
		c.mu.Lock()
		done, closed, dl := c.answered >= block || c.hijacked, c.closed, c.deadline
		c.mu.Unlock()
		switch {
		case closed:
			return c.opErr(net.ErrClosed)
		case done:
			return nil
		case !dl.IsZero() && !time.Now().Before(dl):
			return c.opErr(os.ErrDeadlineExceeded)
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			t = time.NewTimer(time.Until(dl))
			timeout = t.C
		}
		select {
		case <-c.wake:
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (c *guardConn) opErr(err error) error {
	return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// refuse writes the 413, lets the client see it and closes.
func (c *guardConn) refuse() error {
	c.mu.Lock()
	c.refused = true
	c.mu.Unlock()
	resp := c.l.refuse(c.Conn, c.tr.block)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(rejectWriteTime))
	if _, err := c.Conn.Write(resp); err == nil {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			c.drain()
		}
	}
	_ = c.Conn.Close()
	return c.opErr(errHeaderBlockTooLarge)
}

// drain reads and drops what the client still sends, for a short while, so
// that the close does not reset the connection before it read the answer.
func (c *guardConn) drain() {
	_ = c.Conn.SetReadDeadline(time.Now().Add(rejectDrainTime))
	var buf [4096]byte
	for total := 0; total < rejectDrainBytes; {
		n, err := c.Conn.Read(buf[:])
		total += n
		if err != nil {
			return
		}
	}
}

// Write writes unless the guard has refused the connection.
func (c *guardConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	refused := c.refused
	c.mu.Unlock()
	if refused {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
	}
	if len(p) > 9 && p[9] >= '4' && p[0] == 'H' { // cheap first look: "HTTP/1.1 4.." or "5.."
		if env := c.l.envelopeRawError(c.Conn, p); env != nil {
			if _, err := c.Conn.Write(env); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// Close closes the connection and wakes a waiting Read.
func (c *guardConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.kick()
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close as it does on a bare TCP connection.
func (c *guardConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SetDeadline records the read deadline for a waiting Read.
func (c *guardConn) SetDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records the read deadline for a waiting Read.
func (c *guardConn) SetReadDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *guardConn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	c.kick()
}

// wrapListener wraps ln in the header guard; with TLS, it also terminates
// TLS (see headerguard_tls.go) with the certificate of tls.cert_file.
func (s *Server) wrapListener(ln net.Listener) (net.Listener, error) {
	g := &guardListener{Listener: ln, limit: s.cfg.HTTP.MaxHeaderBytes, refuse: s.headerTooLarge, rawError: s.netHTTPError}
	if s.cfg.TLS.CertFile == "" {
		return g, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
	if err != nil {
		return nil, &ConfigError{Key: "tls", Message: err.Error()}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	return newTLSGuardListener(ln, cfg, s.cfg.HTTP.ReadHeaderTimeout, g, s.log), nil
}

// headerTooLarge logs and audits a connection the guard refuses and returns
// its answer.
func (s *Server) headerTooLarge(c net.Conn, blockBytes int) []byte {
	id := newID()
	ip := ""
	if a := addrIP(c.RemoteAddr().String()); a.IsValid() {
		ip = a.String()
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", id), slog.String("subject", ""), slog.String("session_id", ""),
		slog.String("remote_ip", ip), slog.String("method", ""), slog.String("route", "unmatched"),
		slog.Int("status", http.StatusRequestEntityTooLarge), slog.Float64("latency_ms", 0),
		slog.String("error", errHeaderBlockTooLarge.Error()), slog.Int("header_bytes_read", blockBytes))
	s.metrics.HTTPDone("", "", http.StatusRequestEntityTooLarge, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.auditRefusal(ctx, refusalPayloadTooLarge, Event{
		Type: EventRejected, RequestID: id, RemoteIP: ip, Status: http.StatusRequestEntityTooLarge,
		Reason: CodePayloadTooLarge, Message: "request headers over http.max_header_bytes",
	})
	cancel()
	return rawErrorResponse(id, s.cfg.TLS.CertFile != "", http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request headers too large")
}

// addrIP is the IP of a "host:port" address (invalid if none).
func addrIP(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

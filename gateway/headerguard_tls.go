package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// With tls.cert_file set, the header guard cannot sit below TLS (it would
// read ciphertext), and wrapping every *tls.Conn would hide it from
// net/http, which negotiates HTTP/2 only on a *tls.Conn. So tlsGuardListener
// completes each TLS handshake itself, then hands net/http an HTTP/2
// connection as the bare *tls.Conn (HTTP/2 has its own header list limit:
// past twice max_header_bytes net/http answers 431 there) and an HTTP/1.1
// one wrapped in the header guard, which answers oversized header blocks of
// any size with the JSON 413 as on the plain listener. Handlers still see
// Request.TLS on guarded connections (tlsConnContext, withTLSState).

// tlsGuardListener accepts TCP connections, completes their TLS handshake
// in a goroutine per connection (so a slow client never holds up Accept)
// and yields them as above. Its goroutines end with Close.
type tlsGuardListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration // handshake bound (http.read_header_timeout)
	guard   *guardListener
	log     *slog.Logger

	conns  chan net.Conn
	errs   chan error
	done   chan struct{}
	ctx    context.Context // ends with Close: interrupts handshakes
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
}

func newTLSGuardListener(inner net.Listener, cfg *tls.Config, timeout time.Duration, guard *guardListener, log *slog.Logger) *tlsGuardListener {
	l := &tlsGuardListener{inner: inner, cfg: cfg, timeout: timeout, guard: guard, log: log,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection whose handshake has completed.
func (l *tlsGuardListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes connections still in their handshake and
// waits for every goroutine of the listener.
func (l *tlsGuardListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		l.cancel()
		err = l.inner.Close()
		l.wg.Wait()
	})
	return err
}

// Addr is the inner listener's address.
func (l *tlsGuardListener) Addr() net.Addr { return l.inner.Addr() }

func (l *tlsGuardListener) acceptLoop() {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case l.errs <- err: // net/http backs off on temporary errors
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake completes c's TLS handshake and passes it on.
func (l *tlsGuardListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.log.Debug("tls handshake failed", slog.String("remote_ip", addrIP(raw.RemoteAddr().String()).String()), slog.String("error", err.Error()))
		_ = tc.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		out = l.guard.wrap(tc)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		_ = tc.Close()
	}
}

// tlsStateKey keys a guarded TLS connection's state in its context.
type tlsStateKey struct{}

// tlsConnContext (http.Server.ConnContext) keeps the TLS state of a guarded
// HTTP/1.1 connection, which net/http cannot see under the guard.
func tlsConnContext(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*guardConn); ok {
		if tc, ok := g.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}

// withTLSState gives requests of guarded TLS connections their
// Request.TLS back, so handlers see TLS as on any TLS connection.
func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				r.TLS = st
			}
		}
		h.ServeHTTP(w, r)
	})
}

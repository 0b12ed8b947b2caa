package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTLSHandshakeFloodBounded: clients that open a connection to the
// gateway's own TLS listener and never finish the handshake (silent, or a
// ClientHello record header promising bytes that never come) are each
// closed by the server once http.read_header_timeout has passed, and while
// they wait a normal client is served.
func TestTLSHandshakeFloodBounded(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	env := startServer(t, func(cfg *Config, _ *Deps) {
		cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile}
		cfg.HTTP.ReadHeaderTimeout = 500 * time.Millisecond
	})
	addr := hostOf(env.url)
	const each = 20
	partialHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01} // handshake record of 512 bytes, 1 sent
	var conns []net.Conn
	for i := range 2 * each {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 1 {
			_, _ = c.Write(partialHello)
		}
		conns = append(conns, c)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(strings.Replace(env.url, "http://", "https://", 1) + "/healthz")
	if err != nil {
		t.Fatalf("with %d stalled handshakes pending: %v", len(conns), err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with stalled handshakes pending: got %d, want 200", resp.StatusCode)
	}

	// Each stalled connection is closed by the server (a liveness bound of
	// 20 s, forty times the handshake timeout, not a speed assertion).
	var wg sync.WaitGroup
	open := make(chan int, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open <- i
			}
		})
	}
	wg.Wait()
	close(open)
	for i := range open {
		t.Errorf("stalled handshake %d: still open after 20 s (http.read_header_timeout 500ms)", i)
	}
}

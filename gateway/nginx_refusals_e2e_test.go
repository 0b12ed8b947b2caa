package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNginxOtherRefusalsAreJSON: refusals nginx writes before a request
// reaches the gateway, beyond those TestNginxErrorsAreJSON covers (a
// method nginx refuses, a request line over its buffers or one it cannot
// parse at all (no URI: nginx cannot redirect to a named location then),
// an unknown transfer coding, an unsupported version, plain HTTP on the TLS
// port), answer in the gateway's JSON envelope, never nginx's HTML page
// with its name; the error pages cannot be asked for from outside.
func TestNginxOtherRefusalsAreJSON(t *testing.T) {
	env := startServer(t, func(cfg *Config, _ *Deps) { cfg.Network.TrustedProxies = []string{"127.0.0.1/32"} })
	addr, pool := startNginx(t, hostOf(env.url), nil)
	cases := []struct {
		name, raw  string
		tls        bool
		wantStatus int
		wantCode   string
	}{
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", true, 405, CodeMethodNotAllowed},
		{"request line over the buffers", "GET /" + strings.Repeat("a", 20<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", true, 413, CodePayloadTooLarge},
		{"unknown transfer coding", "POST /v1/exec HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", true, 400, CodeInvalidRequest},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", true, 400, CodeInvalidRequest},
		{"garbage request line", "\x01\x02\x03 nonsense\r\n\r\n", true, 400, CodeInvalidRequest},
		{"request line without a version", "GET\r\n\r\n", true, 400, CodeInvalidRequest},
		{"error page location from outside", "GET /_execgate/error/500 HTTP/1.1\r\nHost: x\r\n\r\n", true, 404, CodeNotFound},
		{"plain HTTP on the TLS port", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, 400, CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var conn io.ReadWriteCloser
			var err error
			if tc.tls {
				conn, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
			} else {
				conn, err = dialDeadline(addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go func() { _, _ = io.WriteString(conn, tc.raw) }()
			resp, err := http.ReadResponse(bufioReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkEnvelope(t, tc.name, resp.StatusCode, resp.Header, data, tc.wantStatus, tc.wantCode)
			if strings.Contains(strings.ToLower(string(data)), "nginx") || resp.Header.Get("Server") != "nginx" && resp.Header.Get("Server") != "" {
				t.Errorf("%s: body %q or Server %q names the proxy beyond its bare name", tc.name, data, resp.Header.Get("Server"))
			}
		})
	}
}

func dialDeadline(addr string) (io.ReadWriteCloser, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

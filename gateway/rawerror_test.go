package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// TestRawErrorHeadersMatchAPI: answers written outside gin (metrics
// listener, header guard) carry exactly the headers `first` puts on API
// answers, so a header added there must be added to securityHeaders too.
func TestRawErrorHeadersMatchAPI(t *testing.T) {
	env := startServer(t, nil)
	r := env.do("GET", "/healthz", "", nil)
	want := map[string]string{}
	for _, kv := range securityHeaders(false) {
		want[kv[0]] = kv[1]
	}
	for name := range r.header {
		switch name {
		case "Content-Type", "Content-Length", "Date", "X-Request-Id":
			continue
		}
		if got := r.header.Get(name); want[name] != got {
			t.Errorf("API answer has %s: %q; securityHeaders has %q", name, got, want[name])
		}
	}
	for name, v := range want {
		if r.header.Get(name) != v {
			t.Errorf("securityHeaders has %s: %q; the API answer has %q", name, v, r.header.Get(name))
		}
	}
	if len(securityHeaders(true)) != len(securityHeaders(false))+1 {
		t.Error("securityHeaders(true) must add Strict-Transport-Security")
	}

	// The raw answer is a well-formed HTTP/1.1 response with those headers.
	raw := rawErrorResponse("0123456789abcdef0123456789abcdef", false, 413, CodePayloadTooLarge, "request headers too large")
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != 413 || !resp.Close || resp.Header.Get("X-Request-Id") != "0123456789abcdef0123456789abcdef" ||
		body.String() != `{"error":{"code":"payload_too_large","message":"request headers too large","request_id":"0123456789abcdef0123456789abcdef"}}` {
		t.Errorf("raw answer: %d close=%v %v %s", resp.StatusCode, resp.Close, resp.Header, body.String())
	}
	for name, v := range want {
		if resp.Header.Get(name) != v {
			t.Errorf("raw answer %s = %q, want %q", name, resp.Header.Get(name), v)
		}
	}
}

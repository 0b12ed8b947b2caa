package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestMetricsListenerNetworkRules(t *testing.T) {
	cases := []struct {
		name         string
		allow, block []string
		want         int
	}{
		{"loopback allowed", []string{"127.0.0.0/8"}, nil, 200},
		{"no rules on a loopback listener", nil, nil, 200},
		{"outside metrics_allow", []string{"10.0.0.0/8"}, nil, 403},
		{"in metrics_block", []string{"127.0.0.0/8"}, []string{"127.0.0.1"}, 403},
		// IPv4-mapped IPv6 spellings of the peer's network: the peer is
		// compared unmapped, so the rule must be too.
		{"in metrics_block, IPv4-mapped CIDR", []string{"127.0.0.0/8"}, []string{"::ffff:127.0.0.0/104"}, 403},
		{"in metrics_block, IPv4-mapped address", []string{"127.0.0.0/8"}, []string{"::ffff:127.0.0.1"}, 403},
		{"in metrics_allow, IPv4-mapped CIDR", []string{"::ffff:127.0.0.0/104"}, nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := NewMetricsRegistry()
			ml, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			env := startServer(t, func(cfg *Config, d *Deps) {
				d.Registry, d.Metrics, d.MetricsListener = reg, NewMetrics(reg), ml
				cfg.MetricsListen = ml.Addr().String()
				cfg.Network.MetricsAllow, cfg.Network.MetricsBlock = tc.allow, tc.block
			})
			// X-Forwarded-For is never believed on the metrics listener.
			req, _ := http.NewRequest("GET", "http://"+ml.Addr().String()+"/metrics", nil)
			req.Header.Set("X-Forwarded-For", "10.1.2.3")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, body, tc.want)
			}
			id := resp.Header.Get("X-Request-Id")
			if id == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v: want X-Request-Id and the security headers", resp.Header)
			}
			if tc.want != 403 {
				return
			}
			var b errorBody
			if err := json.Unmarshal(body, &b); err != nil || b.Error.Code != CodeIPNotAllowed || b.Error.RequestID != id {
				t.Errorf("body %s: want ip_not_allowed with request_id %s", body, id)
			}
			waitFor(t, "the audit line", func() bool {
				for _, l := range env.auditFor(id) {
					if l["type"] == string(EventRejected) && l["reason"] == CodeIPNotAllowed && l["route"] == "/metrics" {
						return true
					}
				}
				return false
			})
		})
	}
}

// TestMetricsListenNonLoopback: a metrics listener on a non-loopback
// address needs network.metrics_allow; with it, it serves (here on the
// wildcard address, reached over loopback).
func TestMetricsListenNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9091", ":9091", "[::]:9091", "192.0.2.1:9091"} {
		cfg := Default()
		cfg.MetricsListen = addr
		err := cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "metrics_listen: "+addr+" is not loopback") || strings.Contains(err.Error(), "\n") {
			t.Errorf("metrics_listen %s without metrics_allow: got %v, want one metrics_listen error", addr, err)
		}
		cfg.Network.MetricsAllow = []string{"10.0.0.0/8"}
		if err := cfg.Validate(); err != nil {
			t.Errorf("metrics_listen %s with metrics_allow: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:9091", "[::1]:9091", "localhost:9091", ""} {
		cfg := Default()
		cfg.MetricsListen = addr
		if err := cfg.Validate(); err != nil {
			t.Errorf("metrics_listen %q: %v", addr, err)
		}
	}
	cfg := testConfig(t, t.TempDir())
	cfg.MetricsListen = "0.0.0.0:0"
	if _, err := New(context.Background(), cfg, Deps{Runner: nilRunner{}, Audit: discardAudit{}, Logger: discardLogger(),
		LoadPolicy: nil}); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("New with a non-loopback metrics_listen: got %v, want refused", err)
	}

	ml, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ml.Addr().(*net.TCPAddr).Port
	reg := NewMetricsRegistry()
	startServer(t, func(cfg *Config, d *Deps) {
		d.Registry, d.Metrics, d.MetricsListener = reg, NewMetrics(reg), ml
		cfg.MetricsListen = ml.Addr().String()
		cfg.Network.MetricsAllow = []string{"127.0.0.0/8"}
	})
	resp, err := http.Get("http://127.0.0.1:" + itoaPort(port) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("wildcard metrics listener from an allowed network: got %d, want 200", resp.StatusCode)
	}
}

func itoaPort(p int) string { return strconv.Itoa(p) }

// TestParsePrefixesMapped: IPv4-mapped spellings are read as the IPv4
// networks they name; a prefix that mixes both families is refused.
func TestParsePrefixesMapped(t *testing.T) {
	cases := []struct {
		in, want string // want "" means refused
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.9.9.9/104", "10.0.0.0/8"},
		{"::ffff:0:0/96", "0.0.0.0/0"},
		{"::ffff:10.1.2.3/128", "10.1.2.3/32"},
		{"::ffff:10.1.2.3", "10.1.2.3/32"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::/0", "::/0"},
		{"::ffff:0:0/95", ""},
		{"::ffff:0:0/80", ""},
		{"not-a-cidr", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parsePrefixes([]string{tc.in})
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("got %v, want an error", got)
			case tc.want == "":
				return
			case err != nil:
				t.Fatalf("got error %v, want %s", err, tc.want)
			case got[0].String() != tc.want:
				t.Fatalf("got %s, want %s", got[0], tc.want)
			}
		})
	}
}

package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox/executor"
)

// The gateway benchmarks, all over loopback with a Go load client in the
// same run: (a) a bare Gin handler answering 200, (b) 401 on a bad token,
// (c) POST /v1/exec/check with a valid token, (d) POST /v1/exec of
// /usr/bin/true. Each reports req/s, p99 and its throughput as a ratio of
// (a)'s ("of-bare"). Target: (c) at least 0.6 of (a).

var bareRPS float64

// loadClient sends b.N requests from parallel workers and reports req/s,
// p99 and the ratio to the bare handler.
func loadClient(b *testing.B, parallel bool, mk func() *http.Request, wantStatus int) float64 {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var failed error
	one := func(local *[]time.Duration) {
		t0 := time.Now()
		resp, err := client.Do(mk())
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != wantStatus {
				err = errors.New("unexpected status " + resp.Status)
			}
		}
		if err != nil {
			mu.Lock()
			failed = err
			mu.Unlock()
		}
		*local = append(*local, time.Since(t0))
	}
	b.ResetTimer()
	start := time.Now()
	if parallel {
		b.SetParallelism(32) // enough concurrent requests for the audit log's group commit
		b.RunParallel(func(pb *testing.PB) {
			var local []time.Duration
			for pb.Next() {
				one(&local)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	} else {
		for range b.N {
			one(&lat)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(lat)
	rps := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	if bareRPS > 0 {
		b.ReportMetric(rps/bareRPS, "of-bare")
	}
	return rps
}

func BenchmarkGateway(b *testing.B) {
	env := startServer(b, func(cfg *Config, _ *Deps) {
		cfg.Limits.ExecPerIP, cfg.Limits.ExecPerUser = "100000000-S", "100000000-S"
		cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerUser = 256, 256
	})
	env.logs = &syncBuffer{}
	bare := bareServer(b)
	tok := env.token("bench", "viewer")
	check := []byte(`{"command":"echo","args":["hello","world"]}`)
	exec := []byte(`{"command":"true"}`)
	post := func(path, token string, body []byte) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest("POST", env.url+path, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		}
	}
	b.Run("a_bare_gin_200", func(b *testing.B) {
		bareRPS = 0
		rps := loadClient(b, true, func() *http.Request { r, _ := http.NewRequest("GET", bare+"/", nil); return r }, 200)
		bareRPS = rps
	})
	b.Run("b_401_bad_token", func(b *testing.B) {
		loadClient(b, true, post("/v1/exec/check", tok[:len(tok)-4]+"AAAA", check), 401)
	})
	b.Run("c_exec_check", func(b *testing.B) {
		loadClient(b, true, post("/v1/exec/check", tok, check), 200)
	})
	// d0: the same run through the Runner directly, without HTTP: the
	// gateway's overhead is d's time per request minus d0's.
	var directNs float64
	b.Run("d0_runner_direct_true", func(b *testing.B) {
		req := policy.Request{Subject: "bench", Roles: []string{"viewer"}, Command: "true"}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			job := executor.Job{ID: fmt.Sprintf("bench-%d-%d", b.N, i), Request: req, Stdout: io.Discard, Stderr: io.Discard}
			if _, _, err := env.local.Run(context.Background(), job); err != nil {
				b.Fatal(err)
			}
		}
		directNs = float64(time.Since(start).Nanoseconds()) / float64(b.N)
	})
	b.Run("d_exec_true", func(b *testing.B) {
		start := time.Now()
		loadClient(b, false, post("/v1/exec", tok, exec), 200)
		if directNs > 0 {
			perReq := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			b.ReportMetric((perReq-directNs)/1e6, "overhead-ms")
		}
	})
}

// bareServer serves a bare Gin handler answering 200 on loopback.
func bareServer(b *testing.B) string {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	e := gin.New()
	e.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	b.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		<-done
	})
	return "http://" + ln.Addr().String()
}

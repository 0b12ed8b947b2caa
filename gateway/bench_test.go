package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
	"github.com/execgate/execgate/sandbox/executor"
)

// TestBenchGateway is issue 4's gateway benchmark (`make bench`, through
// scripts/bench-gateway.sh). In one run on one machine, against servers on
// loopback in this process, it measures with wrk (a separate process, the
// same connections, threads and duration for every leg):
//
//	(a) a bare Gin handler answering 200 (GET /),
//	(a') a bare Gin handler taking the same POST body as (c) and answering
//	    JSON (the request's shape alone, no gateway),
//	(b) 401 on a bad token (POST /v1/exec/check),
//	(c) POST /v1/exec/check with a valid token, the audit log durable
//	    (every decision line written and fsynced before the answer),
//
// in rounds (a, a', b, c, a, ...) so that a load change on the shared
// machine skews a round rather than a leg; it prints the medians, the
// ratios to (a), and this process's CPU time per request.
// Then (d): POST /v1/exec of /bin/true against the same Runner called
// directly, in interleaved pairs (one direct run, one through the gateway;
// each answer is followed by a wait for that sandbox's teardown, so that
// it never overlaps the next run), and the gateway's own share: client
// latency minus the time from Runner.Run's start to the run's final result
// (Job.Finished; the gateway answers then, before the teardown).
// Target: (c) >= 0.6 x (a); (d) overhead < 0.3 ms.
//
// It is a measurement, not an assertion: it runs only with
// EXECGATE_BENCH=1. EXECGATE_BENCH_WRK ("-t2 -c64 -d5s" by default),
// EXECGATE_BENCH_ROUNDS (3), EXECGATE_BENCH_PAIRS (200; 0 skips (d)) and
// EXECGATE_BENCH_CPUPROFILE (a file: CPU profile of the last round's (c)
// leg, or of leg EXECGATE_BENCH_PROFILE_LEG: 0 (a), 1 (a'), 2 (b), 3 (c))
// tune it.
// The gateway runs with the production policy poll (2 s), limits high
// enough that every leg measures its own answer (no 429s), and the
// sandbox's state root on tmpfs under /run as in production (testSandbox).
func TestBenchGateway(t *testing.T) {
	if os.Getenv("EXECGATE_BENCH") != "1" {
		t.Skip("benchmark: set EXECGATE_BENCH=1 (make bench)")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("benchmark: wrk is not installed (make deps)")
	}
	wrkArgs := strings.Fields(envOr("EXECGATE_BENCH_WRK", "-t2 -c64 -d5s"))
	rounds, _ := strconv.Atoi(envOr("EXECGATE_BENCH_ROUNDS", "3"))
	pairs, _ := strconv.Atoi(envOr("EXECGATE_BENCH_PAIRS", "200"))

	t.Logf("gc: %s", TuneGC()) // as execgate serve runs
	timing := &timingRunner{}
	env := startServer(t, func(cfg *Config, deps *Deps) {
		cfg.Limits.ExecPerIP, cfg.Limits.ExecPerUser = "1000000000-S", "1000000000-S"
		cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerUser = 256, 256
		cfg.Limits.AuthFailuresPerIP = "1000000000-S" // (b) measures 401s, not 429s
		cfg.PolicyPoll = Default().PolicyPoll
		// The access log goes through a real write(2), as to stderr.
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { devnull.Close() })
		deps.Logger = slog.New(slog.NewJSONHandler(devnull, nil))
		deps.Registry = NewMetricsRegistry() // metrics counted, as in execgate serve
		deps.Metrics = NewMetrics(deps.Registry)
		timing.Runner = deps.Runner
		deps.Runner = timing
		// EXECGATE_BENCH_AUDIT_DIR (e.g. /dev/shm: fsync costs nothing
		// there) shows what the disk's flushes cost; never a production setup.
		if d := os.Getenv("EXECGATE_BENCH_AUDIT_DIR"); d != "" {
			aud, err := NewAuditor(AuditConfig{Path: filepath.Join(d, fmt.Sprintf("execgate-bench-audit-%d.log", os.Getpid()))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = aud.Close(); _ = os.Remove(aud.Path()) })
			deps.Audit = aud
			t.Logf("audit log in %s", aud.Path())
		}
	})
	bare := bareServer(t)
	tok := env.token("bench", "viewer")
	dir := t.TempDir()
	script := func(name, method, token, body string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "wrk.method = %q\n", method)
		if body != "" {
			fmt.Fprintf(&b, "wrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body)
		}
		if token != "" {
			fmt.Fprintf(&b, "wrk.headers[\"Authorization\"] = %q\n", "Bearer "+token)
		}
		b.WriteString(wrkDoneLua)
		p := filepath.Join(dir, name+".lua")
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const checkBody = `{"command":"echo","args":["hello","world"]}`
	legs := []wrkLeg{
		{name: "(a) bare Gin handler, 200", url: bare + "/", script: script("a", "GET", "", ""), status: 200},
		{name: "(a') bare Gin, same POST body, JSON answer", url: bare + "/check", script: script("a2", "POST", "", checkBody), status: 200},
		{name: "(b) 401, bad token", url: env.url + "/v1/exec/check", script: script("b", "POST", tok[:len(tok)-4]+"AAAA", checkBody), status: 401},
		{name: "(c) POST /v1/exec/check, valid token", url: env.url + "/v1/exec/check", script: script("c", "POST", tok, checkBody), status: 200},
	}
	// One request of each first: the status is the one the leg measures.
	for _, l := range legs {
		if got := wrkStatus(t, l, tok, checkBody); got != l.status {
			t.Fatalf("%s: status %d, want %d", l.name, got, l.status)
		}
	}
	var prof *os.File
	profLeg, _ := strconv.Atoi(envOr("EXECGATE_BENCH_PROFILE_LEG", "3"))
	if p := os.Getenv("EXECGATE_BENCH_CPUPROFILE"); p != "" {
		if prof, err = os.Create(p); err != nil {
			t.Fatal(err)
		}
		defer prof.Close()
	}
	results := make([][]wrkResult, len(legs))
	for r := range rounds {
		for i, l := range legs {
			if prof != nil && i == profLeg && r == rounds-1 {
				_ = pprof.StartCPUProfile(prof)
			}
			res := runWrk(t, wrk, wrkArgs, l)
			if prof != nil && i == profLeg && r == rounds-1 {
				pprof.StopCPUProfile()
			}
			results[i] = append(results[i], res)
		}
	}
	st := env.audit.Stats()
	writeWrkTable(os.Stdout, wrkArgs, legs, results, st)
	if pairs > 0 {
		benchExec(t, env, timing, tok, pairs)
	}
}

const wrkDoneLua = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
`

type wrkLeg struct {
	name, url, script string
	status            int
}

type wrkResult struct {
	rps, p50ms, p99ms float64
	cpuUSPerReq       float64 // this process's CPU (the servers') per request
	wrkUSPerReq       float64 // wrk's CPU per request
	nonExpected       int64   // socket errors, and non-2xx on a leg that expects 2xx
}

// wrkStatus sends the leg's request once with net/http.
func wrkStatus(t *testing.T, l wrkLeg, tok, body string) int {
	t.Helper()
	data, err := os.ReadFile(l.script)
	if err != nil {
		t.Fatal(err)
	}
	method, rd := "GET", io.Reader(nil)
	if strings.Contains(string(data), `"POST"`) {
		method, rd = "POST", strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, l.url, rd)
	req.Header.Set("Content-Type", "application/json")
	if m := strings.Index(string(data), `"Bearer `); m >= 0 {
		v := string(data[m+1:])
		req.Header.Set("Authorization", v[:strings.IndexByte(v, '"')])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// runWrk runs wrk once and parses the line its done() writes.
func runWrk(t *testing.T, wrk string, args []string, l wrkLeg) wrkResult {
	t.Helper()
	cpu0 := processCPU(t)
	cmd := exec.Command(wrk, append(append(slices.Clone(args), "-s", l.script), l.url)...)
	out, err := cmd.CombinedOutput()
	cpu1 := processCPU(t)
	if err != nil {
		t.Fatalf("%s: wrk: %v\n%s", l.name, err, out)
	}
	i := bytes.LastIndex(out, []byte("\nWRK "))
	if i < 0 {
		t.Fatalf("%s: no result line in wrk's output:\n%s", l.name, out)
	}
	var n, durUS, p50, p99, sockErr, statusErr int64
	if _, err := fmt.Sscanf(string(out[i+1:]), "WRK %d %d %d %d %d %d", &n, &durUS, &p50, &p99, &sockErr, &statusErr); err != nil || n == 0 {
		t.Fatalf("%s: wrk result %q: %v", l.name, out[i+1:], err)
	}
	bad := sockErr
	if l.status < 300 {
		bad += statusErr
	}
	return wrkResult{rps: float64(n) / (float64(durUS) / 1e6), p50ms: float64(p50) / 1000, p99ms: float64(p99) / 1000,
		cpuUSPerReq: float64((cpu1 - cpu0).Microseconds()) / float64(n), nonExpected: bad,
		wrkUSPerReq: float64((cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Microseconds()) / float64(n)}
}

// processCPU is this process's user+system CPU time so far (all threads).
func processCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func writeWrkTable(w io.Writer, args []string, legs []wrkLeg, res [][]wrkResult, st AuditStats) {
	fmt.Fprintf(w, "\nGateway on loopback: wrk %s, %d rounds of the legs in turn; medians of the rounds.\n", strings.Join(args, " "), len(res[0]))
	fmt.Fprintf(w, "server CPU = this process's CPU time (the servers, not wrk) per request; wrk CPU = wrk's.\n\n")
	fmt.Fprintln(w, "| leg | req/s | p50 ms | p99 ms | server CPU µs/req | wrk CPU µs/req | of (a) | rounds req/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|")
	col := func(rs []wrkResult, f func(wrkResult) float64) []float64 {
		var out []float64
		for _, r := range rs {
			out = append(out, f(r))
		}
		return out
	}
	for i, l := range legs {
		rs := res[i]
		var ratios []float64
		for k := range rs {
			ratios = append(ratios, rs[k].rps/res[0][k].rps)
		}
		var each []string
		for _, r := range rs {
			each = append(each, fmt.Sprintf("%.0f", r.rps))
		}
		var bad int64
		for _, r := range rs {
			bad += r.nonExpected
		}
		note := ""
		if bad > 0 {
			note = fmt.Sprintf(" (%d errors!)", bad)
		}
		fmt.Fprintf(w, "| %s%s | %.0f | %.2f | %.2f | %.1f | %.1f | %.2f | %s |\n", l.name, note,
			median(col(rs, func(r wrkResult) float64 { return r.rps })),
			median(col(rs, func(r wrkResult) float64 { return r.p50ms })),
			median(col(rs, func(r wrkResult) float64 { return r.p99ms })),
			median(col(rs, func(r wrkResult) float64 { return r.cpuUSPerReq })),
			median(col(rs, func(r wrkResult) float64 { return r.wrkUSPerReq })),
			median(ratios), strings.Join(each, " "))
	}
	if st.Syncs > 0 {
		fmt.Fprintf(w, "\naudit log: %d lines in %d fsyncs (%.1f lines per fsync)\n", st.Lines, st.Syncs, float64(st.Lines)/float64(st.Syncs))
	}
}

// timingRunner measures, for each Run of the wrapped Runner, the time
// from its start to its final result (Job.Finished): what the gateway
// waits for before it answers.
type timingRunner struct {
	executor.Runner
	last     atomic.Int64 // ns of the last Run, until Finished
	start    atomic.Int64 // unix ns of the last Run's start
	finished atomic.Int64 // unix ns of the last Run's Finished
}

func (r *timingRunner) Run(ctx context.Context, job executor.Job) (*policy.Decision, sandbox.Result, error) {
	t0 := time.Now()
	r.start.Store(t0.UnixNano())
	fin := job.Finished
	job.Finished = func(d *policy.Decision, res sandbox.Result) {
		r.last.Store(int64(time.Since(t0)))
		r.finished.Store(time.Now().UnixNano())
		if fin != nil {
			fin(d, res)
		}
	}
	return r.Runner.Run(ctx, job)
}

// benchExec is (d): interleaved pairs of one direct Runner.Run of
// /bin/true and one POST /v1/exec of it, one at a time.
func benchExec(t *testing.T, env *testEnv, timing *timingRunner, tok string, pairs int) {
	req := policy.Request{Subject: "bench", Roles: []string{"viewer"}, Command: "true"}
	client, err := newLeanClient(env.url, "/v1/exec", tok, `{"command":"true"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var before, after []float64 // ms: request sent to Run's start; Finished to the answer read
	post := func() (time.Duration, error) {
		t0 := time.Now()
		status, err := client.Do()
		if err != nil {
			return 0, err
		}
		d := time.Since(t0)
		t1 := time.Now().UnixNano()
		before = append(before, float64(timing.start.Load()-t0.UnixNano())/1e6)
		after = append(after, float64(t1-timing.finished.Load())/1e6)
		if status != 200 {
			return 0, fmt.Errorf("status %d", status)
		}
		// The answer precedes the sandbox's teardown: let it end before
		// the next run, as the direct leg's Run does.
		if err := env.srv.sessions.wait(context.Background()); err != nil {
			return 0, err
		}
		return d, nil
	}
	direct := func(i int) (time.Duration, error) {
		job := executor.Job{ID: fmt.Sprintf("bench-direct-%d", i), Request: req, Stdout: io.Discard, Stderr: io.Discard, Stdin: strings.NewReader("")}
		t0 := time.Now()
		_, _, err := timing.Runner.Run(context.Background(), job)
		return time.Since(t0), err
	}
	for i := range 5 { // warm-up
		if _, err := direct(-1 - i); err != nil {
			t.Fatal(err)
		}
		if _, err := post(); err != nil {
			t.Fatal(err)
		}
	}
	var dDirect, dHTTP, diff, own []float64
	for i := range pairs {
		var a, b time.Duration
		var errA, errB error
		if i%2 == 0 { // alternate the order within a pair
			a, errA = direct(i)
			b, errB = post()
		} else {
			b, errB = post()
			a, errA = direct(i)
		}
		if errA != nil || errB != nil {
			t.Fatalf("pair %d: direct %v, gateway %v", i, errA, errB)
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		dDirect, dHTTP = append(dDirect, ms(a)), append(dHTTP, ms(b))
		diff = append(diff, ms(b)-ms(a))
		own = append(own, ms(b)-ms(time.Duration(timing.last.Load())))
	}
	pct := func(xs []float64, p int) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[min(len(s)-1, len(s)*p/100)]
	}
	w := os.Stdout
	fmt.Fprintf(w, "\n(d) POST /v1/exec of /bin/true vs the same Runner.Run called directly: %d interleaved pairs, one at a time.\n\n", pairs)
	fmt.Fprintln(w, "| leg | p50 ms | p99 ms | runs/s (1 at a time) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	fmt.Fprintf(w, "| Runner.Run directly (the sandbox) | %.2f | %.2f | %.1f |\n", pct(dDirect, 50), pct(dDirect, 99), 1000/mean(dDirect))
	fmt.Fprintf(w, "| (d) POST /v1/exec through the gateway | %.2f | %.2f | %.1f |\n", pct(dHTTP, 50), pct(dHTTP, 99), 1000/mean(dHTTP))
	fmt.Fprintf(w, "\n(d) overhead: median of per-pair differences %.3f ms (p25 %.3f, p75 %.3f);\n", pct(diff, 50), pct(diff, 25), pct(diff, 75))
	fmt.Fprintf(w, "gateway's own share (client latency minus Runner.Run's time to its final result, same request): p50 %.3f ms, p99 %.3f ms\n", pct(own, 50), pct(own, 99))
	fmt.Fprintf(w, "of it: request sent to Runner.Run's start p50 %.3f ms; the run's final result to the answer read p50 %.3f ms\n", pct(before, 50), pct(after, 50))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// bareServer serves a bare Gin handler answering 200 on loopback.
func bareServer(t testing.TB) string {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	e := gin.New()
	e.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	e.POST("/check", func(c *gin.Context) {
		var req execRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			c.String(http.StatusBadRequest, err.Error())
			return
		}
		c.JSON(http.StatusOK, checkResponse{RequestID: "bare", Allowed: true, Reason: "allowed", Command: req.Command, Argv: req.Args})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		<-done
	})
	return "http://" + ln.Addr().String()
}

// BenchmarkCheckHandler is the CPU of POST /v1/exec/check inside the
// gateway (the collector tuned as execgate serve tunes it, TuneGC), without
// the network: the handler chain served in-process from
// 64 goroutines per CPU (the audit log's group commit needs requests in
// flight), durable audit log included. cpu-µs/op is this process's CPU time
// per request, which load on a shared machine moves far less than ns/op.
func BenchmarkCheckHandler(b *testing.B) {
	b.Logf("gc: %s", TuneGC()) // as execgate serve runs
	env := startServer(b, func(cfg *Config, deps *Deps) {
		cfg.Limits.ExecPerIP, cfg.Limits.ExecPerUser = "1000000000-S", "1000000000-S"
		deps.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		deps.Registry = NewMetricsRegistry()
		deps.Metrics = NewMetrics(deps.Registry)
	})
	h := env.srv.Handler()
	auth := "Bearer " + env.token("bench", "viewer")
	body := []byte(`{"command":"echo","args":["hello","world"]}`)
	b.SetParallelism(64)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, _ := http.NewRequest("POST", "/v1/exec/check", bytes.NewReader(body))
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", auth)
			w := &nullWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.code != 200 {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

type nullWriter struct {
	h    http.Header
	code int
}

func (w *nullWriter) Header() http.Header { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return len(p), nil
}
func (w *nullWriter) WriteHeader(code int) { w.code = code }

// leanClient sends one prepared POST again and again on one keep-alive
// connection from the calling goroutine, as wrk does: net/http's Client
// would add its transport goroutines' hand-overs (two per request, each a
// CPU wake-up on an idle machine) to what (d) measures.
type leanClient struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
}

func newLeanClient(baseURL, path, token, body string) (*leanClient, error) {
	host := strings.TrimPrefix(baseURL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, host, token, len(body), body)
	return &leanClient{conn: conn, br: bufio.NewReader(conn), req: []byte(req)}, nil
}

// Do sends the request and reads the whole answer; it returns the status.
func (c *leanClient) Do() (int, error) {
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

func (c *leanClient) Close() error { return c.conn.Close() }

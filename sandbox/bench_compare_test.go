package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// TestBenchCompare measures, in one run on one machine, the cost of one
// command (/bin/true) started four ways: plain os/exec, bubblewrap with
// isolation equivalent to execgate's (started as an unprivileged user, with
// seccomp and fresh memory/pids cgroups), libcontainer configured the way
// the probe ran it (bench_probe_test.go: a fresh container and rootfs per
// run with the same isolation and none of execgate's start-cost cuts, the
// issue's "floor to beat") and execgate's fresh container, teardown
// included. It prints p50/p99 latency and throughput at 1, 2, 4 and 8
// concurrent runs as a markdown table on stdout, with ratios to the plain
// exec and to the probe's way. It is a measurement, not an assertion: it
// only runs with EXECGATE_BENCH=1 (scripts/bench-sandbox.sh, `make bench`).
// EXECGATE_BENCH_CELL sets the time per table cell (default 1.2s: 4 legs x
// 4 levels stay near 25 s with warm-up).
func TestBenchCompare(t *testing.T) {
	if os.Getenv("EXECGATE_BENCH") != "1" {
		t.Skip("benchmark: set EXECGATE_BENCH=1 (make bench)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("benchmark: needs root (the sandbox and the cgroups of the bubblewrap leg)")
	}
	cell := 1200 * time.Millisecond
	if v := os.Getenv("EXECGATE_BENCH_CELL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("EXECGATE_BENCH_CELL=%q: %v", v, err)
		}
		cell = d
	}
	ctx := t.Context()

	legs := []benchLeg{plainExecLeg()}
	bw, err := newBwrapLeg(t)
	if err != nil {
		t.Fatalf("bubblewrap leg: %v", err)
	}
	legs = append(legs, bw)
	// The probe's way before execgate: at each level it runs after the
	// os/exec and bubblewrap cells, and not before the execgate Manager's
	// cgroup warm-up (warmLinger after its latest start) has stopped
	// (quietAfter below), so it never profits from that cut.
	pw, err := newProbeLeg(t, benchProfile())
	if err != nil {
		t.Fatalf("probe leg: %v", err)
	}
	legs = append(legs, pw.leg())
	eg, err := newExecgateLeg(t)
	if err != nil {
		t.Fatalf("execgate leg: %v", err)
	}
	legs = append(legs, eg)

	levels := []int{1, 2, 4, 8}
	var execgateEnd time.Time // when the execgate leg last ran
	quietAfter := func(leg benchLeg) {
		if leg.name == probeLegName {
			time.Sleep(time.Until(execgateEnd.Add(warmLinger + 200*time.Millisecond)))
		}
	}
	for _, leg := range legs {
		// Warm up: page cache, first cgroup writes, lazy setup.
		quietAfter(leg)
		if _, err := leg.measure(ctx, 1, 200*time.Millisecond); err != nil {
			t.Fatalf("%s: warm-up: %v", leg.name, err)
		}
		if leg.name == execgateLegName {
			execgateEnd = time.Now()
		}
	}
	// Level by level, the legs in turn: a load change on the (shared)
	// machine then skews one level rather than one leg.
	results := make([][]benchStats, len(legs))
	for _, c := range levels {
		for i, leg := range legs {
			quietAfter(leg)
			st, err := leg.measure(ctx, c, cell)
			if leg.name == execgateLegName {
				execgateEnd = time.Now()
			}
			if err != nil {
				t.Fatalf("%s at %d concurrent: %v", leg.name, c, err)
			}
			results[i] = append(results[i], st)
		}
	}
	writeBenchTable(os.Stdout, legs, levels, results)
}

// benchLeg is one way of starting /bin/true; run returns after the command
// has exited and everything it needed is torn down.
type benchLeg struct {
	name string
	what string
	run  func(ctx context.Context) error
	// enter, when set, is called before each of the leg's measurements
	// and returns what undoes it afterwards (process-wide settings that
	// only this leg wants).
	enter func() (restore func())
}

// measure is measure(ctx, l.run, conc, d) inside the leg's enter.
func (l benchLeg) measure(ctx context.Context, conc int, d time.Duration) (benchStats, error) {
	if l.enter != nil {
		defer l.enter()()
	}
	return measure(ctx, l.run, conc, d)
}

// benchProfile is the profile of the sandboxed legs: the attack suite's
// default-seccomp profile with 256 MiB of memory (64 pids, network none).
func benchProfile() policy.Profile {
	prof := attackProfile()
	prof.Name = "bench"
	prof.MemoryBytes = 256 << 20
	return prof
}

func plainExecLeg() benchLeg {
	return benchLeg{
		name: "os/exec",
		what: "exec.Command(\"/bin/true\").Run()",
		run: func(ctx context.Context) error {
			return exec.CommandContext(ctx, "/bin/true").Run()
		},
	}
}

// benchStats is one cell of the table.
type benchStats struct {
	runs     int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (s benchStats) perSecond() float64 { return float64(s.runs) / s.elapsed.Seconds() }

// measure runs fn from conc goroutines for about d and collects every
// latency. The first error stops the measurement.
func measure(ctx context.Context, fn func(context.Context) error, conc int, d time.Duration) (benchStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		lats  []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := fn(ctx)
				lat := time.Since(t0)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				lats = append(lats, lat)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return benchStats{}, first
	}
	if len(lats) == 0 {
		return benchStats{}, fmt.Errorf("no run finished in %v", d)
	}
	slices.Sort(lats)
	return benchStats{
		runs:    len(lats),
		elapsed: elapsed,
		p50:     percentile(lats, 0.50),
		p99:     percentile(lats, 0.99),
	}, nil
}

// percentile of sorted values, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

// writeBenchTable prints the markdown table; legs[0] is the plain exec that
// every "vs exec" ratio is taken against, and the leg named probeLegName
// (if any) the one of the "vs probe" ratios; a line after the table gives
// execgate's ratios to it.
func writeBenchTable(w io.Writer, legs []benchLeg, levels []int, results [][]benchStats) {
	floor := slices.IndexFunc(legs, func(l benchLeg) bool { return l.name == probeLegName })
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\n### Sandbox start cost: /bin/true, %s, %d CPUs, load %s, %s\n\n", host, runtime.NumCPU(), loadAvg(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprint(w, "| leg | concurrent | p50 ms | p99 ms | runs/s | p50 vs exec | runs/s vs exec |")
	if floor >= 0 {
		fmt.Fprint(w, " p50 vs probe | runs/s vs probe |")
	}
	fmt.Fprint(w, "\n|---|---:|---:|---:|---:|---:|---:|")
	if floor >= 0 {
		fmt.Fprint(w, "---:|---:|")
	}
	fmt.Fprintln(w)
	for i, leg := range legs {
		for j, c := range levels {
			st, base := results[i][j], results[0][j]
			fmt.Fprintf(w, "| %s | %d | %s | %s | %.0f | %.1fx | %.2fx |",
				leg.name, c, ms(st.p50), ms(st.p99), st.perSecond(),
				float64(st.p50)/float64(base.p50), st.perSecond()/base.perSecond())
			if floor >= 0 {
				fl := results[floor][j]
				fmt.Fprintf(w, " %.2fx | %.2fx |", float64(st.p50)/float64(fl.p50), st.perSecond()/fl.perSecond())
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	if eg := slices.IndexFunc(legs, func(l benchLeg) bool { return l.name == execgateLegName }); floor >= 0 && eg >= 0 {
		var p50s, rates []string
		for j, c := range levels {
			e, f := results[eg][j], results[floor][j]
			p50s = append(p50s, fmt.Sprintf("%.2fx (%d)", float64(e.p50)/float64(f.p50), c))
			rates = append(rates, fmt.Sprintf("%.2fx (%d)", e.perSecond()/f.perSecond(), c))
		}
		fmt.Fprintf(w, "execgate vs %s (the floor to beat, same run), by concurrent runs: p50 %s; runs/s %s\n\n",
			probeLegName, strings.Join(p50s, ", "), strings.Join(rates, ", "))
	}
	for _, leg := range legs {
		fmt.Fprintf(w, "- **%s**: %s\n", leg.name, leg.what)
	}
}

// loadAvg is the 1-minute load average: on a shared machine it says how
// much the figures are worth.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

package sandbox

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuNow is the CPU time used so far by this process and its waited-for
// children (the containers' init processes).
func cpuNow() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// BenchmarkRunTrue runs /bin/true in a fresh container per iteration, with
// the full sandbox (namespaces, mounts, seccomp, cgroups) and its teardown
// counted. scripts/bench-sandbox.sh compares it with plain exec and
// bubblewrap.
func BenchmarkRunTrue(b *testing.B) {
	m := newTestManager(b)
	spec := Spec{ID: "bench", Argv: []string{"/bin/true"}, Profile: testProfile()}
	ctx := context.Background()
	cpu0, n := cpuNow(), 0
	for b.Loop() {
		res, err := m.Run(ctx, spec)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("run: %v, exit %d", err, res.ExitCode)
		}
		n++
	}
	// CPU per run is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpuNow()-cpu0)/float64(n)/1e6, "cpu-ms/op")
}

// BenchmarkRunTrueParallel is BenchmarkRunTrue from concurrent goroutines
// (go test -cpu 1,2,4,8 sets the concurrency).
func BenchmarkRunTrueParallel(b *testing.B) {
	m := newTestManager(b)
	spec := Spec{ID: "benchp", Argv: []string{"/bin/true"}, Profile: testProfile()}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := m.Run(context.Background(), spec)
			if err != nil || res.ExitCode != 0 {
				b.Errorf("run: %v, exit %d", err, res.ExitCode)
				return
			}
		}
	})
}

// BenchmarkRunTrueAfterIdle is BenchmarkRunTrue with 50 ms of idle time
// (not counted) before each run: the idle-server case, where cgroup v1's
// first task migration after a pause waits for an RCU grace period unless
// the Manager's cgroup warmer has the semaphore ready (trap 9, cgwarm.go).
func BenchmarkRunTrueAfterIdle(b *testing.B) {
	m := newTestManager(b)
	spec := Spec{ID: "bench-idle", Argv: []string{"/bin/true"}, Profile: testProfile()}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		time.Sleep(50 * time.Millisecond)
		b.StartTimer()
		res, err := m.Run(ctx, spec)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("run: %v, exit %d", err, res.ExitCode)
		}
	}
}

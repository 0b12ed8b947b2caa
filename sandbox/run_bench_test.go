package sandbox

import (
	"context"
	"testing"
)

// BenchmarkRunTrue runs /bin/true in a fresh container per iteration, with
// the full sandbox (namespaces, mounts, seccomp, cgroups) and its teardown
// counted. scripts/bench-sandbox.sh compares it with plain exec and
// bubblewrap.
func BenchmarkRunTrue(b *testing.B) {
	m := newTestManager(b)
	spec := Spec{ID: "bench", Argv: []string{"/bin/true"}, Profile: testProfile()}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res, err := m.Run(ctx, spec)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("run: %v, exit %d", err, res.ExitCode)
		}
	}
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

package gateway

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// benchEvent is a typical decision line (about 400 bytes).
var benchEvent = Event{
	Type: EventDecision, RequestID: "0123456789abcdef", DecisionID: "fedcba9876543210",
	Subject: "alice", Roles: []string{"operator"}, RemoteIP: "192.0.2.7", UserAgent: "bench/1.0",
	PolicyHash: "sha256:0123456789abcdef", Command: "git", Args: []string{"log", "-n", "5"},
	Allowed: AuditBool(true), Reason: "allowed",
}

// groupCommitNsPerOp is the last group_commit result, for the ratio the
// baseline reports.
var groupCommitNsPerOp float64

// benchDir is on the real disk (TMPDIR), not tmpfs, so fsync costs what it
// costs in production.
func benchDir(b *testing.B) string {
	b.Helper()
	return b.TempDir()
}

// BenchmarkAuditRecordParallel measures durable audit lines per second with
// many concurrent requests: the group-commit Auditor against a baseline that
// writes and fsyncs each line under a mutex, in the same run. Compare the
// ns/op of the two sub-benchmarks (and lines/fsync of the first); the
// baseline reports the ratio as x_slower_than_group_commit.
//
//	go test -run '^$' -bench AuditRecordParallel -benchtime 2s ./gateway/
func BenchmarkAuditRecordParallel(b *testing.B) {
	b.Run("group_commit", func(b *testing.B) {
		a, err := NewAuditor(AuditConfig{Path: filepath.Join(benchDir(b), "audit.log")})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = a.Close() }()
		ctx := context.Background()
		b.SetParallelism(32) // 32 goroutines per CPU: many requests in flight
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := a.Record(ctx, benchEvent); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		groupCommitNsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		st := a.Stats()
		if st.Syncs > 0 {
			b.ReportMetric(float64(st.Lines)/float64(st.Syncs), "lines/fsync")
		}
	})
	b.Run("fsync_per_line", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(benchDir(b), "audit.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		red := DefaultRedactor()
		probe := &Auditor{red: red, path: f.Name()}
		var mu sync.Mutex
		b.SetParallelism(32)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				line, err := probe.encode(benchEvent)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				_, err = f.Write(line)
				if err == nil {
					err = f.Sync()
				}
				mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(1, "lines/fsync")
		if groupCommitNsPerOp > 0 {
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp/groupCommitNsPerOp, "x_slower_than_group_commit")
		}
	})
}

// BenchmarkAuditEncode measures redaction plus JSON encoding of one line.
func BenchmarkAuditEncode(b *testing.B) {
	a := &Auditor{red: DefaultRedactor()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.encode(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

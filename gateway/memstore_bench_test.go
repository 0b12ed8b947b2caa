package gateway

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
)

// benchKeys are client keys as the limiters build them.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "exec:ip:2001:db8:" + strconv.FormatInt(int64(i>>16), 16) + ":" + strconv.FormatInt(int64(i&0xffff), 16) + "::/64"
	}
	return keys
}

// BenchmarkMemStore is the per-call cost of the store: a known client
// (hit), a stream of new clients whose windows expire as fast as they come
// (churn: 1 ms of clock per call, 1 s windows, about 1000 live keys), and
// a new client at the cap (full: refused).
func BenchmarkMemStore(b *testing.B) {
	ctx := context.Background()
	rate := limiter.Rate{Period: time.Second, Limit: 100}
	b.Run("hit", func(b *testing.B) {
		m := newMemStore(DefaultMemoryStoreMaxKeys)
		keys := benchKeys(1024)
		for _, k := range keys {
			_, _ = m.Get(ctx, k, limiter.Rate{Period: time.Hour, Limit: 100})
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := m.Get(ctx, keys[i&1023], limiter.Rate{Period: time.Hour, Limit: 100}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("churn", func(b *testing.B) {
		m := newMemStore(DefaultMemoryStoreMaxKeys)
		clk := time.Unix(1_800_000_000, 0)
		m.now = func() time.Time { return clk }
		keys := benchKeys(1 << 16)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			clk = clk.Add(time.Millisecond)
			if _, err := m.Get(ctx, keys[i&(1<<16-1)]+strconv.Itoa(i>>16), rate); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		m := newMemStore(DefaultMemoryStoreMaxKeys)
		keys := benchKeys(m.classes[classWindow].max + 1024)
		for _, k := range keys[:m.classes[classWindow].max] {
			_, _ = m.Get(ctx, k, limiter.Rate{Period: time.Hour, Limit: 100})
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := m.Get(ctx, keys[m.classes[classWindow].max+i&1023], rate); err == nil {
				b.Fatal("a new key past the cap was accepted")
			}
		}
	})
}

// BenchmarkMemStoreExpiryBurst is the worst single call: 100,000 windows
// opened in the same second have all expired, and one call meets them (the
// old store swept the whole map in it). Its time is the burst-ns metric
// (mean over iterations); ns/op is mostly the untimed-in-spirit fill, kept
// in the timer so that -benchtime stays bounded.
func BenchmarkMemStoreExpiryBurst(b *testing.B) {
	ctx := context.Background()
	rate := limiter.Rate{Period: time.Second, Limit: 100}
	keys := benchKeys(100_000)
	var total time.Duration
	n := 0
	for b.Loop() {
		m := newMemStore(DefaultMemoryStoreMaxKeys)
		clk := time.Unix(1_800_000_000, 0)
		m.now = func() time.Time { return clk }
		for _, k := range keys {
			_, _ = m.Get(ctx, k, rate)
		}
		clk = clk.Add(time.Minute)
		start := time.Now()
		if _, err := m.Get(ctx, "exec:ip:192.0.2.1", rate); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		n++
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "burst-ns")
}

// BenchmarkMemStoreBytesPerKey reports the heap bytes one rate window costs
// (the figure behind limits.memory_store_max_keys' documented memory).
func BenchmarkMemStoreBytesPerKey(b *testing.B) {
	const n = 100_000
	keys := benchKeys(n)
	ctx := context.Background()
	rate := limiter.Rate{Period: time.Hour, Limit: 100}
	var perKey float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := newMemStore(DefaultMemoryStoreMaxKeys)
		for _, k := range keys {
			_, _ = m.Get(ctx, k, rate)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(m)
	}
	b.ReportMetric(perKey, "B/key")
}

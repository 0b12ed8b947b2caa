package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
)

// fakeClock is a settable clock for memStore.now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestStore(maxKeys int) (*memStore, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	m := newMemStore(maxKeys)
	m.now = clk.now
	return m, clk
}

var perMinute = limiter.Rate{Period: time.Minute, Limit: 3}

// fill puts n distinct rate windows into m and returns their keys.
func fill(t *testing.T, m *memStore, n int) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("exec:ip:2001:db8:%x:%x::/64", i>>16, i&0xffff)
		if _, err := m.Get(context.Background(), keys[i], perMinute); err != nil {
			t.Fatalf("window %d of %d: %v", i, n, err)
		}
	}
	return keys
}

func TestMemStoreAtCap(t *testing.T) {
	ctx := context.Background()
	const maxKeys = 1024 // windows 896, lockout state 128 (120 for counters)
	cases := []struct {
		name string
		run  func(t *testing.T, m *memStore, clk *fakeClock, keys []string)
	}{
		{"new window refused with retry hint", func(t *testing.T, m *memStore, clk *fakeClock, _ []string) {
			clk.add(10 * time.Second)
			_, err := m.Get(ctx, "exec:ip:203.0.113.9", perMinute)
			var sf *storeFullError
			if !errors.As(err, &sf) || !errors.Is(err, ErrStoreFull) || sf.Class != "window" {
				t.Fatalf("got %v, want a window storeFullError", err)
			}
			if sf.RetryAfter != 50*time.Second {
				t.Errorf("RetryAfter: got %s, want 50s (when the oldest window ends)", sf.RetryAfter)
			}
		}},
		{"known windows keep counting", func(t *testing.T, m *memStore, _ *fakeClock, keys []string) {
			for i := range 5 {
				lc, err := m.Get(ctx, keys[7], perMinute)
				if err != nil {
					t.Fatal(err)
				}
				if want := i >= 2; lc.Reached != want { // the fill counted 1; limit 3
					t.Errorf("call %d: reached %v, want %v", i, lc.Reached, want)
				}
			}
		}},
		{"room after windows expire", func(t *testing.T, m *memStore, clk *fakeClock, _ []string) {
			clk.add(time.Minute)
			if _, err := m.Get(ctx, "exec:ip:203.0.113.9", perMinute); err != nil {
				t.Fatalf("after expiry: %v", err)
			}
			if st := m.stats(); st.Keys[classWindow] > st.Max[classWindow] {
				t.Errorf("keys %d over max %d", st.Keys[classWindow], st.Max[classWindow])
			}
		}},
		{"windows do not take lockout room", func(t *testing.T, m *memStore, _ *fakeClock, _ []string) {
			if n, err := m.Incr(ctx, "execgate:fail:pair:x", 15*time.Minute); err != nil || n != 1 {
				t.Fatalf("failure counter with windows full: %d, %v", n, err)
			}
			if err := m.Lock(ctx, "execgate:lock:pair:x", "execgate:fail:pair:x", 15*time.Minute); err != nil {
				t.Fatal(err)
			}
		}},
		{"lockout budget: counters refused, locks recorded", func(t *testing.T, m *memStore, clk *fakeClock, _ []string) {
			st := m.stats()
			soft := st.Max[classLock] - st.Max[classLock]/16
			for i := range soft {
				if _, err := m.Incr(ctx, fmt.Sprintf("execgate:fail:pair:%d", i), 15*time.Minute); err != nil {
					t.Fatalf("counter %d: %v", i, err)
				}
			}
			if _, err := m.Incr(ctx, "execgate:fail:pair:new", 15*time.Minute); !errors.Is(err, ErrStoreFull) {
				t.Fatalf("counter past the budget: got %v, want ErrStoreFull", err)
			}
			if err := m.Reserve(ctx, []string{"execgate:fail:pair:new", "execgate:fail:ip:new"}, 15*time.Minute); !errors.Is(err, ErrStoreFull) {
				t.Fatalf("reserve past the budget: got %v, want ErrStoreFull", err)
			}
			if err := m.Reserve(ctx, []string{"execgate:fail:pair:3"}, 15*time.Minute); err != nil {
				t.Fatalf("reserve of an existing counter: %v", err)
			}
			// Every counter turns into a lockout in its own room.
			for i := range soft {
				if err := m.Lock(ctx, fmt.Sprintf("execgate:lock:pair:%d", i), fmt.Sprintf("execgate:fail:pair:%d", i), 15*time.Minute); err != nil {
					t.Fatalf("lock %d: %v", i, err)
				}
			}
			// A lockout whose counter is gone uses the room kept for lockouts.
			if err := m.Lock(ctx, "execgate:lock:ip:orphan", "execgate:fail:ip:gone", 15*time.Minute); err != nil {
				t.Fatalf("lock without counter: %v", err)
			}
			// Floods of windows and time change nothing about lockouts.
			for i := range 100 {
				_, _ = m.Get(ctx, fmt.Sprintf("flood:%d", i), perMinute)
			}
			clk.add(14 * time.Minute)
			for i := range soft {
				if d, _ := m.TTL(ctx, fmt.Sprintf("execgate:lock:pair:%d", i)); d != time.Minute {
					t.Fatalf("lockout %d: TTL %s, want 1m", i, d)
				}
			}
			if st := m.stats(); st.Keys[classLock] > st.Max[classLock] {
				t.Errorf("lockout keys %d over max %d", st.Keys[classLock], st.Max[classLock])
			}
		}},
		{"reserved counter starts its window at the first failure", func(t *testing.T, m *memStore, clk *fakeClock, _ []string) {
			if err := m.Reserve(ctx, []string{"execgate:fail:ip:r"}, 15*time.Minute); err != nil {
				t.Fatal(err)
			}
			clk.add(10 * time.Minute)
			if n, err := m.Incr(ctx, "execgate:fail:ip:r", 15*time.Minute); err != nil || n != 1 {
				t.Fatalf("first failure: %d, %v", n, err)
			}
			clk.add(10 * time.Minute) // 20 min after the reservation, 10 after the failure
			if n, _ := m.Incr(ctx, "execgate:fail:ip:r", 15*time.Minute); n != 2 {
				t.Errorf("second failure within the window: count %d, want 2", n)
			}
		}},
	}
	cases = append(cases, struct {
		name string
		run  func(t *testing.T, m *memStore, clk *fakeClock, keys []string)
	}{"expired entries past one sweep batch make room", func(t *testing.T, m *memStore, clk *fakeClock, _ []string) {
		st := m.stats()
		soft := st.Max[classLock] - st.Max[classLock]/16
		for i := range soft {
			if _, err := m.Incr(ctx, fmt.Sprintf("execgate:fail:ip:%d", i), time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for i := range st.Max[classLock] - soft { // the lockouts' reserve, full
			if err := m.Lock(ctx, fmt.Sprintf("execgate:lock:ip:%d", i), "none", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		clk.add(2 * time.Second) // every counter expired; far more than one batch
		if err := m.Reserve(ctx, []string{"execgate:fail:pair:a", "execgate:fail:ip:a"}, time.Minute); err != nil {
			t.Fatalf("reserve with %d expired counters: %v", soft, err)
		}
	}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, clk := newTestStore(maxKeys)
			keys := fill(t, m, m.stats().Max[classWindow])
			tc.run(t, m, clk, keys)
			checkStore(t, m)
		})
	}
}

// checkStore checks the structural invariants: every class within its
// max, map and heaps hold the same entries, heaps are ordered.
func checkStore(t testing.TB, m *memStore) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	total := 0
	for c := range m.classes {
		cl := &m.classes[c]
		h := cl.byExp
		if len(h) > cl.max {
			t.Fatalf("class %s: %d entries, max %d", classNames[c], len(h), cl.max)
		}
		total += len(h)
		for i, e := range h {
			if e.idx != i || int(e.class) != c || m.entries[e.key] != e {
				t.Fatalf("class %s: entry %q at %d has idx %d class %d, map %p", classNames[c], e.key, i, e.idx, e.class, m.entries[e.key])
			}
			if i > 0 && h[(i-1)/2].expires > e.expires {
				t.Fatalf("class %s: heap out of order at %d", classNames[c], i)
			}
		}
	}
	if total != len(m.entries) {
		t.Fatalf("heaps hold %d entries, map %d", total, len(m.entries))
	}
}

func TestMemoryStoreMaxKeysConfig(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{0, false}, {1023, false}, {1024, true}, {DefaultMemoryStoreMaxKeys, true}, {1 << 26, true}, {1<<26 + 1, false}} {
		cfg := Default()
		cfg.Limits.MemoryStoreMaxKeys = tc.n
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("memory_store_max_keys %d: got error %v, want ok=%v", tc.n, err, tc.ok)
		}
	}
}

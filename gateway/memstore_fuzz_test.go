package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
)

// modelEntry is the reference model's view of one key.
type modelEntry struct {
	count   int64
	expires time.Time
	class   int
}

// storeModel is a plain map with the memStore's documented rules: what a
// store at its cap must do, without any of its machinery.
type storeModel struct {
	m        map[string]*modelEntry
	max      [2]int
	soft     int
	refusals int
}

func (sm *storeModel) live(key string, now time.Time) *modelEntry {
	if e := sm.m[key]; e != nil && now.Before(e.expires) {
		return e
	}
	delete(sm.m, key)
	return nil
}

func (sm *storeModel) nLive(class int, now time.Time) int {
	n := 0
	for k, e := range sm.m {
		if e.class == class && sm.live(k, now) != nil {
			n++
		}
	}
	return n
}

// runStoreOps interprets ops (3 bytes each: op, key, argument) against a
// memStore and the model, and fails at the first difference or broken
// invariant: the store never exceeds its cap, refuses a new key only when
// its budget holds that many live entries, never drops a live lockout and
// counts exactly like the model.
func runStoreOps(t *testing.T, ops []byte) {
	ctx := context.Background()
	m, clk := newTestStore(64) // windows 48, lockout state 16 (15 for counters)
	sm := &storeModel{m: map[string]*modelEntry{}, max: [2]int{m.classes[0].max, m.classes[1].max}, soft: m.classes[1].soft}
	periods := []time.Duration{time.Second, 7 * time.Second, time.Minute}
	full := func(err error, class, limit int, now time.Time, what string) bool {
		t.Helper()
		want := sm.nLive(class, now) >= limit
		if errors.Is(err, ErrStoreFull) != want {
			t.Fatalf("%s: error %v, want refusal %v (%d live, limit %d)", what, err, want, sm.nLive(class, now), limit)
		}
		if want {
			sm.refusals++
		}
		return want
	}
	for i := 0; i+2 < len(ops); i += 3 {
		op, k, arg := ops[i]%7, int(ops[i+1]), ops[i+2]
		now, period := clk.now(), periods[int(arg)%len(periods)]
		switch op {
		case 0: // rate window
			key := fmt.Sprintf("w%d", k%200)
			rate := limiter.Rate{Period: period, Limit: 5}
			lc, err := m.Get(ctx, key, rate)
			e := sm.live("rl:"+key, now)
			if e == nil {
				if full(err, classWindow, sm.max[classWindow], now, "new window "+key) {
					continue
				}
				e = &modelEntry{expires: now.Add(period)}
				sm.m["rl:"+key] = e
			} else if err != nil {
				t.Fatalf("window %s held: %v", key, err)
			}
			e.count++
			if lc.Reached != (e.count > 5) || lc.Reset != e.expires.Unix() && lc.Reset != e.expires.Add(time.Second).Unix() {
				t.Fatalf("window %s: reached %v reset %d, model count %d expires %s", key, lc.Reached, lc.Reset, e.count, e.expires)
			}
		case 1: // failure counter
			key := fmt.Sprintf("execgate:fail:%d", k%24)
			n, err := m.Incr(ctx, key, period)
			e := sm.live(key, now)
			if e == nil {
				if full(err, classLock, sm.soft, now, "new counter "+key) {
					continue
				}
				e = &modelEntry{expires: now.Add(period), class: classLock}
				sm.m[key] = e
			} else if e.count == 0 {
				e.expires = now.Add(period)
			}
			e.count++
			if err != nil || n != e.count {
				t.Fatalf("counter %s: got %d, %v, want %d", key, n, err, e.count)
			}
		case 2: // reserve two counters
			keys := []string{fmt.Sprintf("execgate:fail:%d", k%24), fmt.Sprintf("execgate:fail:%d", (k/24)%24)}
			err := m.Reserve(ctx, keys, period)
			missing := map[string]bool{}
			for _, key := range keys {
				if sm.live(key, now) == nil {
					missing[key] = true
				}
			}
			want := sm.nLive(classLock, now)+len(missing) > sm.soft
			if errors.Is(err, ErrStoreFull) != want || (err != nil && !want) {
				t.Fatalf("reserve %v: %v, want refusal %v", keys, err, want)
			}
			if want {
				sm.refusals++
			} else {
				for key := range missing {
					sm.m[key] = &modelEntry{expires: now.Add(period), class: classLock}
				}
			}
		case 3: // lockout in place of its counter
			key, fail := fmt.Sprintf("execgate:lock:%d", k%24), fmt.Sprintf("execgate:fail:%d", k%24)
			d := 5 * period
			err := m.Lock(ctx, key, fail, d)
			if e := sm.live(key, now); e != nil {
				e.count, e.expires = 1, now.Add(d)
				delete(sm.m, fail)
				if err != nil {
					t.Fatalf("refresh lock %s: %v", key, err)
				}
				break
			}
			delete(sm.m, fail)
			if full(err, classLock, sm.max[classLock], now, "new lock "+key) {
				continue
			}
			sm.m[key] = &modelEntry{count: 1, expires: now.Add(d), class: classLock}
		case 4: // delete or reset
			if arg%2 == 0 {
				key := fmt.Sprintf("execgate:fail:%d", k%24)
				_ = m.Del(ctx, key)
				delete(sm.m, key)
			} else {
				key := fmt.Sprintf("w%d", k%200)
				_, _ = m.Reset(ctx, key, limiter.Rate{Period: period, Limit: 5})
				delete(sm.m, "rl:"+key)
			}
		default: // time passes
			clk.add(time.Duration(arg) * 100 * time.Millisecond)
		}
		checkStore(t, m)
		// Every live lockout and counter is there with its exact time left.
		now = clk.now()
		for key, e := range sm.m {
			if e.class != classLock || sm.live(key, now) == nil {
				continue
			}
			if d, _ := m.TTL(ctx, key); d != e.expires.Sub(now) {
				t.Fatalf("%s: TTL %s, want %s", key, d, e.expires.Sub(now))
			}
		}
	}
	if got := m.stats().Refused; int(got[0]+got[1]) != sm.refusals {
		t.Fatalf("refusals counted %v, model %d", got, sm.refusals)
	}
}

func FuzzMemStore(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 2, 2, 6, 0, 100})
	f.Add([]byte{1, 3, 0, 1, 3, 0, 3, 3, 0, 6, 0, 50, 1, 3, 0})
	seed := make([]byte, 900)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 3*600 {
			ops = ops[:3*600]
		}
		runStoreOps(t, ops)
	})
}

// TestMemStoreRandomized runs long random op sequences (weighted toward new
// keys, so that both budgets fill) through the model comparison.
func TestMemStoreRandomized(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			ops := make([]byte, 3*3000)
			for i := 0; i < len(ops); i += 3 {
				ops[i], ops[i+1], ops[i+2] = byte(r.IntN(7)), byte(r.IntN(256)), byte(r.IntN(40))
				if ops[i] >= 5 && r.IntN(3) > 0 { // time passes less often
					ops[i] = byte(r.IntN(4))
				}
			}
			runStoreOps(t, ops)
		})
	}
}

// TestMemStoreRandomizedReachesBothCaps makes sure the random runs exercise
// refusals of both budgets, not only the easy paths.
func TestMemStoreRandomizedReachesBothCaps(t *testing.T) {
	m, clk := newTestStore(64)
	ctx := context.Background()
	for i := range 200 {
		_, _ = m.Get(ctx, fmt.Sprint("w", i), perMinute)
		_, _ = m.Incr(ctx, fmt.Sprint("execgate:fail:", i), time.Minute)
	}
	clk.add(time.Second)
	if st := m.stats(); st.Refused[classWindow] == 0 || st.Refused[classLock] == 0 {
		t.Fatalf("refusals %v: both budgets should have refused", st.Refused)
	}
	checkStore(t, m)
}

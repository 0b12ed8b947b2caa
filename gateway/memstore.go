package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/common"
)

// memStore is an in-memory limiter.Store and lock store. It sweeps expired
// keys as it goes, so it needs no goroutine of its own.
type memStore struct {
	mu        sync.Mutex
	entries   map[string]*memEntry
	lastSweep time.Time
	now       func() time.Time
}

type memEntry struct {
	count   int64
	expires time.Time
}

const memSweepEvery = 30 * time.Second

func newMemStore() *memStore {
	return &memStore{entries: map[string]*memEntry{}, now: time.Now}
}

// entry returns the live entry of key, nil if none; mu must be held.
func (m *memStore) entry(key string, now time.Time) *memEntry {
	if now.Sub(m.lastSweep) > memSweepEvery {
		for k, e := range m.entries {
			if !now.Before(e.expires) {
				delete(m.entries, k)
			}
		}
		m.lastSweep = now
	}
	e := m.entries[key]
	if e != nil && !now.Before(e.expires) {
		delete(m.entries, key)
		return nil
	}
	return e
}

// incr adds n to key, starting a window of period if the key is new.
func (m *memStore) incr(key string, n int64, period time.Duration) (int64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	e := m.entry(key, now)
	if e == nil {
		e = &memEntry{expires: now.Add(period)}
		m.entries[key] = e
	}
	e.count += n
	return e.count, e.expires
}

func (m *memStore) peek(key string) (int64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e := m.entry(key, now); e != nil {
		return e.count, e.expires
	}
	return 0, now
}

// Get implements limiter.Store.
func (m *memStore) Get(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return m.Increment(context.Background(), key, 1, rate)
}

// Increment implements limiter.Store.
func (m *memStore) Increment(_ context.Context, key string, n int64, rate limiter.Rate) (limiter.Context, error) {
	count, exp := m.incr("rl:"+key, n, rate.Period)
	return common.GetContextFromState(m.now(), rate, exp, count), nil
}

// Peek implements limiter.Store.
func (m *memStore) Peek(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	count, exp := m.peek("rl:" + key)
	return common.GetContextFromState(m.now(), rate, exp, count), nil
}

// Reset implements limiter.Store.
func (m *memStore) Reset(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	m.mu.Lock()
	delete(m.entries, "rl:"+key)
	m.mu.Unlock()
	return common.GetContextFromState(m.now(), rate, m.now(), 0), nil
}

// The lockStore methods.

func (m *memStore) Incr(_ context.Context, key string, window time.Duration) (int64, error) {
	n, _ := m.incr(key, 1, window)
	return n, nil
}

func (m *memStore) Lock(_ context.Context, key string, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[key] = &memEntry{count: 1, expires: m.now().Add(d)}
	return nil
}

func (m *memStore) TTL(_ context.Context, key string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e := m.entry(key, now); e != nil {
		return e.expires.Sub(now), nil
	}
	return 0, nil
}

func (m *memStore) Del(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

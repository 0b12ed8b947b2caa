package gateway

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/common"
)

// memStore is the in-memory limiter.Store and lockStore: the rate windows,
// failure counters and lockouts of one gateway. It holds at most
// limits.memory_store_max_keys entries, so that clients rotating their
// addresses cannot grow it without bound. It owns no goroutine.
//
// The cap is split in two budgets that cannot starve each other: rate
// windows get 7/8 of it, lockout state (failure counters and lockouts) 1/8.
// At a budget's end nothing live is ever evicted (that would hand its owner
// a fresh window or a lifted lockout): a new key is refused with a
// *storeFullError until entries expire, while every key already held keeps
// counting. Within the lockout budget the last 1/16 is kept for lockouts, and
// a lockout takes the place of the failure counter that triggered it, so a
// due lockout is always recorded.
//
// Expired entries are removed as the store is used: each call removes at
// most memSweepBatch of them, soonest expiry first (a heap per budget), so
// no call scans the map and a burst of expiries is spread over calls.
type memStore struct {
	mu      sync.Mutex
	entries map[string]*memEntry
	classes [2]memClass
	now     func() time.Time
	// base is the store's creation: times are nanoseconds since it, on the
	// monotonic clock, so a step of the wall clock neither lifts lockouts
	// nor stretches windows.
	base time.Time
}

// Entry classes: the two budgets.
const (
	classWindow = 0 // rate-limiter windows
	classLock   = 1 // failure counters and lockouts
)

var classNames = [2]string{"window", "lockout"}

// memClass is one budget: its entries by expiry and its limits.
type memClass struct {
	byExp    expiryHeap
	max      int   // no new entry past it
	soft     int   // no new failure counter past it (lockout class)
	refused  int64 // new keys refused at the cap
	inserted int64
}

type memEntry struct {
	key     string
	count   int64
	expires int64 // nanoseconds since memStore.base
	idx     int   // position in its class's heap
	class   uint8
}

// memSweepBatch bounds the expired entries one call removes.
const memSweepBatch = 8

// DefaultMemoryStoreMaxKeys is the default of limits.memory_store_max_keys.
const DefaultMemoryStoreMaxKeys = 1 << 18

// The accepted range of limits.memory_store_max_keys.
const (
	minMemoryStoreMaxKeys = 1024
	maxMemoryStoreMaxKeys = 1 << 26
)

func newMemStore(maxKeys int) *memStore {
	lockMax := max(maxKeys/8, 16)
	m := &memStore{entries: map[string]*memEntry{}, now: time.Now, base: time.Now()}
	m.classes[classWindow] = memClass{max: maxKeys - lockMax, soft: maxKeys - lockMax}
	m.classes[classLock] = memClass{max: lockMax, soft: lockMax - lockMax/16}
	return m
}

// since is now in nanoseconds since m.base.
func (m *memStore) since() int64 { return int64(m.now().Sub(m.base)) }

// sweep removes up to memSweepBatch expired entries of class c; mu is held.
func (m *memStore) sweep(c int, now int64) {
	h := &m.classes[c].byExp
	for range memSweepBatch {
		if len(*h) == 0 || (*h)[0].expires > now {
			return
		}
		m.remove((*h)[0])
	}
}

// remove drops e from the map and its heap; mu is held.
func (m *memStore) remove(e *memEntry) {
	m.classes[e.class].byExp.remove(e)
	delete(m.entries, e.key)
}

// live returns the unexpired entry of key, nil if none; mu is held.
func (m *memStore) live(key string, now int64) *memEntry {
	e := m.entries[key]
	if e != nil && e.expires <= now {
		m.remove(e)
		return nil
	}
	return e
}

// insert adds a new entry of class c unless the class is at limit (its
// max, or its soft limit for failure counters); mu is held.
func (m *memStore) insert(key string, c int, limit int, count int64, expires, now int64) (*memEntry, error) {
	cl := &m.classes[c]
	if !m.makeRoom(c, 1, limit, now) {
		return nil, m.refuse(c, now)
	}
	e := &memEntry{key: key, count: count, expires: expires, class: uint8(c)}
	m.entries[key] = e
	cl.byExp.push(e)
	cl.inserted++
	return e, nil
}

// makeRoom removes expired entries of class c, soonest first, until need
// more fit under limit or none has expired; it reports whether they fit.
// Only as many go as needed: need plus how far the class is over limit
// (lockouts in their reserve), beyond its caller's memSweepBatch; mu is held.
func (m *memStore) makeRoom(c, need, limit int, now int64) bool {
	h := &m.classes[c].byExp
	for len(*h)+need > limit && len(*h) > 0 && (*h)[0].expires <= now {
		m.remove((*h)[0])
	}
	return len(*h)+need <= limit
}

// refuse counts a refused new key of class c and returns the error with
// the time until the class's soonest entry expires; mu is held.
func (m *memStore) refuse(c int, now int64) error {
	cl := &m.classes[c]
	cl.refused++
	wait := time.Second
	if len(cl.byExp) > 0 {
		wait = max(time.Duration(cl.byExp[0].expires-now), time.Second)
	}
	return &storeFullError{Class: classNames[c], RetryAfter: wait}
}

// incr adds n to key at wall, starting a window of period if the key is
// new; limit is the class size past which a new key is refused.
func (m *memStore) incr(key string, c, limit int, n int64, period time.Duration, wall time.Time) (int64, time.Time, error) {
	now := int64(wall.Sub(m.base))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(c, now)
	e := m.live(key, now)
	if e == nil {
		var err error
		if e, err = m.insert(key, c, limit, 0, now+int64(period), now); err != nil {
			return 0, time.Time{}, err
		}
	} else if e.count == 0 && c == classLock {
		// A counter Reserve made: its window starts with the first failure.
		e.expires = now + int64(period)
		m.classes[c].byExp.fix(e)
	}
	e.count += n
	return e.count, m.base.Add(time.Duration(e.expires)), nil
}

func (m *memStore) peek(key string) (int64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e := m.live(key, int64(now.Sub(m.base))); e != nil {
		return e.count, m.base.Add(time.Duration(e.expires))
	}
	return 0, now
}

// Get implements limiter.Store.
func (m *memStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return m.Increment(ctx, key, 1, rate)
}

// Increment implements limiter.Store; a new key past the window budget is
// refused with a *storeFullError.
func (m *memStore) Increment(_ context.Context, key string, n int64, rate limiter.Rate) (limiter.Context, error) {
	now := m.now()
	count, exp, err := m.incr("rl:"+key, classWindow, m.classes[classWindow].max, n, rate.Period, now)
	if err != nil {
		return limiter.Context{}, err
	}
	return common.GetContextFromState(now, rate, exp, count), nil
}

// Peek implements limiter.Store.
func (m *memStore) Peek(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	count, exp := m.peek("rl:" + key)
	return common.GetContextFromState(m.now(), rate, exp, count), nil
}

// Reset implements limiter.Store.
func (m *memStore) Reset(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	m.mu.Lock()
	if e := m.entries["rl:"+key]; e != nil {
		m.remove(e)
	}
	m.mu.Unlock()
	return common.GetContextFromState(m.now(), rate, m.now(), 0), nil
}

// The lockStore methods.

func (m *memStore) Incr(_ context.Context, key string, window time.Duration) (int64, error) {
	n, _, err := m.incr(key, classLock, m.classes[classLock].soft, 1, window, m.now())
	return n, err
}

// Reserve makes sure the failure counters keys exist (count 0, held for
// window; the first failure starts their real window), so that a failure
// can be counted; it is called before credentials are checked. All or nothing: a *storeFullError if the lockout
// budget has no room for the missing ones.
func (m *memStore) Reserve(_ context.Context, keys []string, window time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.since()
	m.sweep(classLock, now)
	var missing []string
	for _, k := range keys {
		if m.live(k, now) == nil && !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
	}
	cl := &m.classes[classLock]
	if !m.makeRoom(classLock, len(missing), cl.soft, now) {
		return m.refuse(classLock, now)
	}
	for _, k := range missing {
		if _, err := m.insert(k, classLock, cl.soft, 0, now+int64(window), now); err != nil {
			return err
		}
	}
	return nil
}

// Lock sets a lockout of key for d in place of the failure counter
// failKey, which it removes: the lockout reuses the counter's room, so it
// is recorded even when the budget is full. Only without a counter (it
// expired meanwhile) does it need room of its own, and then it may use the
// part of the budget kept for lockouts.
func (m *memStore) Lock(_ context.Context, key, failKey string, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.since()
	exp := now + int64(d)
	if e := m.live(key, now); e != nil {
		e.count, e.expires = 1, exp
		m.classes[classLock].byExp.fix(e)
		if f := m.entries[failKey]; f != nil && failKey != key {
			m.remove(f)
		}
		return nil
	}
	if f := m.entries[failKey]; f != nil {
		m.remove(f)
	}
	_, err := m.insert(key, classLock, m.classes[classLock].max, 1, exp, now)
	return err
}

func (m *memStore) TTL(_ context.Context, key string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.since()
	if e := m.live(key, now); e != nil {
		return time.Duration(e.expires - now), nil
	}
	return 0, nil
}

func (m *memStore) Del(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[key]; e != nil {
		m.remove(e)
	}
	return nil
}

// memStoreStats is a snapshot of the store's size and refusals.
type memStoreStats struct {
	Keys, Max         [2]int
	Refused, Inserted [2]int64
}

func (m *memStore) stats() memStoreStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s memStoreStats
	for c := range m.classes {
		cl := &m.classes[c]
		s.Keys[c], s.Max[c], s.Refused[c], s.Inserted[c] = len(cl.byExp), cl.max, cl.refused, cl.inserted
	}
	return s
}

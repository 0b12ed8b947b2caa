package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// lockStore keeps failure counters and lockouts, apart from the rate
// limiter's windows: memory, or Redis shared by several gateways.
type lockStore interface {
	// Incr counts one failure in a window that starts with the first one.
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	// Lock sets a lockout for d and removes the failure counter failKey
	// that triggered it, in one step.
	Lock(ctx context.Context, key, failKey string, d time.Duration) error
	// TTL is what remains of a lockout, 0 if none.
	TTL(ctx context.Context, key string) (time.Duration, error)
	// Del removes a key.
	Del(ctx context.Context, key string) error
}

// lockouts locks out a user+IP pair after pair_threshold failures and an IP
// after ip_threshold failures. Never the user alone: that would let anyone
// lock anyone out.
type lockouts struct {
	store lockStore
	cfg   LockoutConfig
}

// lockKeys are the keys of one attempt.
type lockKeys struct{ pairFail, pairLock, ipFail, ipLock string }

func lockKeysFor(user, ip string) lockKeys {
	sum := sha256.Sum256([]byte(user))
	pair := hex.EncodeToString(sum[:12]) + "|" + rateKey(ip)
	ipk := rateKey(ip)
	return lockKeys{
		pairFail: "execgate:fail:pair:" + pair, pairLock: "execgate:lock:pair:" + pair,
		ipFail: "execgate:fail:ip:" + ipk, ipLock: "execgate:lock:ip:" + ipk,
	}
}

// counterReserver is a lockStore of bounded size (memStore): Reserve makes
// sure failure counters exist before credentials are checked, so that no
// failure goes uncounted because the store was full.
type counterReserver interface {
	Reserve(ctx context.Context, keys []string, window time.Duration) error
}

// reserveFor is how long a reserved, still unused failure counter holds
// its room: long enough for one credential check. The first failure gives
// it the whole window.
const reserveFor = time.Minute

// locked returns how long the pair or the IP remains locked out (0: not).
func (l *lockouts) locked(ctx context.Context, user, ip string) (time.Duration, error) {
	k := lockKeysFor(user, ip)
	a, err := l.store.TTL(ctx, k.pairLock)
	if err != nil {
		return 0, fmt.Errorf("lockout lookup: %w", err)
	}
	b, err := l.store.TTL(ctx, k.ipLock)
	if err != nil {
		return 0, fmt.Errorf("lockout lookup: %w", err)
	}
	return max(a, b), nil
}

// reserve makes room to count a failure of this attempt, right before its
// credentials are checked; no room is an error (ErrStoreFull): an attempt
// must never be checked without being counted.
func (l *lockouts) reserve(ctx context.Context, user, ip string) error {
	r, ok := l.store.(counterReserver)
	if !ok {
		return nil // Redis: no cap of ours
	}
	k := lockKeysFor(user, ip)
	if err := r.Reserve(ctx, []string{k.pairFail, k.ipFail}, min(l.cfg.Window, reserveFor)); err != nil {
		return fmt.Errorf("reserve failure counters: %w", err)
	}
	return nil
}

// failed counts a failure; it returns the scope ("pair" or "ip") when this
// failure started a lockout.
func (l *lockouts) failed(ctx context.Context, user, ip string) (string, error) {
	k := lockKeysFor(user, ip)
	n, err := l.store.Incr(ctx, k.pairFail, l.cfg.Window)
	if err != nil {
		return "", fmt.Errorf("count failure: %w", err)
	}
	m, err := l.store.Incr(ctx, k.ipFail, l.cfg.Window)
	if err != nil {
		return "", fmt.Errorf("count failure: %w", err)
	}
	scope := ""
	if n >= l.cfg.PairThreshold {
		if err := l.store.Lock(ctx, k.pairLock, k.pairFail, l.cfg.Duration); err != nil {
			return "", fmt.Errorf("lock out: %w", err)
		}
		scope = "pair"
	}
	if m >= l.cfg.IPThreshold {
		if err := l.store.Lock(ctx, k.ipLock, k.ipFail, l.cfg.Duration); err != nil {
			return "", fmt.Errorf("lock out: %w", err)
		}
		scope = "ip"
	}
	return scope, nil
}

// succeeded clears the pair's failure count.
func (l *lockouts) succeeded(ctx context.Context, user, ip string) {
	_ = l.store.Del(ctx, lockKeysFor(user, ip).pairFail)
}

// redisLocks is the Redis lockStore.
type redisLocks struct{ c *redis.Client }

var incrWindow = redis.NewScript(`
local n = redis.call("INCR", KEYS[1])
if n == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
return n`)

func (r redisLocks) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	return incrWindow.Run(ctx, r.c, []string{key}, window.Milliseconds()).Int64()
}

func (r redisLocks) Lock(ctx context.Context, key, failKey string, d time.Duration) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, 1, d)
		p.Del(ctx, failKey)
		return nil
	})
	return err
}

func (r redisLocks) TTL(ctx context.Context, key string) (time.Duration, error) {
	d, err := r.c.PTTL(ctx, key).Result()
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, nil
	}
	return d, nil
}

func (r redisLocks) Del(ctx context.Context, key string) error { return r.c.Del(ctx, key).Err() }

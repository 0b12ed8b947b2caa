package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

func nopCancel() {}

// TestSessionTableCaps: the global and per-user caps count running and
// ending sessions; ending ones are neither listed nor killable.
func TestSessionTableCaps(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		max, per int
		hold     []string // subjects holding a running session
		ending   []string // subjects holding an ending session (teardown never ends here)
		subject  string
		wantOK   bool
	}{
		{"empty table", 2, 1, nil, nil, "alice", true},
		{"per-user cap", 4, 1, []string{"alice"}, nil, "alice", false},
		{"another user", 4, 1, []string{"alice"}, nil, "bob", true},
		{"global cap", 2, 2, []string{"alice", "bob"}, nil, "carol", false},
		{"ending holds the per-user slot", 4, 1, nil, []string{"alice"}, "alice", false},
		{"ending holds the global slot", 1, 1, nil, []string{"bob"}, "alice", false},
		{"running per-user cap refuses at once", 1, 1, []string{"alice"}, nil, "alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newSessionTable(tt.max, tt.per)
			n := 0
			add := func(sub string) *session {
				n++
				s, err := tab.acquire(ctx, sub+string(rune('a'+n)), sub, "echo", nopCancel)
				if err != nil {
					t.Fatalf("setup acquire for %s: %v", sub, err)
				}
				return s
			}
			for _, sub := range tt.hold {
				add(sub)
			}
			for _, sub := range tt.ending {
				tab.finish(add(sub))
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond) // do not wait endingWait
			defer cancel()
			_, err := tab.acquire(short, "new", tt.subject, "echo", nopCancel)
			if got := err == nil; got != tt.wantOK {
				t.Fatalf("acquire: got err %v, want ok=%v", err, tt.wantOK)
			}
			var he *HTTPError
			if err != nil && (!errors.As(err, &he) || he.Code != CodeTooManySessions) {
				t.Errorf("refusal: got %v, want %s", err, CodeTooManySessions)
			}
			running := 0
			for _, s := range tab.list() {
				if s.State == "running" {
					running++
				}
			}
			if got, want := running, len(tt.hold)+b2i(tt.wantOK); got != want {
				t.Errorf("list: got %d running sessions, want %d", got, want)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSessionTableWaitsForEnding: a slot held only by a teardown is
// waited for; a slot held by a running command is refused at once.
func TestSessionTableWaitsForEnding(t *testing.T) {
	ctx := context.Background()
	tab := newSessionTable(8, 1)
	prev, err := tab.acquire(ctx, "r1", "alice", "echo", nopCancel)
	if err != nil {
		t.Fatal(err)
	}
	// Running: refused without waiting for endingWait.
	t0 := time.Now()
	if _, err := tab.acquire(ctx, "r2", "alice", "echo", nopCancel); err == nil {
		t.Fatal("second session while the first runs: got ok, want 429")
	}
	if d := time.Since(t0); d > endingWait/2 {
		t.Errorf("refusal behind a running command took %v, want no wait", d)
	}
	killed := false
	prev.cancel = func() { killed = true }
	tab.finish(prev)
	if tab.kill("r1") || tab.killAll() != 0 || killed {
		t.Error("kill of an ending session: got it killed, want it left alone (its command is over)")
	}
	if l := tab.list(); len(l) != 1 || l[0].State != "ending" {
		t.Errorf("list while ending: got %+v, want the session with state ending", l)
	}
	if tab.count() != 1 {
		t.Errorf("count while ending: got %d, want 1 (the sandbox still exists)", tab.count())
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		tab.release(prev)
	}()
	s, err := tab.acquire(ctx, "r3", "alice", "echo", nopCancel)
	if err != nil {
		t.Fatalf("acquire behind a teardown: got %v, want the slot once it is released", err)
	}
	// The user's own running command refuses at once, even when
	// teardowns also fill the global cap.
	mixed := newSessionTable(2, 1)
	run1, _ := mixed.acquire(ctx, "m1", "alice", "echo", nopCancel)
	end1, _ := mixed.acquire(ctx, "m2", "bob", "echo", nopCancel)
	mixed.finish(end1)
	t1 := time.Now()
	if _, err := mixed.acquire(ctx, "m3", "alice", "echo", nopCancel); err == nil || time.Since(t1) > endingWait/2 {
		t.Errorf("user cap held by a running command, global by a teardown: got %v after %v, want 429 at once", err, time.Since(t1))
	}
	_ = run1
	// A teardown that outlasts the caller's context: refused.
	tab.finish(s)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := tab.acquire(short, "r4", "alice", "echo", nopCancel); err == nil {
		t.Error("acquire behind an endless teardown: got ok, want 429")
	}
	waitCtx, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if err := tab.wait(waitCtx); err == nil {
		t.Error("wait with an ending session: got idle, want it to wait for the teardown")
	}
	tab.release(s)
	if err := tab.wait(ctx); err != nil || tab.count() != 0 {
		t.Errorf("after release: wait %v, count %d; want idle and 0", err, tab.count())
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSignalsReloadDoesNotBlockRotation: while a SIGHUP reload is blocked
// (as on a hung file system), SIGUSR1 still reopens the audit log at once;
// SIGHUPs sent meanwhile coalesce into exactly one more reload; and the
// handler ends with its ctx, waiting for a reload still blocked at most
// reloadWait.
func TestSignalsReloadDoesNotBlockRotation(t *testing.T) {
	old := reloadWait
	reloadWait = 200 * time.Millisecond
	defer func() { reloadWait = old }()
	var reloads, reopens atomic.Int32
	entered := make(chan struct{}, 8)
	unblock := make(chan struct{})
	act := signalActions{
		reload: func(context.Context) error {
			reloads.Add(1)
			entered <- struct{}{}
			<-unblock
			return nil
		},
		reopen: func() error { reopens.Add(1); return nil },
		log:    slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan os.Signal, 8)
	ended := make(chan struct{})
	go func() { handleSignals(ctx, ch, act); close(ended) }()

	ch <- syscall.SIGHUP
	wait(t, entered, "the first reload to start")
	ch <- syscall.SIGUSR1
	waitFor(t, "SIGUSR1's reopen while the reload is blocked", func() bool { return reopens.Load() == 1 })
	for range 3 {
		ch <- syscall.SIGHUP
	}
	unblock <- struct{}{} // the first reload ends
	wait(t, entered, "the coalesced reload to start")
	if got := reloads.Load(); got != 2 {
		t.Errorf("reloads: got %d, want 2 (three SIGHUPs during a reload coalesce into one)", got)
	}
	// The second reload stays blocked: ending must not wait for it forever.
	cancel()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("handleSignals did not end within 5 s of its ctx while a reload was blocked")
	}
	close(unblock) // let the abandoned reload go
}

// TestSignalsReloadErrorsKeepServing: a failing reload does not end the
// handler; a failing reopen is logged.
func TestSignalsReloadErrorsKeepServing(t *testing.T) {
	var logs strings.Builder
	var reloads atomic.Int32
	act := signalActions{
		reload: func(context.Context) error { reloads.Add(1); return os.ErrInvalid },
		reopen: func() error { return os.ErrPermission },
		log:    slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 4)
	ended := make(chan struct{})
	go func() { handleSignals(ctx, ch, act); close(ended) }()
	ch <- syscall.SIGHUP
	waitFor(t, "the failing reload", func() bool { return reloads.Load() == 1 })
	ch <- syscall.SIGUSR1
	ch <- syscall.SIGHUP
	waitFor(t, "a second reload after a failed one", func() bool { return reloads.Load() == 2 })
	cancel()
	<-ended
	if !strings.Contains(logs.String(), "audit reopen") {
		t.Errorf("log: got %q, want the failed reopen", logs.String())
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// syncWriter serializes writes to w (the handler logs from two goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

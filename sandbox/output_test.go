package sandbox

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestOutputGateCap(t *testing.T) {
	tests := []struct {
		name      string
		max       int64
		keep      bool
		writes    []int
		wantTaken []int
		wantHit   bool
	}{
		{"under the cap", 100, false, []int{40, 60}, []int{40, 60}, false},
		{"exactly the cap", 100, false, []int{100}, []int{100}, false},
		{"over the cap kills", 100, false, []int{60, 60, 10}, []int{60, 40, 0}, true},
		{"over the cap kept", 100, true, []int{60, 60, 10}, []int{60, 40, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOutputGate(tt.max, 0, tt.keep, make(chan struct{}))
			for i, n := range tt.writes {
				if got := g.admit(n); got != tt.wantTaken[i] {
					t.Errorf("write %d of %d: got %d admitted, want %d", i, n, got, tt.wantTaken[i])
				}
			}
			hit := false
			select {
			case <-g.capHit:
				hit = true
			default:
			}
			if hit != tt.wantHit {
				t.Errorf("got cap hit %v, want %v", hit, tt.wantHit)
			}
		})
	}
}

// TestOutputGateRateBurst: an idle stream does not save up allowance.
func TestOutputGateRateBurst(t *testing.T) {
	g := newOutputGate(1<<20, 1000, false, make(chan struct{}))
	g.admit(100) // within the burst
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	g.admit(500) // 0.6 s of bytes in total, 0.25 s burst: waits ~0.3 s
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("500 bytes at 1000 B/s after 100 came out after %v, want a wait", d)
	}
	// Closing done ends the wait at once.
	done := make(chan struct{})
	g = newOutputGate(1<<20, 1, false, done)
	close(done)
	start = time.Now()
	g.admit(1000)
	if d := time.Since(start); d > time.Second {
		t.Errorf("pacing ignored done: waited %v", d)
	}
}

func TestCopyStream(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.Write([]byte(strings.Repeat("x", 5000)))
		w.Close()
	}()
	var out bytes.Buffer
	st := copyStream(r, &out, newOutputGate(1000, 0, true, make(chan struct{})))
	r.Close()
	if st.Bytes != 1000 || !st.Truncated || out.Len() != 1000 || st.WriteErr != nil {
		t.Errorf("got %d bytes (%d delivered), truncated %v, err %v; want 1000, true, nil", st.Bytes, out.Len(), st.Truncated, st.WriteErr)
	}
}

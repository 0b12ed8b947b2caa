package sandbox

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// outputGate is shared by a run's stdout and stderr copiers: a total byte
// cap and an optional rate. Copiers read a chunk, pass it through the gate
// and write it before reading again, so a writer that does not keep up
// leaves the bytes in the pipe and the command blocks on its own write
// (backpressure): at most one chunk per stream is ever held in memory.
type outputGate struct {
	max  int64
	keep bool // KeepOnOutputCap: discard past the cap instead of ending the run
	rate int64
	done <-chan struct{} // closed when the run is over: pacing stops waiting

	mu      sync.Mutex
	used    int64     // bytes admitted
	drained time.Time // when the admitted bytes have gone out at the rate
	capHit  chan struct{}
	hitOnce sync.Once
}

func newOutputGate(max, rate int64, keep bool, done <-chan struct{}) *outputGate {
	return &outputGate{max: max, rate: rate, keep: keep, done: done, capHit: make(chan struct{})}
}

// rateBurst is how far ahead of the rate a stream may get: an idle
// command does not save up allowance for a large burst later.
const rateBurst = 250 * time.Millisecond

// admit reserves up to n bytes of the cap and returns how many may be
// written, after waiting for the rate. Reaching the cap closes capHit
// (unless keep).
func (g *outputGate) admit(n int) int {
	g.mu.Lock()
	take := min(int64(n), g.max-g.used)
	g.used += take
	var wait time.Duration
	if g.rate > 0 && take > 0 {
		// Token bucket: drained is when every admitted byte has gone out
		// at the rate; a write may run at most rateBurst ahead of it.
		now := time.Now()
		if g.drained.Before(now) {
			g.drained = now
		}
		g.drained = g.drained.Add(time.Duration(float64(take) / float64(g.rate) * float64(time.Second)))
		wait = g.drained.Sub(now) - rateBurst
	}
	g.mu.Unlock()
	if int64(n) > take && !g.keep {
		g.hitOnce.Do(func() { close(g.capHit) })
	}
	g.wait(wait)
	return int(take)
}

// wait sleeps for d unless the run ends first.
func (g *outputGate) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.done:
	}
}

// streamStats is what one copier reports.
type streamStats struct {
	Bytes     int64
	Truncated bool
	WriteErr  error
}

// copyStream copies r to w through the gate until EOF. Bytes past the cap
// are read and discarded (the command is being killed, or keep is set). A
// failing writer makes the rest be discarded too; its error is reported.
func copyStream(r *os.File, w io.Writer, g *outputGate) streamStats {
	var st streamStats
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			ok := g.admit(n)
			if ok < n {
				st.Truncated = true
			}
			if ok > 0 && st.WriteErr == nil {
				wn, werr := w.Write(buf[:ok])
				st.Bytes += int64(wn)
				if werr != nil {
					st.WriteErr = werr
				}
			}
		}
		if err != nil {
			// EOF for a pipe; EIO for a pty master whose slaves are all closed.
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrClosed) {
				st.WriteErr = errors.Join(st.WriteErr, err)
			}
			return st
		}
	}
}

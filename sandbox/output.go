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
	used    int64 // bytes admitted
	paced   int64 // bytes admitted since start (for the rate)
	start   time.Time
	capHit  chan struct{}
	hitOnce sync.Once
}

func newOutputGate(max, rate int64, keep bool, done <-chan struct{}) *outputGate {
	return &outputGate{max: max, rate: rate, keep: keep, done: done, start: time.Now(), capHit: make(chan struct{})}
}

// admit reserves up to n bytes of the cap and returns how many may be
// written. Reaching the cap closes capHit (unless keep).
func (g *outputGate) admit(n int) int {
	g.mu.Lock()
	room := g.max - g.used
	take := int64(n)
	if take > room {
		take = room
	}
	g.used += take
	g.paced += take
	due := time.Duration(0)
	if g.rate > 0 {
		due = time.Duration(float64(g.paced) / float64(g.rate) * float64(time.Second))
	}
	start := g.start
	g.mu.Unlock()
	if int64(n) > take && !g.keep {
		g.hitOnce.Do(func() { close(g.capHit) })
	}
	if take > 0 && due > 0 {
		g.wait(time.Until(start.Add(due)))
	}
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

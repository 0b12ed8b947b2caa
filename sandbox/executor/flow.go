package executor

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// credit is the send side of one stream's flow control: bytes the
// receiver has granted and the sender has not used yet. A sender with no
// credit blocks; that block is what carries backpressure end to end.
type credit struct {
	mu     sync.Mutex
	avail  int64
	closed bool
	wake   chan struct{} // one pending wake-up
}

func newCredit() *credit { return &credit{wake: make(chan struct{}, 1)} }

// grant adds n bytes of credit; more than MaxWindow outstanding is the
// peer breaking the protocol.
func (c *credit) grant(n uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 0 || c.avail+int64(n) > MaxWindow {
		return fmt.Errorf("window grant of %d with %d outstanding exceeds %d", n, c.avail, MaxWindow)
	}
	c.avail += int64(n)
	c.signal()
	return nil
}

func (c *credit) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take waits for credit and takes up to max bytes of it.
func (c *credit) take(ctx context.Context, max int) (int, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, ErrClosed
		}
		if c.avail > 0 {
			n := int64(max)
			if n > c.avail {
				n = c.avail
			}
			c.avail -= n
			if c.avail > 0 {
				c.signal()
			}
			c.mu.Unlock()
			return int(n), nil
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// close wakes every waiter; take then fails with ErrClosed.
func (c *credit) close() {
	c.mu.Lock()
	c.closed = true
	c.signal()
	c.mu.Unlock()
}

// inbox is the receive side of one stream: bytes received and not yet
// consumed. It never holds more than the window its owner granted; a
// sender that sends past it breaks the protocol.
type inbox struct {
	mu      sync.Mutex
	buf     []byte
	granted int64 // credit granted and not yet received
	eof     bool
	err     error
	wake    chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// addGrant records credit that is being granted to the peer.
func (b *inbox) addGrant(n int) {
	b.mu.Lock()
	b.granted += int64(n)
	b.mu.Unlock()
}

// push stores received bytes (copied).
func (b *inbox) push(p []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return fmt.Errorf("data after close")
	}
	if int64(len(p)) > b.granted {
		return fmt.Errorf("window overflow: %d bytes with %d granted", len(p), b.granted)
	}
	b.granted -= int64(len(p))
	b.buf = append(b.buf, p...)
	b.signal()
	return nil
}

// finish marks the end of the stream: err nil for a clean close.
func (b *inbox) finish(err error) {
	b.mu.Lock()
	if !b.eof {
		b.eof, b.err = true, err
	}
	b.signal()
	b.mu.Unlock()
}

// read waits for bytes and moves up to len(p) of them into p. At the end
// it returns (0, nil, true) for a clean close or the finishing error.
func (b *inbox) read(ctx context.Context, p []byte) (n int, done bool, err error) {
	for {
		b.mu.Lock()
		if len(b.buf) > 0 {
			n = copy(p, b.buf)
			b.buf = b.buf[n:]
			if len(b.buf) == 0 {
				b.buf = nil
			}
			b.mu.Unlock()
			return n, false, nil
		}
		if b.eof {
			err := b.err
			b.mu.Unlock()
			return 0, true, err
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-ctx.Done():
			return 0, true, ctx.Err()
		}
	}
}

// connWriter serialises frames onto a connection: one frame is one Write.
type connWriter struct {
	mu   sync.Mutex
	conn net.Conn
	buf  []byte
}

func (w *connWriter) send(f frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = appendFrame(w.buf[:0], f)
	if _, err := w.conn.Write(w.buf); err != nil {
		return fmt.Errorf("write %s frame: %w", f.Type, err)
	}
	if cap(w.buf) > 2*MaxData+headerSize {
		w.buf = nil // do not keep a large result's buffer
	}
	return nil
}

// grantFrame is a window frame granting n bytes on stream s of job.
func grantFrame(job uint64, s streamID, n int) frame {
	return frame{Type: frameWindow, Stream: s, Job: job, Payload: u32Payload(uint32(n))}
}

// refund returns credit taken and not used.
func (c *credit) refund(n int) {
	c.mu.Lock()
	c.avail += int64(n)
	c.signal()
	c.mu.Unlock()
}

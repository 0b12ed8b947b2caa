package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/execgate/execgate/policy"
)

// DefaultOutputWindow is the credit the front grants per output stream.
const DefaultOutputWindow = 256 << 10

// Client is the front's Runner: it sends jobs to the executor over one
// connection, many at once (multiplexed by job number), and streams their
// input and output with per-stream credit. It also implements Sessions for
// the jobs it has in flight.
type Client struct {
	w    *connWriter
	conn *net.UnixConn
	log  *slog.Logger
	done chan struct{} // closed when the read loop ends

	startMu sync.Mutex // orders job numbers with their start frames

	mu     sync.Mutex
	jobs   map[uint64]*clientJob
	byID   map[string]*clientJob
	next   uint64
	err    error // why the connection ended
	closed bool
}

// clientJob is one job in flight.
type clientJob struct {
	num      uint64
	info     RunningJob
	bytes    atomic.Int64
	stdout   *inbox
	stderr   *inbox
	stdin    *credit
	result   chan clientOutcome    // buffered 1
	started  chan *policy.Decision // buffered 1
	finished chan resultMsg        // buffered 1
}

type clientOutcome struct {
	res resultMsg
	err error // an error frame, or the connection's end
}

// NewClient performs the version handshake on conn and starts the read
// loop; the Client owns conn from now on. Close ends it.
func NewClient(ctx context.Context, conn *net.UnixConn, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{w: &connWriter{conn: conn}, conn: conn, log: log, done: make(chan struct{}),
		jobs: map[uint64]*clientJob{}, byID: map[string]*clientJob{}}
	fr, err := c.handshake(ctx)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	go c.readLoop(fr)
	return c, nil
}

func (c *Client) handshake(ctx context.Context) (*frameReader, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := c.w.send(frame{Type: frameHello, Payload: helloPayload(ProtocolVersion, ProtocolVersion)}); err != nil {
		return nil, fmt.Errorf("executor handshake: %w", err)
	}
	fr := newFrameReader(c.conn)
	f, err := fr.read()
	if err != nil {
		return nil, fmt.Errorf("executor handshake: %w", err)
	}
	if f.Type == frameError {
		var m errorMsg
		if err := decodeStrict(f.Payload, &m); err == nil {
			return nil, fmt.Errorf("executor handshake: %w", m.toError())
		}
	}
	if f.Type != frameHello {
		return nil, &ProtocolError{Frame: f.Type.String(), Reason: "want hello"}
	}
	minV, maxV, err := parseHello(f.Payload)
	if err != nil {
		return nil, err
	}
	if minV != ProtocolVersion || maxV != ProtocolVersion {
		return nil, &ProtocolError{Frame: "hello", Reason: fmt.Sprintf("executor chose versions %d..%d", minV, maxV)}
	}
	if !stop() {
		return nil, fmt.Errorf("executor handshake: %w", ctx.Err())
	}
	return fr, nil
}

// Done is closed when the connection to the executor has ended; Err then
// says why. The front exits when it sees this: without an executor it
// cannot run anything.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil while it is up).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; the executor then kills every job of this
// connection. Close waits for the read loop to end.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	err := c.conn.Close()
	<-c.done
	return err
}

// readLoop reads the executor's frames until the connection ends. It never
// blocks on a job's consumer: output goes to bounded inboxes.
func (c *Client) readLoop(fr *frameReader) {
	defer close(c.done)
	var err error
	for {
		var f frame
		if f, err = fr.read(); err != nil {
			break
		}
		if err = c.dispatch(f); err != nil {
			break
		}
	}
	c.mu.Lock()
	if c.closed || errors.Is(err, io.EOF) {
		err = fmt.Errorf("executor connection closed: %w", ErrClosed)
	} else {
		err = fmt.Errorf("executor connection: %w (%w)", err, ErrClosed)
	}
	c.err = err
	jobs := c.jobs
	c.jobs = map[uint64]*clientJob{}
	c.mu.Unlock()
	_ = c.conn.Close()
	for _, j := range jobs {
		j.finish(clientOutcome{err: err})
	}
}

func (c *Client) dispatch(f frame) error {
	c.mu.Lock()
	j := c.jobs[f.Job]
	c.mu.Unlock()
	if j == nil {
		if f.Job == 0 || f.Job > c.next {
			return &ProtocolError{Frame: f.Type.String(), Job: f.Job, Reason: "unknown job"}
		}
		return nil // a late frame of a job that has ended
	}
	bad := func(reason string) error { return &ProtocolError{Frame: f.Type.String(), Job: f.Job, Reason: reason} }
	switch f.Type {
	case frameData:
		in := j.out(f.Stream)
		if in == nil {
			return bad("data only on stdout and stderr")
		}
		if err := in.push(f.Payload); err != nil {
			return bad(err.Error())
		}
		j.bytes.Add(int64(len(f.Payload)))
	case frameClose:
		if in := j.out(f.Stream); in != nil {
			in.finish(nil)
		}
	case frameWindow:
		if f.Stream != streamStdin || j.stdin == nil {
			return bad("window only for stdin")
		}
		if err := j.stdin.grant(beU32(f.Payload)); err != nil {
			return bad(err.Error())
		}
	case frameStarted:
		var d policy.Decision
		if err := decodeStrict(f.Payload, &d); err != nil {
			return bad(err.Error())
		}
		select {
		case j.started <- &d:
		default:
			return bad("started twice")
		}
	case frameFinish:
		var m resultMsg
		if err := decodeStrict(f.Payload, &m); err != nil || m.Err != nil {
			return bad("bad finished message")
		}
		// Every data frame came before this one: the streams are complete.
		j.stdout.finish(nil)
		j.stderr.finish(nil)
		select {
		case j.finished <- m:
		default:
			return bad("finished twice")
		}
	case frameResult, frameError:
		c.mu.Lock()
		delete(c.jobs, f.Job)
		c.mu.Unlock()
		j.finish(decodeOutcome(f))
	default:
		return bad("not sent by an executor")
	}
	return nil
}

func decodeOutcome(f frame) clientOutcome {
	if f.Type == frameResult {
		var m resultMsg
		if err := decodeStrict(f.Payload, &m); err != nil {
			return clientOutcome{err: &ProtocolError{Frame: "result", Job: f.Job, Reason: err.Error()}}
		}
		return clientOutcome{res: m}
	}
	var m errorMsg
	if err := decodeStrict(f.Payload, &m); err != nil {
		return clientOutcome{err: &ProtocolError{Frame: "error", Job: f.Job, Reason: err.Error()}}
	}
	return clientOutcome{err: m.toError(), res: resultMsg{Decision: derefDecision(m.Decision)}}
}

func derefDecision(d *policy.Decision) policy.Decision {
	if d == nil {
		return policy.Decision{}
	}
	return *d
}

func (j *clientJob) out(s streamID) *inbox {
	switch s {
	case streamStdout:
		return j.stdout
	case streamStderr:
		return j.stderr
	}
	return nil
}

// finish ends the job's streams and delivers its outcome (once).
func (j *clientJob) finish(o clientOutcome) {
	j.stdout.finish(nil)
	j.stderr.finish(nil)
	if j.stdin != nil {
		j.stdin.close()
	}
	select {
	case j.result <- o:
	default:
	}
}

// List returns the jobs this client has in flight, oldest first.
func (c *Client) List() []RunningJob {
	c.mu.Lock()
	out := make([]RunningJob, 0, len(c.jobs))
	for _, j := range c.jobs {
		info := j.info
		info.Bytes = j.bytes.Load()
		out = append(out, info)
	}
	c.mu.Unlock()
	sortRunningJobs(out)
	return out
}

// Kill asks the executor to kill the job with this id.
func (c *Client) Kill(id string) error {
	c.mu.Lock()
	j, ok := c.byID[id]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("kill %q: %w", id, ErrJobNotFound)
	}
	return c.w.send(frame{Type: frameSignal, Job: j.num, Payload: []byte{sigKILL}})
}

// RequestReload asks the executor to reload its policy from its own
// configured files (the front cannot send it a policy).
func (c *Client) RequestReload() error {
	return c.w.send(frame{Type: frameReload})
}

// signalCode maps a job signal to its wire code (0 = not allowed).
func signalCode(sig syscall.Signal) uint8 {
	switch sig {
	case syscall.SIGTERM:
		return sigTERM
	case syscall.SIGINT:
		return sigINT
	case syscall.SIGKILL:
		return sigKILL
	}
	return 0
}

var (
	_ Runner   = (*Client)(nil)
	_ Sessions = (*Client)(nil)
)

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/execgate/execgate/sandbox"
)

// Server defaults.
const (
	// DefaultMaxJobs bounds the jobs one connection runs at once; together
	// with the stdin window it bounds what a hostile front can make the
	// executor hold in memory.
	DefaultMaxJobs = 256
	// DefaultStdinWindow is the stdin credit the executor grants per job.
	DefaultStdinWindow = 64 << 10
	// DefaultOutputDrainGrace is how long past a job's timeout and kill
	// grace the executor waits for the front's credit before it drops the
	// job's remaining output.
	DefaultOutputDrainGrace = 10 * time.Second
	// HandshakeTimeout bounds the wait for the peer's hello.
	HandshakeTimeout = 10 * time.Second
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Local *Local       // runs the jobs (decides again, sandboxes)
	Peer  Peer         // the only process allowed on the other end
	Log   *slog.Logger // nil = discard
	// MaxJobs per connection (default DefaultMaxJobs).
	MaxJobs int
	// StdinWindow per job (default DefaultStdinWindow).
	StdinWindow int
	// OutputDrainGrace (default DefaultOutputDrainGrace): see attach.
	OutputDrainGrace time.Duration
	// ReloadRequests receives (without blocking) the front's requests to
	// reload the policy from disk; nil ignores them.
	ReloadRequests chan<- struct{}
}

// Server is the root side: it serves jobs sent by the front through Local.
// It treats the front as untrusted: every job is decided again, every frame
// is checked, and a protocol violation closes the connection, which kills
// that connection's jobs.
type Server struct {
	cfg ServerConfig
	log *slog.Logger
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Local == nil {
		return nil, errors.New("executor server: no Local runner")
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = DefaultMaxJobs
	}
	if cfg.OutputDrainGrace <= 0 {
		cfg.OutputDrainGrace = DefaultOutputDrainGrace
	}
	if cfg.StdinWindow <= 0 || cfg.StdinWindow > MaxWindow {
		cfg.StdinWindow = DefaultStdinWindow
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}, nil
}

// Serve accepts connections on ln until ctx ends, serving each; it closes
// ln on return and waits for every connection to end.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer func() { _ = ln.Close() }()
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(ctx, conn); err != nil {
				s.log.Warn("executor connection ended", "error", err)
			}
		}()
	}
}

// ServeConn serves one connection until it ends, ctx ends or the peer
// breaks the protocol. It closes conn, kills the connection's running jobs
// and waits for them before returning. A clean EOF from the front returns
// nil.
func (s *Server) ServeConn(ctx context.Context, conn *net.UnixConn) error {
	ctx, cancel := context.WithCancel(ctx)
	sc := &serverConn{srv: s, w: &connWriter{conn: conn}, jobs: map[uint64]*serverJob{}}
	defer func() {
		cancel()
		_ = conn.Close()
		sc.endAll()
		sc.wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	// A peer that connects and says nothing must not hold a connection.
	_ = conn.SetReadDeadline(time.Now().Add(HandshakeTimeout))
	fr, err := s.handshake(conn, sc.w)
	if err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Time{})
	for {
		f, err := fr.read()
		if err != nil {
			// EOF, or a reset when the front closed with our frames unread
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read frame: %w", err)
		}
		if err := sc.dispatch(ctx, f); err != nil {
			return err
		}
	}
}

// handshake checks the peer's credentials on the hello and answers it.
func (s *Server) handshake(conn *net.UnixConn, w *connWriter) (*frameReader, error) {
	first, cred, err := readHelloCreds(conn)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		if cred, err = peerCred(conn); err != nil {
			return nil, fmt.Errorf("peer credentials: %w", err)
		}
	}
	if err := s.cfg.Peer.check(cred); err != nil {
		return nil, err
	}
	fr := newFrameReader(io.MultiReader(bytes.NewReader(first), conn))
	f, err := fr.read()
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	if f.Type != frameHello {
		return nil, &ProtocolError{Frame: f.Type.String(), Job: f.Job, Reason: "want hello first"}
	}
	minV, maxV, err := parseHello(f.Payload)
	if err != nil {
		return nil, err
	}
	if minV > ProtocolVersion || maxV < ProtocolVersion {
		msg := fmt.Sprintf("versions %d..%d unsupported, executor speaks %d", minV, maxV, ProtocolVersion)
		_ = sendJSON(w, frameError, 0, errorMsg{Code: "version", Message: msg})
		return nil, &ProtocolError{Frame: "hello", Reason: msg}
	}
	if err := w.send(frame{Type: frameHello, Payload: helloPayload(ProtocolVersion, ProtocolVersion)}); err != nil {
		return nil, err
	}
	return newFrameReader(conn), nil
}

// serverConn is one served connection.
type serverConn struct {
	srv  *Server
	w    *connWriter
	wg   sync.WaitGroup // job goroutines
	mu   sync.Mutex
	jobs map[uint64]*serverJob
	last uint64 // highest job number started; numbers only increase
}

// serverJob is one job of a connection.
type serverJob struct {
	num    uint64
	cancel context.CancelFunc
	stdin  *inbox // nil when the front sends no stdin
	stdout *credit
	stderr *credit
	resize chan sandbox.WindowSize
	signal chan syscall.Signal
}

// dispatch handles one frame from the front.
func (sc *serverConn) dispatch(ctx context.Context, f frame) error {
	if f.Type == frameStart {
		return sc.start(ctx, f)
	}
	bad := func(reason string) error { return &ProtocolError{Frame: f.Type.String(), Job: f.Job, Reason: reason} }
	sc.mu.Lock()
	j, ok := sc.jobs[f.Job]
	last := sc.last
	sc.mu.Unlock()
	switch f.Type {
	case frameData, frameClose, frameWindow, frameResize, frameSignal:
	case frameReload:
		sc.reload()
		return nil
	default:
		return bad("not sent by a front")
	}
	if !ok {
		if f.Job > last {
			return bad("job never started")
		}
		return nil // the job ended while this frame was in flight
	}
	switch f.Type {
	case frameData:
		if f.Stream != streamStdin || j.stdin == nil {
			return bad("data only on stdin, and only when announced")
		}
		if err := j.stdin.push(f.Payload); err != nil {
			return bad(err.Error())
		}
	case frameClose:
		if f.Stream != streamStdin || j.stdin == nil {
			return bad("close only on stdin")
		}
		j.stdin.finish(nil)
	case frameWindow:
		c := j.stdout
		switch f.Stream {
		case streamStderr:
			c = j.stderr
		case streamStdin:
			return bad("window on stdin comes from the executor")
		}
		if err := c.grant(beU32(f.Payload)); err != nil {
			return bad(err.Error())
		}
	case frameResize:
		sc.resize(j, f.Payload)
	case frameSignal:
		return sc.signal(j, f)
	}
	return nil
}

func (sc *serverConn) resize(j *serverJob, p []byte) {
	ws := sandbox.WindowSize{Rows: uint16(p[0])<<8 | uint16(p[1]), Cols: uint16(p[2])<<8 | uint16(p[3])}
	for { // keep only the latest size
		select {
		case j.resize <- ws:
			return
		default:
		}
		select {
		case <-j.resize:
		default:
		}
	}
}

func (sc *serverConn) signal(j *serverJob, f frame) error {
	var sig syscall.Signal
	switch f.Payload[0] {
	case sigKILL:
		j.cancel()
		return nil
	case sigTERM:
		sig = syscall.SIGTERM
	case sigINT:
		sig = syscall.SIGINT
	default:
		return &ProtocolError{Frame: "signal", Job: f.Job, Reason: fmt.Sprintf("unknown signal code %d", f.Payload[0])}
	}
	select {
	case j.signal <- sig:
	default: // signals already pending; like the kernel, coalesce
	}
	return nil
}

// endAll cancels every job and wakes their blocked writers and readers.
func (sc *serverConn) endAll() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, j := range sc.jobs {
		j.end()
	}
}

func (j *serverJob) end() {
	j.cancel()
	j.stdout.close()
	j.stderr.close()
	if j.stdin != nil {
		j.stdin.finish(ErrClosed)
	}
}

func beU32(p []byte) uint32 {
	return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])
}

// reload passes a reload request on, dropping it when one is pending.
func (sc *serverConn) reload() {
	if sc.srv.cfg.ReloadRequests == nil {
		return
	}
	select {
	case sc.srv.cfg.ReloadRequests <- struct{}{}:
	default:
	}
}

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// rawFront speaks the protocol by hand, as a compromised front would.
type rawFront struct {
	t    *testing.T
	conn net.Conn
	fr   *frameReader
}

func newRawFront(t *testing.T, conn net.Conn) *rawFront {
	return &rawFront{t: t, conn: conn, fr: newFrameReader(conn)}
}

func (r *rawFront) send(b []byte) {
	r.t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.conn.Write(b); err != nil {
		r.t.Logf("write: %v", err) // the executor may already have hung up
	}
}

func (r *rawFront) frame(f frame) { r.t.Helper(); r.send(appendFrame(nil, f)) }

func (r *rawFront) next() (frame, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return r.fr.read()
}

func (r *rawFront) handshake() {
	r.t.Helper()
	r.frame(frame{Type: frameHello, Payload: helloPayload(1, 1)})
	f, err := r.next()
	if err != nil || f.Type != frameHello {
		r.t.Fatalf("handshake: got %v %v, want hello", f.Type, err)
	}
}

func (r *rawFront) start(job uint64, m startMsg) {
	r.t.Helper()
	p, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.frame(frame{Type: frameStart, Job: job, Payload: p})
}

// TestLyingFront sends, directly on the wire, requests the policy denies:
// the executor decides again and refuses.
func TestLyingFront(t *testing.T) {
	tests := []struct {
		name string
		req  wireRequest
		want policy.ReasonCode
	}{
		{"role not granted", wireRequest{Subject: "alice", Roles: viewer, Command: "touch", Args: []string{"x"}}, policy.ReasonRoleForbidden},
		{"invented role", wireRequest{Subject: "alice", Roles: []string{"root"}, Command: "echo"}, policy.ReasonRoleForbidden},
		{"binary path as command", wireRequest{Subject: "alice", Roles: viewer, Command: "/bin/sh", Args: []string{"-c", "id"}}, policy.ReasonUnknownCommand},
		{"too many arguments", wireRequest{Subject: "alice", Roles: viewer, Command: "sleep", Args: []string{"1", "2"}}, policy.ReasonTooManyArguments},
		{"subject traversal", wireRequest{Subject: "../../etc", Roles: viewer, Command: "echo"}, policy.ReasonBadSubject},
	}
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.handshake()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.start(uint64(i+1), startMsg{ID: "lie", Request: tt.req})
			f, err := r.next()
			if err != nil || f.Type != frameError || f.Job != uint64(i+1) {
				t.Fatalf("got %v job %d (%v), want an error frame for job %d", f.Type, f.Job, err, i+1)
			}
			var m errorMsg
			if err := decodeStrict(f.Payload, &m); err != nil {
				t.Fatal(err)
			}
			if m.Code != codeDenied || m.Decision == nil || m.Decision.Allowed || (tt.want != "" && m.Decision.Reason != tt.want) {
				t.Errorf("got code %q decision %+v, want denied with %q", m.Code, m.Decision, tt.want)
			}
		})
	}
	if n := h.sb.running(); n != 0 {
		t.Errorf("got %d processes started, want 0", n)
	}
}

// TestHostileFrames: each violation closes the connection with a protocol
// error; the executor survives and kills the connection's running job.
func TestHostileFrames(t *testing.T) {
	sleep := startMsg{ID: "victim", Request: toWire(req("sleep", "30")), Stdin: true}
	tests := []struct {
		name string
		send func(r *rawFront) // after the handshake and a running job 1
	}{
		{"oversized frame", func(r *rawFront) { r.send(rawFrame(frameStart, 0, 0, 2, nil, MaxPayload+1)) }},
		{"unknown type", func(r *rawFront) { r.send(rawFrame(0x66, 0, 0, 1, []byte("x"), 1)) }},
		{"hello again", func(r *rawFront) { r.frame(frame{Type: frameHello, Payload: helloPayload(1, 1)}) }},
		{"result from the front", func(r *rawFront) { r.frame(frame{Type: frameResult, Job: 1, Payload: []byte("{}")}) }},
		{"stdout data from the front", func(r *rawFront) {
			r.frame(frame{Type: frameData, Stream: streamStdout, Job: 1, Payload: []byte("x")})
		}},
		{"job never started", func(r *rawFront) { r.frame(frame{Type: frameSignal, Job: 99, Payload: []byte{sigKILL}}) }},
		{"job number reused", func(r *rawFront) { r.start(1, sleep) }},
		{"start with an unknown field", func(r *rawFront) {
			r.frame(frame{Type: frameStart, Job: 2, Payload: []byte(`{"id":"x","request":{"subject":"alice"},"profile":{"timeout":1e18}}`)})
		}},
		{"start with trailing data", func(r *rawFront) {
			r.frame(frame{Type: frameStart, Job: 2, Payload: []byte(`{"id":"x","request":{"subject":"alice"}}{}`)})
		}},
		{"start not JSON", func(r *rawFront) { r.frame(frame{Type: frameStart, Job: 2, Payload: []byte("\x00\xff")}) }},
		{"window overflow", func(r *rawFront) {
			r.frame(grantFrame(1, streamStdout, MaxWindow))
			r.frame(grantFrame(1, streamStdout, MaxWindow))
		}},
		{"window of zero", func(r *rawFront) { r.frame(grantFrame(1, streamStderr, 0)) }},
		{"stdin window granted by the front", func(r *rawFront) { r.frame(grantFrame(1, streamStdin, 10)) }},
		{"stdin past the window", func(r *rawFront) {
			chunk := make([]byte, MaxData)
			for range 1 << 20 / MaxData { // more than window, copy buffer and pipe
				r.frame(frame{Type: frameData, Stream: streamStdin, Job: 1, Payload: chunk})
			}
		}},
		{"stdin after close", func(r *rawFront) {
			r.frame(frame{Type: frameClose, Stream: streamStdin, Job: 1})
			r.frame(frame{Type: frameData, Stream: streamStdin, Job: 1, Payload: []byte("x")})
		}},
		{"unknown signal", func(r *rawFront) { r.frame(frame{Type: frameSignal, Job: 1, Payload: []byte{9}}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, me())
			r := newRawFront(t, h.conn)
			r.handshake()
			r.start(1, sleep)
			for h.sb.running() != 1 {
				time.Sleep(5 * time.Millisecond)
			}
			tt.send(r)
			if err := h.waitServed(t); !errors.Is(err, ErrProtocol) {
				t.Errorf("ServeConn: got %v, want a protocol error", err)
			}
			if n := h.sb.running(); n != 0 {
				t.Errorf("got %d jobs running after the violation, want 0", n)
			}
		})
	}
}

func TestTruncatedFrameEndsConnection(t *testing.T) {
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.handshake()
	r.send(rawFrame(frameStart, 0, 0, 1, []byte(`{"id"`), 100))
	_ = h.conn.CloseWrite()
	if err := h.waitServed(t); err == nil {
		t.Error("ServeConn: got nil, want an error for a frame cut short")
	}
}

func TestLateFramesOfEndedJobAreIgnored(t *testing.T) {
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.handshake()
	r.start(1, startMsg{ID: "quick", Request: toWire(req("echo", "x"))})
	r.frame(grantFrame(1, streamStdout, 1024))
	for {
		f, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == frameResult {
			break
		}
	}
	r.frame(frame{Type: frameSignal, Job: 1, Payload: []byte{sigKILL}}) // in flight when the job ended
	r.frame(grantFrame(1, streamStdout, 10))
	r.start(2, startMsg{ID: "after", Request: toWire(req("echo", "y"))})
	r.frame(grantFrame(2, streamStdout, 1024))
	for {
		f, err := r.next()
		if err != nil {
			t.Fatalf("connection after late frames: %v", err)
		}
		if f.Type == frameResult && f.Job == 2 {
			return
		}
	}
}

func TestVersionMismatch(t *testing.T) {
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.frame(frame{Type: frameHello, Payload: helloPayload(2, 3)})
	f, err := r.next()
	if err != nil || f.Type != frameError {
		t.Fatalf("got %v %v, want an error frame", f.Type, err)
	}
	var m errorMsg
	if err := decodeStrict(f.Payload, &m); err != nil || m.Code != "version" {
		t.Errorf("got %+v (%v), want code version", m, err)
	}
	if err := h.waitServed(t); !errors.Is(err, ErrProtocol) {
		t.Errorf("ServeConn: got %v, want a protocol error", err)
	}
}

func TestPeerRejected(t *testing.T) {
	tests := []struct {
		name string
		peer Peer
		ok   bool
	}{
		{"this process", me(), true},
		{"any pid of this uid", Peer{UID: os.Getuid()}, true},
		{"other uid", Peer{UID: 12345}, false},
		{"other pid", Peer{UID: os.Getuid(), PID: 1}, false},
	}
	for _, tt := range tests {
		t.Run("socketpair/"+tt.name, func(t *testing.T) {
			h := newHarness(t, tt.peer)
			c, err := NewClient(t.Context(), h.conn, nil)
			if c != nil {
				defer c.Close()
			}
			if (err == nil) != tt.ok {
				t.Errorf("NewClient: got %v, want success %v", err, tt.ok)
			}
			if !tt.ok {
				if err := h.waitServed(t); !errors.Is(err, ErrPeer) {
					t.Errorf("ServeConn: got %v, want ErrPeer", err)
				}
			}
		})
		t.Run("listener/"+tt.name, func(t *testing.T) {
			srv, err := NewServer(ServerConfig{Local: NewLocal(newProcSandbox(), loadPolicy(t), nil), Peer: tt.peer})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()
			conn, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(t.Context(), conn, nil)
			if (err == nil) != tt.ok {
				t.Errorf("NewClient over a listener: got %v, want success %v", err, tt.ok)
			}
			if c != nil {
				_ = c.Close()
			}
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}

// FuzzServeConn feeds arbitrary bytes after a valid hello to a live
// server: it must neither panic nor hang, and it must end the connection
// when the input ends. (No policy is loaded, so nothing runs.)
func FuzzServeConn(f *testing.F) {
	start, _ := json.Marshal(startMsg{ID: "f", Request: toWire(req("echo", "x")), Stdin: true})
	f.Add(appendFrame(nil, frame{Type: frameStart, Job: 1, Payload: start}))
	f.Add(appendFrame(appendFrame(nil, frame{Type: frameStart, Job: 1, Payload: start}),
		frame{Type: frameData, Stream: streamStdin, Job: 1, Payload: []byte("abc")}))
	f.Add(appendFrame(nil, grantFrame(1, streamStdout, 100)))
	f.Add(appendFrame(nil, frame{Type: frameReload}))
	f.Fuzz(func(t *testing.T, in []byte) {
		srv, err := NewServer(ServerConfig{Local: NewLocal(newProcSandbox(), nil, nil), Peer: me()})
		if err != nil {
			t.Fatal(err)
		}
		a, b := socketPair(t)
		defer b.Close()
		served := make(chan error, 1)
		go func() { served <- srv.ServeConn(context.Background(), a) }()
		drained := make(chan struct{})
		go func() { defer close(drained); _, _ = io.Copy(io.Discard, b) }()
		_, _ = b.Write(appendFrame(nil, frame{Type: frameHello, Payload: helloPayload(1, 1)}))
		_, _ = b.Write(in)
		_ = b.CloseWrite()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn did not return after the input ended")
		}
		<-drained
	})
}

package executor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// markerFD opens a uniquely named file and returns it with a function that
// counts this process's descriptors open on that file.
func markerFD(t *testing.T) (*os.File, func() int) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "fd-passing-marker")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == name {
				n++
			}
		}
		return n
	}
	return f, count
}

// sendWithFDs writes b with the given descriptors attached (SCM_RIGHTS).
func sendWithFDs(t *testing.T, conn *net.UnixConn, b []byte, fds ...int) {
	t.Helper()
	if _, _, err := conn.WriteMsgUnix(b, unix.UnixRights(fds...), nil); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
}

// TestHelloWithPassedFDsRefused: a front that attaches file descriptors to
// its hello is refused, and none of them stays open in the executor.
func TestHelloWithPassedFDsRefused(t *testing.T) {
	tests := []struct {
		name     string
		listener bool // Server.Serve (SO_PEERCRED) instead of a socket pair (SO_PASSCRED)
		nfds     int
	}{
		{"socketpair, one fd", false, 1},
		{"socketpair, many fds", false, 40},
		{"listener, one fd", true, 1},
		{"listener, four fds", true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, open := markerFD(t)
			conn, served := fdTestServer(t, tt.listener)
			fds := make([]int, tt.nfds)
			for i := range fds {
				fds[i] = int(f.Fd())
			}
			sendWithFDs(t, conn, appendFrame(nil, frame{Type: frameHello, Payload: helloPayload(1, 1)}), fds...)
			_ = f.Close()
			r := newRawFront(t, conn)
			if fr, err := r.next(); err == nil {
				t.Errorf("hello with %d passed fds: got a %s frame, want the connection closed", tt.nfds, fr.Type)
			}
			if n := open(); n != 0 {
				t.Errorf("descriptors of the passed file still open in the executor: got %d, want 0", n)
			}
			if err := served(); !errors.Is(err, ErrProtocol) {
				t.Errorf("ServeConn: got %v, want a protocol error", err)
			}
		})
	}
}

// TestFDsAfterHandshakeDiscarded: descriptors attached to a later frame
// never reach the executor's descriptor table.
func TestFDsAfterHandshakeDiscarded(t *testing.T) {
	f, open := markerFD(t)
	conn, _ := fdTestServer(t, false)
	r := newRawFront(t, conn)
	r.handshake()
	p := appendFrame(nil, frame{Type: frameStart, Job: 1, Payload: []byte(`{"id":"fd1","request":{"subject":"alice","command":"nope"}}`)})
	sendWithFDs(t, conn, p, int(f.Fd()), int(f.Fd()))
	_ = f.Close()
	fr, err := r.next()
	if err != nil || fr.Type != frameError {
		t.Fatalf("got %v %v, want the denial's error frame", fr.Type, err)
	}
	if n := open(); n != 0 {
		t.Errorf("descriptors of the passed file open in the executor: got %d, want 0", n)
	}
}

// fdTestServer serves one connection, over a socket pair or a listener,
// and returns the front's end and a function waiting for ServeConn's error.
func fdTestServer(t *testing.T, listener bool) (*net.UnixConn, func() error) {
	t.Helper()
	if !listener {
		h := newHarness(t, me())
		return h.conn, func() error {
			select {
			case err := <-h.served:
				h.served <- err // for the harness's Cleanup
				return err
			case <-time.After(5 * time.Second):
				return errors.New("ServeConn did not return")
			}
		}
	}
	srv, err := NewServer(ServerConfig{Local: NewLocal(newProcSandbox(), loadPolicy(t), nil), Peer: me(), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	conns := make(chan *net.UnixConn, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		c, err := ln.AcceptUnix()
		_ = ln.Close()
		if err != nil {
			served <- err
			close(conns)
			return
		}
		conns <- c
		served <- srv.ServeConn(ctx, c)
	}()
	conn, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = conn.Close(); <-conns })
	return conn, func() error {
		select {
		case err := <-served:
			served <- err
			return err
		case <-time.After(5 * time.Second):
			return errors.New("ServeConn did not return")
		}
	}
}

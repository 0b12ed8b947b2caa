package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkRunLocal and BenchmarkRunClient run the same echo in-process and
// over the executor socket: the difference is the protocol's cost per job.
func BenchmarkRunLocal(b *testing.B) {
	l := NewLocal(newProcSandbox(), loadPolicy(b), nil)
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := l.Run(context.Background(), Job{ID: fmt.Sprintf("b%d", i), Request: req("echo", "x"), Stdout: io.Discard}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunClient(b *testing.B) {
	c := benchClient(b)
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := c.Run(context.Background(), Job{ID: fmt.Sprintf("b%d", i), Request: req("echo", "x"), Stdout: io.Discard}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamCat pushes 8 MiB through cat and back over the socket,
// both directions under flow control.
func BenchmarkStreamCat(b *testing.B) {
	c := benchClient(b)
	in := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for i := range b.N {
		var n countWriter
		if _, _, err := c.Run(context.Background(), Job{ID: fmt.Sprintf("cat%d", i), Request: req("cat"), Stdin: bytes.NewReader(in), Stdout: &n}); err != nil {
			b.Fatal(err)
		}
		if int(n) != len(in) {
			b.Fatalf("got %d bytes back, want %d", n, len(in))
		}
	}
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

func benchClient(b *testing.B) *Client {
	b.Helper()
	srv, err := NewServer(ServerConfig{Local: NewLocal(newProcSandbox(), loadPolicy(b), nil), Peer: me()})
	if err != nil {
		b.Fatal(err)
	}
	a, fe := socketPair(b)
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), a) }()
	c, err := NewClient(context.Background(), fe, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(); <-served })
	return c
}

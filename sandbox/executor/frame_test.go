package executor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func rawFrame(t frameType, s streamID, reserved uint16, job uint64, payload []byte, length int) []byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(length))
	h[4], h[5] = byte(t), byte(s)
	binary.BigEndian.PutUint16(h[6:8], reserved)
	binary.BigEndian.PutUint64(h[8:16], job)
	return append(h[:], payload...)
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    frame
	}{
		{"hello", frame{Type: frameHello, Payload: helloPayload(1, 3)}},
		{"start", frame{Type: frameStart, Job: 7, Payload: []byte(`{"id":"a"}`)}},
		{"stdin data", frame{Type: frameData, Stream: streamStdin, Job: 1, Payload: []byte("hello")}},
		{"stdout data max", frame{Type: frameData, Stream: streamStdout, Job: 1<<64 - 1, Payload: bytes.Repeat([]byte{0}, MaxData)}},
		{"stderr close", frame{Type: frameClose, Stream: streamStderr, Job: 2}},
		{"window", frame{Type: frameWindow, Stream: streamStdout, Job: 3, Payload: u32Payload(65536)}},
		{"resize", frame{Type: frameResize, Job: 4, Payload: resizePayload(24, 80)}},
		{"signal", frame{Type: frameSignal, Job: 5, Payload: []byte{sigTERM}}},
		{"result", frame{Type: frameResult, Job: 6, Payload: []byte(`{}`)}},
		{"error", frame{Type: frameError, Job: 6, Payload: []byte(`{}`)}},
		{"reload", frame{Type: frameReload}},
	}
	var stream []byte
	for _, tt := range tests {
		stream = appendFrame(stream, tt.f)
	}
	fr := newFrameReader(bytes.NewReader(stream))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fr.read()
			if err != nil {
				t.Fatalf("read: got error %v, want none", err)
			}
			if got.Type != tt.f.Type || got.Stream != tt.f.Stream || got.Job != tt.f.Job || !bytes.Equal(got.Payload, tt.f.Payload) {
				t.Errorf("got %v/%d/%d/%d bytes, want %v/%d/%d/%d bytes", got.Type, got.Stream, got.Job, len(got.Payload), tt.f.Type, tt.f.Stream, tt.f.Job, len(tt.f.Payload))
			}
		})
	}
	if _, err := fr.read(); err != io.EOF {
		t.Errorf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestFrameHostile(t *testing.T) {
	data := []byte("x")
	tests := []struct {
		name  string
		input []byte
		want  error // ErrProtocol or io.ErrUnexpectedEOF
	}{
		{"oversized data", rawFrame(frameData, streamStdin, 0, 1, nil, MaxData+1), ErrProtocol},
		{"oversized start (4 GiB length)", rawFrame(frameStart, 0, 0, 1, nil, 1<<32-1), ErrProtocol},
		{"oversized result", rawFrame(frameResult, 0, 0, 1, nil, MaxPayload+1), ErrProtocol},
		{"truncated header", rawFrame(frameData, streamStdin, 0, 1, data, 1)[:10], io.ErrUnexpectedEOF},
		{"truncated payload", rawFrame(frameData, streamStdin, 0, 1, data, 2), io.ErrUnexpectedEOF},
		{"unknown type", rawFrame(0x7f, 0, 0, 1, data, 1), ErrProtocol},
		{"type zero", rawFrame(0, 0, 0, 1, nil, 0), ErrProtocol},
		{"reserved bits", rawFrame(frameData, streamStdin, 1, 1, data, 1), ErrProtocol},
		{"data without stream", rawFrame(frameData, streamNone, 0, 1, data, 1), ErrProtocol},
		{"data on stream 4", rawFrame(frameData, 4, 0, 1, data, 1), ErrProtocol},
		{"empty data", rawFrame(frameData, streamStdin, 0, 1, nil, 0), ErrProtocol},
		{"start with a stream", rawFrame(frameStart, streamStdout, 0, 1, []byte("{}"), 2), ErrProtocol},
		{"start on job 0", rawFrame(frameStart, 0, 0, 0, []byte("{}"), 2), ErrProtocol},
		{"hello on a job", rawFrame(frameHello, 0, 0, 9, helloPayload(1, 1), 8), ErrProtocol},
		{"short hello", rawFrame(frameHello, 0, 0, 0, []byte("EXGT"), 4), ErrProtocol},
		{"window of 3 bytes", rawFrame(frameWindow, streamStdout, 0, 1, []byte{0, 0, 1}, 3), ErrProtocol},
		{"close with payload", rawFrame(frameClose, streamStdin, 0, 1, data, 1), ErrProtocol},
		{"signal of 2 bytes", rawFrame(frameSignal, 0, 0, 1, []byte{1, 1}, 2), ErrProtocol},
		{"resize of 8 bytes", rawFrame(frameResize, 0, 0, 1, make([]byte, 8), 8), ErrProtocol},
		{"reload on a job", rawFrame(frameReload, 0, 0, 1, nil, 0), ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newFrameReader(bytes.NewReader(tt.input)).read()
			if !errors.Is(err, tt.want) {
				t.Errorf("got error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseHello(t *testing.T) {
	tests := []struct {
		name    string
		p       []byte
		wantErr bool
	}{
		{"ok", helloPayload(1, 1), false},
		{"range", helloPayload(1, 9), false},
		{"bad magic", []byte("HTTP\x00\x01\x00\x01"), true},
		{"version 0", helloPayload(0, 1), true},
		{"inverted", helloPayload(3, 2), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseHello(tt.p)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// FuzzDecodeFrame: the decoder never panics, never allocates past the
// limits, and what it accepts re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, frame{Type: frameHello, Payload: helloPayload(1, 1)}))
	f.Add(appendFrame(nil, frame{Type: frameStart, Job: 1, Payload: []byte(`{"id":"x","request":{"subject":"a"}}`)}))
	f.Add(appendFrame(nil, frame{Type: frameData, Stream: streamStdin, Job: 1, Payload: []byte("abc")}))
	f.Add(appendFrame(nil, frame{Type: frameWindow, Stream: streamStdout, Job: 1, Payload: u32Payload(10)}))
	f.Add(rawFrame(frameData, streamStdin, 0, 1, nil, MaxData+1))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFrameReader(bytes.NewReader(in))
		var out []byte
		for {
			fr2, err := fr.read()
			if err != nil {
				break
			}
			if len(fr2.Payload) > MaxPayload {
				t.Fatalf("accepted a payload of %d bytes", len(fr2.Payload))
			}
			out = appendFrame(out, fr2)
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("re-encoding the accepted frames does not reproduce the input prefix")
		}
		if len(in) > 0 && in[0] == '{' {
			var m startMsg
			_ = decodeStrict(in, &m)
		}
	})
}

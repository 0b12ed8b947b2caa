package executor

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Wire constants (docs/executor-protocol.md).
const (
	// ProtocolVersion is the only version this executor speaks.
	ProtocolVersion = 1
	// headerSize is the fixed frame header: u32 payload length, u8 type,
	// u8 stream, u16 reserved (zero), u64 job number; big endian.
	headerSize = 16
	// MaxPayload bounds any frame's payload (start, result, error).
	MaxPayload = 1 << 20
	// MaxData bounds one data frame's payload.
	MaxData = 32 << 10
	// MaxWindow bounds the credit a receiver may have outstanding on one
	// stream; a grant past it is a protocol error.
	MaxWindow = 16 << 20
	// helloMagic opens every hello payload.
	helloMagic = "EXGT"
)

// frameType is a frame's type byte.
type frameType uint8

// The frame types.
const (
	frameHello   frameType = 0x01 // both ways, job 0: version negotiation
	frameStart   frameType = 0x10 // front -> executor: a job (JSON)
	frameData    frameType = 0x20 // stdin (front ->), stdout/stderr (-> front)
	frameClose   frameType = 0x21 // end of one stream
	frameWindow  frameType = 0x22 // credit grant for one stream (u32)
	frameResize  frameType = 0x30 // front -> executor: u16 rows, u16 cols
	frameSignal  frameType = 0x31 // front -> executor: u8 signal code
	frameResult  frameType = 0x40 // executor -> front: decision + result (JSON)
	frameError   frameType = 0x41 // executor -> front: error (JSON)
	frameStarted frameType = 0x42 // executor -> front: allowed, starting (decision JSON)
	frameFinish  frameType = 0x43 // executor -> front: command ended, output complete (result JSON)
	frameReload  frameType = 0x50 // front -> executor, job 0: reload the policy from disk
)

func (t frameType) String() string {
	switch t {
	case frameHello:
		return "hello"
	case frameStart:
		return "start"
	case frameData:
		return "data"
	case frameClose:
		return "close"
	case frameWindow:
		return "window"
	case frameResize:
		return "resize"
	case frameSignal:
		return "signal"
	case frameResult:
		return "result"
	case frameError:
		return "error"
	case frameReload:
		return "reload"
	case frameStarted:
		return "started"
	case frameFinish:
		return "finished"
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// streamID names a job's byte stream.
type streamID uint8

// The streams.
const (
	streamNone   streamID = 0
	streamStdin  streamID = 1
	streamStdout streamID = 2
	streamStderr streamID = 3
)

// Signal codes of a signal frame.
const (
	sigTERM uint8 = 1
	sigINT  uint8 = 2
	sigKILL uint8 = 3
)

// frame is one decoded frame. Payload is only valid until the next read
// from the same frameReader.
type frame struct {
	Type    frameType
	Stream  streamID
	Job     uint64
	Payload []byte
}

// frameRule is what a frame type allows.
type frameRule struct {
	minLen, maxLen int
	streams        bool // stream must be stdin/stdout/stderr; else none
	jobZero        bool // job must be 0; else non-zero
	jobAny         bool // job may be 0 (a connection error) or a job
}

var frameRules = map[frameType]frameRule{
	frameHello:   {minLen: 8, maxLen: 8, jobZero: true},
	frameStart:   {minLen: 2, maxLen: MaxPayload},
	frameData:    {minLen: 1, maxLen: MaxData, streams: true},
	frameClose:   {minLen: 0, maxLen: 0, streams: true},
	frameWindow:  {minLen: 4, maxLen: 4, streams: true},
	frameResize:  {minLen: 4, maxLen: 4},
	frameSignal:  {minLen: 1, maxLen: 1},
	frameResult:  {minLen: 2, maxLen: MaxPayload},
	frameError:   {minLen: 2, maxLen: MaxPayload, jobAny: true},
	frameReload:  {minLen: 0, maxLen: 0, jobZero: true},
	frameStarted: {minLen: 2, maxLen: MaxPayload},
	frameFinish:  {minLen: 2, maxLen: MaxPayload},
}

// checkHeader validates a header before its payload is read, so that a
// hostile length never causes an allocation.
func checkHeader(t frameType, s streamID, reserved uint16, job uint64, n uint32) error {
	rule, ok := frameRules[t]
	if !ok {
		return &ProtocolError{Frame: t.String(), Job: job, Reason: "unknown frame type"}
	}
	bad := func(reason string) error { return &ProtocolError{Frame: t.String(), Job: job, Reason: reason} }
	switch {
	case reserved != 0:
		return bad("reserved header bits set")
	case int64(n) < int64(rule.minLen) || int64(n) > int64(rule.maxLen):
		return bad(fmt.Sprintf("payload of %d bytes, want %d..%d", n, rule.minLen, rule.maxLen))
	case rule.streams && (s < streamStdin || s > streamStderr):
		return bad(fmt.Sprintf("bad stream %d", s))
	case !rule.streams && s != streamNone:
		return bad(fmt.Sprintf("stream %d on a frame without streams", s))
	case rule.jobZero && job != 0:
		return bad("job must be 0")
	case !rule.jobZero && !rule.jobAny && job == 0:
		return bad("job 0")
	}
	return nil
}

// frameReader reads frames from a stream, reusing one payload buffer.
type frameReader struct {
	r   io.Reader
	hdr [headerSize]byte
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader { return &frameReader{r: r} }

// read returns the next frame. io.EOF means a clean end between frames;
// a frame cut short is io.ErrUnexpectedEOF; a bad frame a *ProtocolError.
func (fr *frameReader) read() (frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[0:4])
	f := frame{
		Type:   frameType(fr.hdr[4]),
		Stream: streamID(fr.hdr[5]),
		Job:    binary.BigEndian.Uint64(fr.hdr[8:16]),
	}
	if err := checkHeader(f.Type, f.Stream, binary.BigEndian.Uint16(fr.hdr[6:8]), f.Job, n); err != nil {
		return frame{}, err
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	f.Payload = fr.buf[:n]
	if _, err := io.ReadFull(fr.r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return f, nil
}

// appendFrame encodes f after dst.
func appendFrame(dst []byte, f frame) []byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(f.Payload)))
	h[4] = byte(f.Type)
	h[5] = byte(f.Stream)
	binary.BigEndian.PutUint64(h[8:16], f.Job)
	dst = append(dst, h[:]...)
	return append(dst, f.Payload...)
}

// helloPayload is the hello frame's payload: magic, lowest and highest
// version the sender speaks.
func helloPayload(minV, maxV uint16) []byte {
	p := []byte(helloMagic + "\x00\x00\x00\x00")
	binary.BigEndian.PutUint16(p[4:6], minV)
	binary.BigEndian.PutUint16(p[6:8], maxV)
	return p
}

// parseHello reads a hello payload.
func parseHello(p []byte) (minV, maxV uint16, err error) {
	if len(p) != 8 || string(p[:4]) != helloMagic {
		return 0, 0, &ProtocolError{Frame: "hello", Reason: "bad magic"}
	}
	minV, maxV = binary.BigEndian.Uint16(p[4:6]), binary.BigEndian.Uint16(p[6:8])
	if minV == 0 || minV > maxV {
		return 0, 0, &ProtocolError{Frame: "hello", Reason: fmt.Sprintf("bad version range %d..%d", minV, maxV)}
	}
	return minV, maxV, nil
}

func u32Payload(v uint32) []byte {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], v)
	return p[:]
}

func resizePayload(rows, cols uint16) []byte {
	var p [4]byte
	binary.BigEndian.PutUint16(p[0:2], rows)
	binary.BigEndian.PutUint16(p[2:4], cols)
	return p[:]
}

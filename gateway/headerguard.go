package gateway

import (
	"bytes"
	"strconv"
)

// frameTracker follows the framing of HTTP/1.x requests in the bytes a
// server reads from one connection, without changing or keeping them: where
// each header block starts and ends, how long it is, and how long the body
// after it is (Content-Length, or chunked). It exists so that the header
// guard (headerguard_conn.go) can answer an oversized header block itself.
//
// It mirrors what net/http accepts, and wherever it cannot be sure it does
// the same (obsolete line folding on a framing header, several or odd
// Content-Length or Transfer-Encoding values, a version other than
// HTTP/1.0 or HTTP/1.1, a chunk line it cannot read), it turns itself off
// for the rest of the connection: a disagreement can make it guard less,
// never refuse what net/http would have served.
type frameTracker struct {
	limit int // most header-block bytes allowed
	st    frameState

	block   int    // bytes of the current header block
	lineLen int    // bytes of the current line so far (without the '\n')
	head    []byte // the current line's first maxKeptLine bytes
	tail    []byte // the request line's last len(" HTTP/1.1\r") bytes
	lineNo  int    // lines of the current block so far (0: the request line)

	// The current block's framing headers.
	http10    bool
	clen      int64 // -1: none
	te        int   // Transfer-Encoding lines
	teChunked bool
	unsure    bool // a framing header could not be read
	// lastFraming: the previous header line was Content-Length or
	// Transfer-Encoding (a folded line would continue it).
	lastFraming bool

	remain int64 // body or chunk bytes still to pass

	// blocks counts complete header blocks (requests net/http will read).
	// overBlock is the number (counted from 0) of the first block that
	// passed limit and has not been dealt with, -1 if none; overDone says
	// that block has ended since (net/http then has all of it).
	blocks    int64
	overBlock int64
	overDone  bool
}

type frameState uint8

const (
	stStart     frameState = iota // before a request: CR and LF are skipped
	stHeader                      // in a header block
	stBody                        // in a Content-Length body
	stChunkLine                   // in a chunk-size line
	stChunkData                   // in a chunk's data
	stChunkCR                     // the CR after a chunk's data
	stChunkLF                     // the LF after a chunk's data
	stTrailer                     // in the trailer of a chunked body
	stOff                         // framing unknown: no longer tracking
)

// maxKeptLine bounds what is kept of a line: enough for the framing headers.
const maxKeptLine = 64

// versionTail is how much of the request line's end is kept.
const versionTail = len(" HTTP/1.1\r")

// maxChunkLine is net/http's bound on a chunk-size line.
const maxChunkLine = 4096

func newFrameTracker(limit int) *frameTracker {
	return &frameTracker{limit: limit, head: make([]byte, 0, maxKeptLine), tail: make([]byte, 0, 2*versionTail), clen: -1, overBlock: -1}
}

// off reports whether the tracker has stopped following the connection.
func (t *frameTracker) off() bool { return t.st == stOff }

// feed follows p, the next bytes read from the connection. Afterwards
// overBlock names the first header block that passed the limit, if any.
func (t *frameTracker) feed(p []byte) {
	for len(p) > 0 && t.st != stOff {
		switch t.st {
		case stStart:
			if p[0] == '\r' || p[0] == '\n' {
				p = p[1:]
				continue
			}
			t.startBlock()
		case stBody, stChunkData:
			n := int64(len(p))
			if n > t.remain {
				n = t.remain
			}
			p = p[n:]
			t.remain -= n
			if t.remain == 0 {
				if t.st == stBody {
					t.st = stStart
				} else {
					t.st = stChunkCR
				}
			}
		case stChunkCR, stChunkLF:
			want := byte('\r')
			if t.st == stChunkLF {
				want = '\n'
			}
			if p[0] != want {
				t.st = stOff
				return
			}
			p = p[1:]
			if t.st == stChunkCR {
				t.st = stChunkLF
			} else {
				t.st = stChunkLine
				t.lineLen, t.head = 0, t.head[:0]
			}
		default: // stHeader, stChunkLine, stTrailer: line by line
			p = t.lines(p)
		}
	}
}

// keepTail keeps the last versionTail bytes of the request line.
func (t *frameTracker) keepTail(b []byte) {
	if len(b) >= versionTail {
		t.tail = append(t.tail[:0], b[len(b)-versionTail:]...)
		return
	}
	t.tail = append(t.tail, b...)
	if over := len(t.tail) - versionTail; over > 0 {
		t.tail = append(t.tail[:0], t.tail[over:]...)
	}
}

func (t *frameTracker) startBlock() {
	t.st = stHeader
	t.tail = t.tail[:0]
	t.block, t.lineLen, t.lineNo = 0, 0, 0
	t.head = t.head[:0]
	t.http10, t.clen, t.te, t.teChunked, t.unsure, t.lastFraming = false, -1, 0, false, false, false
}

// lines consumes bytes of a line-based state and returns the rest of p.
func (t *frameTracker) lines(p []byte) []byte {
	i := bytes.IndexByte(p, '\n')
	chunk := p
	if i >= 0 {
		chunk = p[:i]
	}
	if room := maxKeptLine - len(t.head); room > 0 {
		t.head = append(t.head, chunk[:min(room, len(chunk))]...)
	}
	t.lineLen += len(chunk)
	if t.st == stHeader && t.lineNo == 0 {
		t.keepTail(chunk)
	}
	if t.st == stHeader {
		t.block += len(chunk)
		if i >= 0 {
			t.block++ // the '\n'
		}
		if t.block > t.limit && t.overBlock < 0 {
			t.overBlock, t.overDone = t.blocks, false
		}
	}
	if t.st == stChunkLine && t.lineLen > maxChunkLine {
		t.st = stOff
		return nil
	}
	if i < 0 {
		return nil
	}
	line := t.head
	if t.lineLen <= maxKeptLine {
		line = bytes.TrimSuffix(line, []byte{'\r'})
	}
	full := t.lineLen <= maxKeptLine
	empty := t.lineLen == 0 || t.lineLen == 1 && t.head[0] == '\r'
	t.lineLen, t.head = 0, t.head[:0]
	switch t.st {
	case stHeader:
		if empty {
			t.endBlock()
		} else {
			t.headerLine(line, full)
		}
	case stChunkLine:
		t.chunkLine(line, full)
	case stTrailer:
		if empty {
			t.st = stStart
		}
	}
	return p[i+1:]
}

// headerLine reads one line of a header block; full says line is all of it.
func (t *frameTracker) headerLine(line []byte, full bool) {
	defer func() { t.lineNo++ }()
	if t.lineNo == 0 {
		t.requestLine()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		// Obsolete line folding continues the previous value: unsure only
		// when that was a framing header.
		t.unsure = t.unsure || t.lastFraming
		return
	}
	t.lastFraming = false
	name, value, ok := bytes.Cut(line, []byte{':'})
	if ok && (bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Transfer-Encoding"))) {
		t.lastFraming = true
	}
	switch {
	case !full:
		if hasFoldPrefix(line, "content-length") || hasFoldPrefix(line, "transfer-encoding") || hasFoldPrefix(line, "upgrade") {
			t.unsure = true
		}
	case !ok:
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, err := strconv.ParseInt(string(bytes.Trim(value, " \t")), 10, 64)
		switch {
		case err != nil || n < 0 || bytes.ContainsAny(bytes.Trim(value, " \t"), "+-"):
			t.unsure = true
		case t.clen >= 0 && t.clen != n:
			t.unsure = true
		default:
			t.clen = n
		}
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		t.te++
		t.teChunked = bytes.EqualFold(bytes.Trim(value, " \t"), []byte("chunked"))
	case bytes.EqualFold(name, []byte("Upgrade")):
		// The connection may be taken over after this request: what follows
		// need not be HTTP. The guard waits for the answer (hijacked or not)
		// before it refuses anything that follows.
	}
}

// requestLine reads the version at the end of the request line as
// net/http's ParseHTTPVersion does ("HTTP/d.d"): 1.0 ignores
// Transfer-Encoding, 1.1 to 1.9 are all HTTP/1.1 to net/http, anything else
// (HTTP/2 preface, HTTP/0.9, garbage) net/http refuses or handles itself.
func (t *frameTracker) requestLine() {
	v := bytes.TrimSuffix(t.tail, []byte{'\r'})
	if len(v) < len(" HTTP/1.1") {
		t.unsure = true
		return
	}
	v = v[len(v)-len(" HTTP/1.1"):]
	switch {
	case string(v[:len(" HTTP/1.")]) != " HTTP/1." || v[len(v)-1] < '0' || v[len(v)-1] > '9':
		t.unsure = true
	case v[len(v)-1] == '0':
		t.http10 = true
	}
}

// hasFoldPrefix reports whether b starts with prefix, ignoring ASCII case.
func hasFoldPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// endBlock decides the body that follows a complete header block.
func (t *frameTracker) endBlock() {
	if t.overBlock == t.blocks {
		t.overDone = true
	}
	t.blocks++
	te := t.te > 0 && !t.http10 // net/http ignores Transfer-Encoding on HTTP/1.0
	switch {
	case t.unsure, te && (t.te != 1 || !t.teChunked || t.clen >= 0):
		t.st = stOff
	case te:
		t.st = stChunkLine
		t.lineLen, t.head = 0, t.head[:0]
	case t.clen > 0:
		t.st, t.remain = stBody, t.clen
	default:
		t.st = stStart
	}
}

// chunkLine reads a chunk-size line as net/http does: hex size, optional
// ";extension", trailing blanks.
func (t *frameTracker) chunkLine(line []byte, full bool) {
	if !full {
		t.st = stOff
		return
	}
	line = bytes.TrimRight(line, " \t")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 15 {
		t.st = stOff
		return
	}
	n, err := strconv.ParseUint(string(line), 16, 64)
	if err != nil || bytes.ContainsAny(line, "+-_xX") {
		t.st = stOff
		return
	}
	if n == 0 {
		t.st = stTrailer
		t.lineLen, t.head = 0, t.head[:0]
		return
	}
	t.st, t.remain = stChunkData, int64(n)
}

// dropOver forgets the oversized block (net/http answers it itself).
func (t *frameTracker) dropOver() { t.overBlock, t.overDone = -1, false }

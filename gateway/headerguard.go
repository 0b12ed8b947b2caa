package gateway

import (
	"bytes"
)

// frameTracker follows the framing of HTTP/1.x requests in the bytes a
// server reads from one connection, without changing or keeping them: where
// each header block starts and ends, how long it is, and how long the body
// after it is (Content-Length, or chunked). It exists so that the header
// guard (headerguard_conn.go) can answer an oversized header block itself.
//
// It mirrors what net/http accepts: values are read as net/http's textproto
// trims and folds them, whatever their length; chunked overrides
// Content-Length; HTTP/1.0 ignores Transfer-Encoding; HTTP/1.1 to 1.9 are
// all 1.1. Wherever net/http refuses the request (and closes the
// connection) or the tracker cannot be sure, it turns itself off for the
// rest of the connection: a disagreement can make it guard less, never
// refuse what net/http would have served. TestHeaderGuardBypassAttempts and
// FuzzFrameTracker (against net/http's own reader) hold it to that.
type frameTracker struct {
	limit int // most header-block bytes allowed
	st    frameState

	block   int    // bytes of the current header block
	lineLen int    // bytes of the current line so far (without the '\n')
	head    []byte // the current line's first maxKeptLine bytes
	tail    []byte // the request line's last versionTail bytes
	lineNo  int    // lines of the current block so far (0: the request line)

	// The current line, when it is a framing header or its continuation,
	// or a chunk-size line: its kind and its value, read as it streams by.
	kind    framingHeader
	colon   bool // the name has ended (kind is known)
	val     valueScan
	chunk   chunkScan
	blankLn bool // a continuation line that is blanks only so far

	// The current block's framing headers.
	http10    bool
	clen      int64 // -1: none
	te        int   // Transfer-Encoding lines
	teChunked bool
	unsure    bool          // a framing header could not be read
	last      framingHeader // the previous header line's kind (folding continues it)

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

// framingHeader names the headers that decide a body's length.
type framingHeader uint8

const (
	hdrOther framingHeader = iota
	hdrContentLength
	hdrTransferEncoding
	hdrFolded // a continuation line
)

// maxKeptLine bounds what is kept of a line: enough for a header's name.
const maxKeptLine = 64

// versionTail is how much of the request line's end is kept.
const versionTail = len(" HTTP/1.1\r")

// maxChunkLine is net/http's bound on a chunk-size line.
const maxChunkLine = 4096

// maxContentLength is the largest Content-Length net/http accepts (2^63-1).
const maxContentLength = 1<<63 - 1

func newFrameTracker(limit int) *frameTracker {
	return &frameTracker{limit: limit, head: make([]byte, 0, maxKeptLine), tail: make([]byte, 0, 2*versionTail), clen: -1, overBlock: -1}
}

// off reports whether the tracker has stopped following the connection.
func (t *frameTracker) off() bool { return t.st == stOff }

// dropOver forgets the oversized block (net/http answers it itself).
func (t *frameTracker) dropOver() { t.overBlock, t.overDone = -1, false }

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
			n := min(int64(len(p)), t.remain)
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
				t.newLine()
			}
		default: // stHeader, stChunkLine, stTrailer: line by line
			p = t.lines(p)
		}
	}
}

func (t *frameTracker) startBlock() {
	t.st = stHeader
	t.tail = t.tail[:0]
	t.block, t.lineNo = 0, 0
	t.newLine()
	t.http10, t.clen, t.te, t.teChunked, t.unsure, t.last = false, -1, 0, false, false, hdrOther
}

func (t *frameTracker) newLine() {
	t.lineLen, t.head = 0, t.head[:0]
	t.kind, t.colon, t.blankLn = hdrOther, false, false
	t.val = valueScan{}
	t.chunk = chunkScan{}
}

// lines consumes bytes of a line-based state and returns the rest of p.
func (t *frameTracker) lines(p []byte) []byte {
	i := bytes.IndexByte(p, '\n')
	chunk := p
	if i >= 0 {
		chunk = p[:i]
	}
	switch {
	case t.st == stChunkLine:
		t.chunk.feed(chunk)
	case t.st == stHeader && t.lineNo == 0:
		t.keepTail(chunk)
	case t.st == stHeader:
		t.scanHeader(chunk)
	}
	if room := maxKeptLine - len(t.head); room > 0 {
		t.head = append(t.head, chunk[:min(room, len(chunk))]...)
	}
	t.lineLen += len(chunk)
	if t.st == stHeader {
		t.block += len(chunk)
		if i >= 0 {
			t.block++ // the '\n'
		}
		if t.block > t.limit && t.overBlock < 0 {
			t.overBlock, t.overDone = t.blocks, false
		}
	}
	if t.st == stChunkLine && t.lineLen >= maxChunkLine {
		t.st = stOff
		return nil
	}
	if i < 0 {
		return nil
	}
	empty := t.lineLen == 0 || t.lineLen == 1 && t.head[0] == '\r'
	switch t.st {
	case stHeader:
		if empty {
			t.endBlock()
		} else {
			t.headerLine()
		}
	case stChunkLine:
		t.chunkLine()
	case stTrailer:
		if empty {
			t.st = stStart
		}
	}
	if t.st != stOff {
		t.newLine()
	}
	return p[i+1:]
}

// scanHeader reads the bytes of a header line as they come (b is the next
// part of the line): the name until the colon, then a framing header's
// value, or whether a continuation line is blank.
func (t *frameTracker) scanHeader(b []byte) {
	if t.lineLen == 0 && len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		t.kind, t.colon, t.blankLn = hdrFolded, true, true
	}
	if t.kind == hdrFolded {
		for _, c := range b {
			if !isBlank(c) {
				t.blankLn = false
				break
			}
		}
		return
	}
	if !t.colon {
		j := bytes.IndexByte(b, ':')
		if j < 0 {
			return
		}
		if t.lineLen <= maxKeptLine { // t.head holds the name's start
			switch {
			case nameIs(t.head, b[:j], "content-length"):
				t.kind = hdrContentLength
			case nameIs(t.head, b[:j], "transfer-encoding"):
				t.kind = hdrTransferEncoding
			}
		}
		t.colon = true
		b = b[j+1:]
	}
	if t.kind == hdrContentLength || t.kind == hdrTransferEncoding {
		t.val.feed(b)
	}
}

// headerLine ends one line of a header block.
func (t *frameTracker) headerLine() {
	defer func() { t.lineNo++ }()
	switch t.kind {
	case hdrOther:
		if t.lineNo == 0 {
			t.requestLine()
		}
		t.last = hdrOther
		return
	case hdrFolded:
		t.folded()
		return
	}
	t.last = t.kind
	if t.kind == hdrTransferEncoding {
		t.te++
		t.teChunked = t.val.is("chunked")
		return
	}
	n, ok := t.val.number()
	switch {
	case !ok:
		t.unsure = true // net/http refuses it
	case t.clen >= 0 && t.clen != n:
		t.unsure = true // net/http refuses differing values
	default:
		t.clen = n
	}
}

// folded reads a continuation line (obsolete line folding), which
// net/http's textproto joins to the previous value with a space.
func (t *frameTracker) folded() {
	switch t.last {
	case hdrContentLength:
		// "2" + " " is still 2 to net/http; "2 3" is refused by it.
		t.unsure = t.unsure || !t.blankLn
	case hdrTransferEncoding:
		t.teChunked = false // "chunked x" or "chunked ": not chunked to net/http
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

// endBlock decides the body that follows a complete header block.
func (t *frameTracker) endBlock() {
	if t.overBlock == t.blocks {
		t.overDone = true
	}
	t.blocks++
	// net/http ignores Transfer-Encoding on HTTP/1.0, refuses anything but
	// one "chunked" on HTTP/1.1, and lets chunked override Content-Length.
	te := t.te > 0 && !t.http10
	switch {
	case t.unsure, te && (t.te != 1 || !t.teChunked):
		t.st = stOff
	case te:
		t.st = stChunkLine
	case t.clen > 0:
		t.st, t.remain = stBody, t.clen
	default:
		t.st = stStart
	}
}

// chunkLine ends a chunk-size line.
func (t *frameTracker) chunkLine() {
	n, ok := t.chunk.size()
	switch {
	case !ok:
		t.st = stOff
	case n == 0:
		t.st = stTrailer
	default:
		t.st, t.remain = stChunkData, n
	}
}

package gateway

import "bytes"

// The frame tracker's readers of header values and chunk-size lines, which
// see their input in pieces as it is read.

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// nameIs reports whether a+b is name (lower case), ignoring ASCII case.
func nameIs(a, b []byte, name string) bool {
	if len(a)+len(b) != len(name) {
		return false
	}
	return bytes.EqualFold(a, []byte(name[:len(a)])) && bytes.EqualFold(b, []byte(name[len(a):]))
}

// valueScan reads a header value as net/http sees it once textproto has
// trimmed it: blanks, one token, blanks. Anything after blanks that follow
// the token makes it "spaced" (net/http would read "a b").
type valueScan struct {
	started, ended, spaced bool
	notDigit, overflow     bool
	n                      int64
	lower                  [8]byte // the token's first bytes, lower-cased
	length                 int
}

func (s *valueScan) feed(b []byte) {
	for _, c := range b {
		if isBlank(c) {
			s.ended = s.started
			continue
		}
		if s.ended {
			s.spaced = true
			return
		}
		s.started = true
		if s.length < len(s.lower) {
			s.lower[s.length] = c | 0x20 // ASCII lower case for letters
		}
		s.length++
		if c < '0' || c > '9' {
			s.notDigit = true
			continue
		}
		if s.n > (maxContentLength-int64(c-'0'))/10 {
			s.overflow = true
			continue
		}
		s.n = s.n*10 + int64(c-'0')
	}
}

// number is the value as a Content-Length.
func (s *valueScan) number() (int64, bool) {
	return s.n, s.started && !s.spaced && !s.notDigit && !s.overflow
}

// is reports whether the value is word (lower case), ignoring ASCII case.
func (s *valueScan) is(word string) bool {
	return s.started && !s.spaced && s.length == len(word) && string(s.lower[:s.length]) == word
}

// chunkScan reads a chunk-size line as net/http does: the line must end in
// CRLF with no other CR, trailing blanks are dropped, everything from the
// first ';' is an extension, and what precedes it is 1 to 16 hex digits.
// The tracker takes at most 15 digits (larger chunks: off).
type chunkScan struct {
	digits  int
	n       int64
	blanks  bool // blanks after the digits
	semi    bool // in the extension
	cr      bool // a CR was seen: it must be the line's last byte
	invalid bool
}

func (s *chunkScan) feed(b []byte) {
	for _, c := range b {
		if s.cr {
			s.invalid = true // a CR not right before the LF
			return
		}
		switch {
		case c == '\r':
			s.cr = true
		case s.semi:
		case c == ';':
			s.semi = true
			s.invalid = s.invalid || s.blanks || s.digits == 0 // "2 ;x" is "2 " to net/http
		case c == ' ' || c == '\t':
			s.blanks = true
		case s.blanks:
			s.invalid = true // "2 3"
		default:
			d, ok := hexDigit(c)
			if !ok || s.digits == 15 {
				s.invalid = true
				return
			}
			s.digits++
			s.n = s.n<<4 | int64(d)
		}
	}
}

// size is the chunk size the line announced.
func (s *chunkScan) size() (int64, bool) {
	return s.n, s.cr && !s.invalid && s.digits > 0
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// trackAll feeds in to a fresh tracker in pieces of size step (0: at once).
func trackAll(limit int, in string, step int) *frameTracker {
	t := newFrameTracker(limit)
	b := []byte(in)
	if step <= 0 {
		step = len(b) + 1
	}
	for len(b) > 0 {
		n := min(step, len(b))
		t.feed(b[:n])
		b = b[n:]
	}
	return t
}

func get(extra string) string {
	return "GET /v1/commands HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n"
}

func TestFrameTracker(t *testing.T) {
	const limit = 1024
	big := "X-Big: " + strings.Repeat("b", limit) + "\r\n"
	body := strings.Repeat("\r\n\r\nGET / HTTP/1.1\r\n", 200) // looks like requests, is a body
	chunked := "POST /v1/exec HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"10;ext=1\r\n" + strings.Repeat("z", 16) + "\r\n" +
		"5dc\r\n" + body[:1500] + "\r\n0\r\nX-Trailer: 1\r\n\r\n"
	cases := []struct {
		name      string
		in        string
		blocks    int64
		overBlock int64
		off       bool
	}{
		{"one small request", get(""), 1, -1, false},
		{"exactly at the limit", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", limit-len("GET / HTTP/1.1\r\nX: \r\n\r\n")) + "\r\n\r\n", 1, -1, false},
		{"one byte over the limit", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", limit+1-len("GET / HTTP/1.1\r\nX: \r\n\r\n")) + "\r\n\r\n", 1, 0, false},
		{"oversized, unfinished", get(big)[:limit+20], 0, 0, false},
		{"many small headers", "GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", 300), 0, 0, false},
		{"long URL is not a header line", "GET /" + strings.Repeat("u", limit+10) + " HTTP/1.1\r\n", 0, 0, false},
		{"pipelined: second is over", get("") + get(big), 2, 1, false},
		{"keep-alive after a normal request", get("") + get("") + get(""), 3, -1, false},
		{"content-length body with blank lines", "POST /v1/exec HTTP/1.1\r\nContent-Length: 4000\r\n\r\n" + body + get(""), 2, -1, false},
		{"body is not counted as header", "POST /v1/exec HTTP/1.1\r\ncontent-length:4000\r\n\r\n" + body, 1, -1, false},
		{"chunked body then a request", chunked + get(""), 2, -1, false},
		{"chunked body then an oversized request", chunked + get(big), 2, 1, false},
		{"bare LF lines", "GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.1\n\n", 2, -1, false},
		{"leading CRLF before a request", "\r\n\r\n" + get(""), 1, -1, false},
		{"HTTP/1.0 ignores Transfer-Encoding", "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + get(""), 2, -1, false},
		{"HTTP/1.9 is HTTP/1.1 to net/http", "GET / HTTP/1.9\r\nHost: x\r\n\r\n" + get(""), 2, -1, false},
		{"folded line of another header", "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n" + get(""), 2, -1, false},
		{"same Content-Length twice", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab" + get(""), 2, -1, false},
		// Whatever the tracker cannot be sure of turns it off.
		{"conflicting Content-Length", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 1, -1, true},
		{"signed Content-Length", "POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab", 1, -1, true},
		{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 1, -1, true},
		{"chunked overrides Content-Length", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n1\r\nx\r\n0\r\n\r\n" + get(""), 2, -1, false},
		{"Content-Length folded with a blank line", "POST / HTTP/1.1\r\nContent-Length: 2\r\n \r\n\r\nab" + get(""), 2, -1, false},
		{"HTTP/1.0 ignores a folded Transfer-Encoding", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n x\r\nContent-Length: 2\r\n\r\nab" + get(""), 2, -1, false},
		{"two Transfer-Encoding lines", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 1, -1, true},
		{"folded line", "POST / HTTP/1.1\r\nContent-Length: 2\r\n 3\r\n\r\nab", 1, -1, true},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1, -1, true},
		{"HTTP/0.9-ish", "GET /\r\n\r\n", 1, -1, true},
		{"folded Transfer-Encoding", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\tgzip\r\n\r\n", 1, -1, true},
		{"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1, -1, true},
		{"chunk without CRLF after data", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab", 1, -1, true},
		{"padded Content-Length line", "POST / HTTP/1.1\r\nContent-Length:" + strings.Repeat(" ", 80) + "2" + strings.Repeat("\t", 80) + "\r\n\r\nab" + get(""), 2, -1, false},
		{"Content-Length with many leading zeros", "POST / HTTP/1.1\r\nContent-Length: " + strings.Repeat("0", 100) + "2\r\n\r\nab" + get(""), 2, -1, false},
		{"long chunk extension", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 1000) + "\r\nab\r\n0\r\n\r\n" + get(""), 2, -1, false},
		{"chunk size with trailing blanks", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2" + strings.Repeat(" ", 100) + "\r\nab\r\n0\r\n\r\n" + get(""), 2, -1, false},
		{"long folded blank line after Content-Length", "POST / HTTP/1.1\r\nContent-Length: 2\r\n" + strings.Repeat(" ", 100) + "\r\n\r\nab" + get(""), 2, -1, false},
		{"Content-Length overflowing int64", "POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", 1, -1, true},
		{"chunk size with a blank before the extension", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 ;x\r\nab", 1, -1, true},
		{"chunk line with a bare LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\nab", 1, -1, true},
	}
	for _, tc := range cases {
		for _, step := range []int{0, 1, 7, 4096} {
			tr := trackAll(limit, tc.in, step)
			if tr.blocks != tc.blocks || tr.overBlock != tc.overBlock || tr.off() != tc.off {
				t.Errorf("%s (pieces of %d): got blocks %d, overBlock %d, off %v; want %d, %d, %v",
					tc.name, step, tr.blocks, tr.overBlock, tr.off(), tc.blocks, tc.overBlock, tc.off)
			}
		}
	}
}

// requestEnds are the offsets at which net/http's reader finishes each
// request it reads from in (header and body), until it fails.
func requestEnds(in []byte) []int {
	cr := &countingReader{r: bytes.NewReader(in)}
	br := bufio.NewReader(cr)
	var ends []int
	for {
		req, err := http.ReadRequest(br)
		if err != nil || req.ProtoMajor != 1 { // the server refuses other versions
			return ends
		}
		_, err = io.Copy(io.Discard, req.Body)
		req.Body.Close()
		if err != nil {
			return ends
		}
		ends = append(ends, cr.n-br.Buffered())
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// trackerEnds are the offsets at which the tracker sees each request end,
// and whether it stayed on to the end of in.
func trackerEnds(limit int, in []byte) ([]int, bool) {
	t := newFrameTracker(limit)
	var ends []int
	for i := range in {
		before := t.st
		t.feed(in[i : i+1])
		if t.off() {
			return ends, false
		}
		if t.st == stStart && before != stStart {
			ends = append(ends, i+1)
		}
	}
	return ends, true
}

// FuzzFrameTracker: the tracker never panics, reads the same however the
// bytes are split, flags nothing in input below the limit, ends requests
// exactly where net/http does while it stays on, and turns off only on a
// request net/http's reader refuses too (else a client could switch the
// guard off and keep the connection).
func FuzzFrameTracker(f *testing.F) {
	f.Add([]byte(get("") + get("")))
	f.Add([]byte("POST /v1/exec HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + get("")))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n" + get("")))
	f.Add([]byte("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\nHost: y\n\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n 2\r\n\r\nab"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nab\r\n0\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n \r\n\r\nab"))
	f.Add([]byte("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n x\r\nContent-Length: 2\r\n\r\nab"))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length:      0002   \r\n\r\nab"))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;e=\"x\"   \r\nab\r\n0\r\nT: 1\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.7\r\nHost: x\r\nX: a\r\n b\r\n\r\nPOST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 256
		whole := trackAll(limit, string(in), 0)
		for _, step := range []int{1, 3, 64} {
			split := trackAll(limit, string(in), step)
			if split.blocks != whole.blocks || split.overBlock != whole.overBlock || split.off() != whole.off() || split.st != whole.st {
				t.Fatalf("pieces of %d: blocks %d over %d off %v st %d; at once: %d %d %v %d",
					step, split.blocks, split.overBlock, split.off(), split.st, whole.blocks, whole.overBlock, whole.off(), whole.st)
			}
		}
		if len(in) <= limit && whole.overBlock >= 0 {
			t.Fatalf("%d bytes flagged as over a %d-byte limit", len(in), limit)
		}
		goEnds := requestEnds(in)
		ours, on := trackerEnds(limit, in)
		if !on && len(goEnds) > len(ours) {
			t.Fatalf("the tracker turned off during request %d, which net/http read fine (ends %v, tracker %v)", len(ours), goEnds, ours)
		}
		for i, end := range goEnds {
			if i >= len(ours) {
				if on {
					t.Fatalf("net/http ended request %d at %d; the tracker (still on) did not (ends %v)", i, end, ours)
				}
				break
			}
			if ours[i] != end {
				t.Fatalf("request %d: net/http ended it at %d, the tracker at %d (net/http %v, tracker %v)", i, end, ours[i], goEnds, ours)
			}
		}
	})
}

// BenchmarkFrameTracker is the guard's cost per request: one typical
// request (header block and a small JSON body) fed as one read.
func BenchmarkFrameTracker(b *testing.B) {
	body := `{"command":"git","args":["log","-n","5"]}`
	req := []byte("POST /v1/exec/check HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nAuthorization: Bearer " + strings.Repeat("x", 180) +
		"\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n" + body)
	t := newFrameTracker(32 << 10)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		t.feed(req)
	}
	if t.off() || t.overBlock >= 0 {
		b.Fatal("tracker lost the framing")
	}
}

// BenchmarkGuardedServer compares a bare net/http server answering 204 over
// loopback keep-alive with and without the header guard on its listener.
func BenchmarkGuardedServer(b *testing.B) {
	for _, guarded := range []bool{false, true} {
		name := "plain"
		if guarded {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var l net.Listener = ln
			if guarded {
				l = &guardListener{Listener: ln, limit: 32 << 10, refuse: func(net.Conn, int) []byte { return nil }}
			}
			srv := &http.Server{ConnState: connState, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })}
			done := make(chan struct{})
			go func() { defer close(done); _ = srv.Serve(l) }()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			url := "http://" + ln.Addr().String() + "/"
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.StopTimer()
			client.CloseIdleConnections()
			_ = srv.Close()
			<-done
		})
	}
}

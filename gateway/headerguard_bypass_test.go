package gateway

import (
	"strings"
	"testing"
)

// TestHeaderGuardBypassAttempts: requests built to make the frame tracker
// lose the framing, each followed on the same connection by a 1 MB header
// block. Whatever net/http does with the first, the oversized block never
// gets net/http's plain-text 431: it gets the JSON 413, or the connection
// is closed.
func TestHeaderGuardBypassAttempts(t *testing.T) {
	env := startServer(t, nil)
	addr := hostOf(env.url)
	huge := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1<<20) + "\r\n\r\n"
	tricks := map[string]string{
		"Content-Length folded with a blank line":  "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n \r\n\r\nab",
		"Content-Length folded with a value":       "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n 3\r\n\r\nab",
		"chunked and Content-Length":               "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		"HTTP/1.0 keep-alive, folded TE":           "POST /healthz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n x\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.0 keep-alive, two TE":              "POST /healthz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
		"bad chunk size":                           "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk line with a bare LF":                "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n",
		"chunk data without CRLF":                  "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n",
		"huge chunk extension":                     "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 5000) + "\r\nab\r\n0\r\n\r\n",
		"trailer":                                  "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.9":                                 "GET /healthz HTTP/1.9\r\nHost: x\r\n\r\n",
		"Upgrade, not taken over":                  "GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"Expect 100-continue":                      "POST /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
		"leading blank lines":                      "\r\n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"body with a request in it":                "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\nGET /healthz HTTP/1.1\r\nHost: y\r\n\r\n",
		"obs-fold on an ordinary header":           "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
		"Content-Length with leading zeros":        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0002\r\n\r\nab",
		"Content-Length padded past a line buffer": "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length:" + strings.Repeat(" ", 200) + "2" + strings.Repeat(" ", 200) + "\r\n\r\nab",
		"Content-Length with 200 leading zeros":    "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: " + strings.Repeat("0", 200) + "2\r\n\r\nab",
		"long chunk extension":                     "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 1000) + "\r\nab\r\n0\r\n\r\n",
		"chunk size padded with blanks":            "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2" + strings.Repeat(" ", 300) + "\r\nab\r\n0\r\n\r\n",
		"long blank fold after Content-Length":     "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + strings.Repeat("\t", 300) + "\r\n\r\nab",
		"same Content-Length twice, spaced":        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length:  2 \r\n\r\nab",
	}
	// The same with a handler that reads the body (net/http's own chunked
	// reader then fails inside the handler).
	check := "POST /v1/exec/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + env.token("alice", "viewer") +
		"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	tricks["body read: bad chunk size"] = check + "zz\r\n"
	tricks["body read: chunk line with a bare LF"] = check + "2\n{}\r\n0\r\n\r\n"
	tricks["body read: chunk data without CRLF"] = check + "2\r\n{}xx\r\n0\r\n\r\n"
	tricks["body read: bad trailer"] = check + "2\r\n{}\r\n0\r\nbad trailer\n\n"
	tricks["body read: complete"] = check + "12\r\n{\"command\":\"echo\"}\r\n0\r\n\r\n"
	for name, trick := range tricks {
		t.Run(name, func(t *testing.T) {
			rs := rawExchange(t, addr, trick+huge)
			for i, r := range rs {
				if r.status == 431 || r.status == 413 && r.errBody().Error.Code != CodePayloadTooLarge {
					t.Errorf("answer %d: %d %q: the oversized block got past the guard", i, r.status, r.body)
				}
			}
			t.Logf("answers: %d, statuses %v", len(rs), statuses(rs))
		})
	}
}

func statuses(rs []rawResponse) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.status)
	}
	return out
}

package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Answers written outside the gin engine (the metrics listener's refusals,
// the header guard's 413) carry the same envelope and headers as the API's
// own: X-Request-Id, the security headers `first` sets, and
// {"error":{"code","message","request_id"}}. TestRawErrorHeadersMatchAPI
// keeps the two header sets equal.

// securityHeaders are the headers of every response besides X-Request-Id.
func securityHeaders(tls bool) [][2]string {
	h := make([][2]string, 0, len(securityHeaderValues)+1)
	for _, kv := range securityHeaderValues {
		h = append(h, [2]string{kv.k, kv.v[0]})
	}
	if tls {
		h = append(h, [2]string{"Strict-Transport-Security", hstsValue[0]})
	}
	return h
}

// errorJSON is the error envelope of one answer.
func errorJSON(id, code, msg string) []byte {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: msg, RequestID: id}}) // cannot fail: strings only
	return b
}

// writeRawError answers an error through a plain http.ResponseWriter.
func writeRawError(w http.ResponseWriter, id string, tls bool, status int, code, msg string) {
	h := w.Header()
	h.Set("X-Request-Id", id)
	for _, kv := range securityHeaders(tls) {
		h.Set(kv[0], kv[1])
	}
	body := errorJSON(id, code, msg)
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// rawErrorResponse is a complete HTTP/1.1 error answer that closes the
// connection, for code that writes to the connection itself.
func rawErrorResponse(id string, tls bool, status int, code, msg string) []byte {
	body := errorJSON(id, code, msg)
	b := make([]byte, 0, 512+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nX-Request-Id: "...)
	b = append(b, id...)
	for _, kv := range securityHeaders(tls) {
		b = append(b, "\r\n"...)
		b = append(b, kv[0]...)
		b = append(b, ": "...)
		b = append(b, kv[1]...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

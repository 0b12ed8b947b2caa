package gateway

import (
	"errors"
	"math"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
)

// The answers of the hot endpoints (POST /v1/exec/check, POST /v1/exec) and
// every error are encoded by hand, byte for byte what encoding/json's
// Marshal writes for the same struct (the same keys in the same order, the
// same omitempty rules, HTML escaping on): reflection cost the check
// endpoint more than its policy decision (TestAnswerEncodeMatchesJSON,
// FuzzAnswerEncode hold them to encoding/json).

// jsonContentType is the Content-Type of every JSON answer (gin's c.JSON
// writes the same).
const jsonContentType = "application/json; charset=utf-8"

// errNotFinite is a float JSON cannot carry (encoding/json refuses it too).
var errNotFinite = errors.New("json: unsupported value: non-finite float")

// answerPool recycles the buffers small answers are encoded into; a large
// one (an exec answer with its output) is not kept.
var answerPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledAnswer = 64 << 10

// writeAnswer sends the JSON that enc appends, with status.
func writeAnswer(c *gin.Context, status int, enc func([]byte) ([]byte, error)) error {
	bp := answerPool.Get().(*[]byte)
	b, err := enc((*bp)[:0])
	if err == nil {
		c.Data(status, jsonContentType, b)
	}
	if cap(b) <= maxPooledAnswer {
		*bp = b
		answerPool.Put(bp)
	}
	return err
}

func (r *checkResponse) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"request_id":`...)
	b = appendJSONStringHTML(b, r.RequestID)
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, r.Allowed)
	b = append(b, `,"reason":`...)
	b = appendJSONStringHTML(b, r.Reason)
	b = appendAnswerStr(b, "message", r.Message, true)
	b = appendAnswerStr(b, "command", r.Command, true)
	b = appendAnswerList(b, "argv", r.Argv)
	b = appendAnswerList(b, "env_keys", r.EnvKeys)
	b = appendAnswerStr(b, "cwd", r.Cwd, true)
	if l := r.Limits; l != nil {
		b = append(b, `,"limits":{"timeout_ms":`...)
		b = strconv.AppendInt(b, l.TimeoutMS, 10)
		b = append(b, `,"max_output_bytes":`...)
		b = strconv.AppendInt(b, l.MaxOutputBytes, 10)
		b = append(b, `,"memory_bytes":`...)
		b = strconv.AppendInt(b, l.MemoryBytes, 10)
		b = append(b, `,"pids":`...)
		b = strconv.AppendInt(b, l.Pids, 10)
		b = append(b, `,"cpu_quota":`...)
		var err error
		if b, err = appendJSONFloat(b, l.CPUQuota); err != nil {
			return b, err
		}
		b = appendAnswerStr(b, "network", l.Network, false)
		b = appendAnswerStr(b, "profile", l.Profile, false)
		b = append(b, '}')
	}
	b = appendAnswerStr(b, "policy_hash", r.PolicyHash, false)
	return append(b, '}'), nil
}

func (r *execResponse) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"request_id":`...)
	b = appendJSONStringHTML(b, r.RequestID)
	b = append(b, `,"exit_code":`...)
	b = strconv.AppendInt(b, int64(r.ExitCode), 10)
	b = appendAnswerStr(b, "signal", r.Signal, false)
	b = appendAnswerStr(b, "stdout", r.Stdout, false)
	b = appendAnswerStr(b, "stderr", r.Stderr, false)
	b = appendAnswerStr(b, "stdout_encoding", r.StdoutEncoding, true)
	b = appendAnswerStr(b, "stderr_encoding", r.StderrEncoding, true)
	b = append(b, `,"stdout_truncated":`...)
	b = strconv.AppendBool(b, r.StdoutTruncated)
	b = append(b, `,"stderr_truncated":`...)
	b = strconv.AppendBool(b, r.StderrTruncated)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, r.DurationMS, 10)
	b = appendAnswerStr(b, "ended_by", r.EndedBy, false)
	return append(b, '}'), nil
}

func (e *errorBody) appendJSON(b []byte) ([]byte, error) {
	d := &e.Error
	b = append(b, `{"error":{"code":`...)
	b = appendJSONStringHTML(b, d.Code)
	b = appendAnswerStr(b, "message", d.Message, false)
	b = appendAnswerStr(b, "request_id", d.RequestID, false)
	b = appendAnswerStr(b, "reason", d.Reason, true)
	b = appendAnswerStr(b, "field", d.Field, true)
	return append(b, '}', '}'), nil
}

// appendAnswerStr appends ,"key":"v"; nothing when omitEmpty and v is "".
func appendAnswerStr(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONStringHTML(b, v)
}

// appendAnswerList appends ,"key":[...] unless vs is empty (omitempty).
func appendAnswerList(b []byte, key string, vs []string) []byte {
	return appendList(b, key, vs, appendJSONStringHTML)
}

// appendJSONFloat appends f as encoding/json writes a float64: the shortest
// decimal, exponent form below 1e-6 and from 1e21 on, "e-07" as "e-7".
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errNotFinite
	}
	abs, format := math.Abs(f), byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

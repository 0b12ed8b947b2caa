package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// decodeJSON decodes the request body into dst strictly: JSON content type,
// no unknown fields, no trailing data, right types. Errors name the field.
func decodeJSON(c *gin.Context, dst any) error {
	mt := c.GetHeader("Content-Type")
	if mt != "application/json" { // the common spelling needs no parsing
		mt, _, _ = mime.ParseMediaType(mt)
	}
	if mt != "application/json" {
		return errInvalid("Content-Type", "the body must be application/json", fmt.Errorf("content type %q", mt))
	}
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body too large", err)
		}
		return errInvalid("", "the body could not be read", err)
	}
	return decodeStrict(data, dst)
}

// errNotUTF8 is the 400 of a body that is not UTF-8: JSON decoding would
// silently replace the bad bytes, so the policy would judge other text.
func errNotUTF8() *HTTPError {
	e := errInvalid("", "the body is not valid UTF-8", errors.New("invalid UTF-8"))
	e.Reason = "invalid_utf8"
	return e
}

// decodeStrict is decodeJSON's parser (fuzzed on its own).
func decodeStrict(data []byte, dst any) error {
	if !utf8.Valid(data) {
		return errNotUTF8()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errInvalid("", "trailing data after the JSON object", errors.New("trailing data"))
	}
	// After decoding: the decoder has bounded the depth and the types.
	if p := checkKeys(data, jsonFieldNames(dst)); p != nil {
		key := truncate(p.Key, 64)
		msg := fmt.Sprintf("field %q appears twice (keys are compared case-insensitively)", key)
		if p.Reason == "case" {
			msg = fmt.Sprintf("field %q must be written in lower case as documented", key)
		}
		return errInvalid(key, msg, fmt.Errorf("key %q: %s", key, p.Reason))
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return errInvalid(te.Field, fmt.Sprintf("field %q must be of type %s", te.Field, te.Type.String()), err)
	case errors.As(err, &se):
		return errInvalid("", fmt.Sprintf("malformed JSON at byte %d", se.Offset), err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errInvalid("", "the body is empty or truncated", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The name is the client's: bounded, or a 1 MB key comes back twice
		// in the answer and once in the access log.
		field := truncate(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), 64)
		return errInvalid(field, fmt.Sprintf("unknown field %q", field), fmt.Errorf("unknown field %q", field))
	}
	return errInvalid("", "malformed JSON", err)
}

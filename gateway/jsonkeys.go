package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode"
)

// keyProblem is a JSON object key that encoding/json would accept but that
// a proxy, WAF or log reader would see differently: a key repeated in one
// object (encoding/json keeps the last one), two keys equal but for case
// (encoding/json matches struct fields case-insensitively, so
// {"command":"echo","Command":"rm"} runs rm), or a top-level key that only
// case-folds to a field name ({"Argſ":[...]} fills args).
type keyProblem struct {
	Key    string
	Reason string // "duplicate" or "case"
}

// checkKeys walks data and reports the first key problem; exact, when not
// nil, is the set of names the top-level object may use as written.
// Malformed JSON is not reported here: the decoder reports it.
func checkKeys(data []byte, exact map[string]bool) *keyProblem {
	type frame struct {
		obj, expectKey bool
		keys           map[string]bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].expectKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			if n == 1 && exact != nil && !exact[k] {
				for name := range exact {
					if foldKey(name) == foldKey(k) {
						return &keyProblem{Key: k, Reason: "case"}
					}
				}
			}
			f := foldKey(k)
			if top.keys[f] {
				return &keyProblem{Key: k, Reason: "duplicate"}
			}
			top.keys[f], top.expectKey = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, expectKey: true, keys: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// foldKey maps s to one representative of its case-folding class, the
// equivalence encoding/json uses to match keys to struct fields.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// jsonFieldNames is the set of JSON names of the struct dst points to (nil
// when dst is not a pointer to a struct).
func jsonFieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

package gateway

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
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
// Malformed JSON is not reported here (the decoder reports it): on the
// first byte that does not fit, checkKeys stops and reports nothing more.
//
// It is a byte scanner, not a tokenizer: it runs on every request body and
// token, and encoding/json's Token API cost more than the decoding itself.
// Keys are compared with strings.EqualFold, the same simple case folding
// foldKey spells out (TestCheckKeysMatchesTokenWalk and
// FuzzCheckKeysEquivalent hold it to the token-walking reference in
// jsonkeys_test.go).
func checkKeys(data []byte, exact map[string]bool) *keyProblem {
	ks := keyScanner{data: data, exact: exact}
	ks.run()
	return ks.found
}

// keyScanner is checkKeys' state: an explicit stack, so nesting costs no
// Go stack.
type keyScanner struct {
	data  []byte
	i     int
	exact map[string]bool
	stack []keyFrame
	found *keyProblem
}

// keyFrame is one open object or array.
type keyFrame struct {
	obj    bool
	keys   []string        // the keys so far, as decoded
	folded map[string]bool // foldKey of every key, once keys is long
}

// maxLinearKeys is how many keys an object compares one by one before it
// switches to a map (a body with 100k keys must not cost 10^10 compares).
const maxLinearKeys = 16

// run scans one value and everything nested in it. Each step either
// consumes input or stops, so it ends on any input.
func (ks *keyScanner) run() {
	if !ks.value() {
		return
	}
	for len(ks.stack) > 0 {
		ks.space()
		if ks.i >= len(ks.data) {
			return
		}
		top := &ks.stack[len(ks.stack)-1]
		c := ks.data[ks.i]
		switch {
		case c == ',' && top.obj:
			ks.i++
			if !ks.member() {
				return
			}
		case c == ',':
			ks.i++
			if !ks.value() {
				return
			}
		case c == '}' && top.obj, c == ']' && !top.obj:
			ks.i++
			ks.stack = ks.stack[:len(ks.stack)-1]
		default:
			return
		}
	}
}

// value scans a value; an object or array is opened (pushed) with its
// first member, and run's loop scans the rest. false: stop.
func (ks *keyScanner) value() bool {
	ks.space()
	if ks.i >= len(ks.data) {
		return false
	}
	switch ks.data[ks.i] {
	case '{':
		ks.i++
		ks.stack = append(ks.stack, keyFrame{obj: true})
		if ks.space(); ks.i < len(ks.data) && ks.data[ks.i] == '}' {
			ks.i++
			ks.stack = ks.stack[:len(ks.stack)-1]
			return true
		}
		return ks.member()
	case '[':
		ks.i++
		ks.stack = append(ks.stack, keyFrame{})
		if ks.space(); ks.i < len(ks.data) && ks.data[ks.i] == ']' {
			ks.i++
			ks.stack = ks.stack[:len(ks.stack)-1]
			return true
		}
		return ks.value()
	case '"':
		_, ok := ks.str()
		return ok
	}
	start := ks.i // number, true, false, null
	for ks.i < len(ks.data) && !isJSONDelim(ks.data[ks.i]) {
		ks.i++
	}
	return ks.i > start
}

// member scans `"key": value` in the innermost object and checks the key.
func (ks *keyScanner) member() bool {
	ks.space()
	k, ok := ks.str()
	if !ok {
		return false
	}
	if ks.space(); ks.i >= len(ks.data) || ks.data[ks.i] != ':' {
		return false
	}
	ks.i++
	if p := ks.key(k); p != nil {
		ks.found = p
		return false
	}
	return ks.value()
}

// key records k in the innermost object; a problem stops the scan.
func (ks *keyScanner) key(k string) *keyProblem {
	top := &ks.stack[len(ks.stack)-1]
	if len(ks.stack) == 1 && ks.exact != nil && !ks.exact[k] {
		for name := range ks.exact {
			if strings.EqualFold(name, k) {
				return &keyProblem{Key: k, Reason: "case"}
			}
		}
	}
	if top.folded != nil {
		f := foldKey(k)
		if top.folded[f] {
			return &keyProblem{Key: k, Reason: "duplicate"}
		}
		top.folded[f] = true
		return nil
	}
	for _, seen := range top.keys {
		if strings.EqualFold(seen, k) {
			return &keyProblem{Key: k, Reason: "duplicate"}
		}
	}
	top.keys = append(top.keys, k)
	if len(top.keys) > maxLinearKeys {
		top.folded = make(map[string]bool, 2*len(top.keys))
		for _, seen := range top.keys {
			top.folded[foldKey(seen)] = true
		}
		top.keys = nil
	}
	return nil
}

// str scans a string at ks.i and returns it decoded (escapes resolved as
// encoding/json resolves them).
func (ks *keyScanner) str() (string, bool) {
	if ks.i >= len(ks.data) || ks.data[ks.i] != '"' {
		return "", false
	}
	start, escaped := ks.i, false
	for ks.i++; ks.i < len(ks.data); ks.i++ {
		switch ks.data[ks.i] {
		case '\\':
			escaped = true
			ks.i++
		case '"':
			ks.i++
			raw := ks.data[start:ks.i]
			if !escaped {
				return string(raw[1 : len(raw)-1]), true
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return "", false
}

func (ks *keyScanner) space() {
	for ks.i < len(ks.data) {
		switch ks.data[ks.i] {
		case ' ', '\t', '\n', '\r':
			ks.i++
		default:
			return
		}
	}
}

// isJSONDelim ends a number or literal.
func isJSONDelim(c byte) bool {
	switch c {
	case ',', ']', '}', ':', '"', '[', '{', ' ', '\t', '\n', '\r':
		return true
	}
	return false
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

// fieldNamesCache maps a struct type to its jsonFieldNames (read-only).
var fieldNamesCache sync.Map

// jsonFieldNames is the set of JSON names of the struct dst points to (nil
// when dst is not a pointer to a struct). The result is shared: read it only.
func jsonFieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	if v, ok := fieldNamesCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := structFieldNames(t.Elem())
	fieldNamesCache.Store(t, names)
	return names
}

func structFieldNames(t reflect.Type) map[string]bool {
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

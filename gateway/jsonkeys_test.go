package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzCheckKeys: checkKeys never panics, and what it passes encoding/json
// reads the same as a filter keeping the first of each key would: decoding
// into a map and encoding again keeps every key, so the result passes too.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{
		`{"command":"echo","Command":"cat"}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`, `{"argſ":[]}`,
		`{"\u212aey":1,"key":2}`, `{"a":[{"x":{}}],"b":"}"}`, `{`, `]`, `{"a":1}}`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	exact := jsonFieldNames(&execRequest{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = checkKeys(data, exact)
		if checkKeys(data, nil) != nil || !json.Valid(data) {
			return
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if p := checkKeys(again, nil); p != nil {
			t.Fatalf("checkKeys(%s) passed but its re-encoding %s has %+v", data, again, *p)
		}
	})
}

// checkKeysTokenWalk is the reference checkKeys is held to: the same walk
// with encoding/json's tokenizer (the implementation before the scanner).
func checkKeysTokenWalk(data []byte, exact map[string]bool) *keyProblem {
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

var checkKeysCases = []string{
	`{"command":"echo","Command":"cat"}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`, `{"argſ":[]}`, `{"ARGS":[]}`,
	`{"\u212aey":1,"key":2}`, `{"a":[{"x":{}}],"b":"}"}`, `{"a":1,"b":{"a":2},"c":[{"a":3,"A":4}]}`,
	`{"k\u0065y":1,"key":2}`, `{"k\"":1,"k\\":2,"k\"":3}`, `{"command":"echo","args":["a","b"],"env":{"A":"1","a":"2"}}`,
	` { "a" : 1 , "b" : [ 1 , { "c" : null , "C" : true } ] } `, `{}`, `[]`, `[[],{},""]`, `"x"`, `12`, `null`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"A":19}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"s":19}`,
	`{`, `]`, `{"a":1}}`, `{"a" 1}`, `{"a":1,,"a":2}`, `{"a":1 "a":2}`, `{"a":"\`, `[1,2`, `{"a":{"b":1,"b"`,
}

// TestCheckKeysMatchesTokenWalk: the scanner finds what the token walk
// finds (same key, same reason) on valid JSON, also with the top-level
// names of an exec request.
func TestCheckKeysMatchesTokenWalk(t *testing.T) {
	exact := jsonFieldNames(&execRequest{})
	for _, s := range checkKeysCases {
		for _, ex := range []map[string]bool{nil, exact} {
			got, want := checkKeys([]byte(s), ex), checkKeysTokenWalk([]byte(s), ex)
			if !json.Valid([]byte(s)) {
				if got != nil && want == nil {
					t.Errorf("%s (malformed): got %+v, the token walk found nothing", s, *got)
				}
				continue
			}
			if (got == nil) != (want == nil) || (got != nil && *got != *want) {
				t.Errorf("%s exact=%v: got %v, want %v", s, ex != nil, got, want)
			}
		}
	}
}

// FuzzCheckKeysEquivalent: on any valid JSON the scanner agrees with the
// token walk; on any input it ends without panicking.
func FuzzCheckKeysEquivalent(f *testing.F) {
	for _, s := range checkKeysCases {
		f.Add([]byte(s))
	}
	exact := jsonFieldNames(&execRequest{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got := checkKeys(data, exact)
		if !json.Valid(data) {
			return
		}
		want := checkKeysTokenWalk(data, exact)
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Fatalf("%q: got %v, want %v", data, got, want)
		}
		got, want = checkKeys(data, nil), checkKeysTokenWalk(data, nil)
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Fatalf("%q (no exact): got %v, want %v", data, got, want)
		}
	})
}

package gateway

import (
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

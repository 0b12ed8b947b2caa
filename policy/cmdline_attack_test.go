package policy

import (
	"errors"
	"slices"
	"testing"
)

// TestSplitCmdlineAttacks: shell syntax stays literal words (there is no
// shell), Unicode separators that some splitters treat as whitespace are
// either refused or kept inside the word, and quoting never drops a word.
func TestSplitCmdlineAttacks(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // nil: refused with ErrBadCmdline
	}{
		{"command substitution is a literal word", "echo $(id) `id`", []string{"echo", "$(id)", "`id`"}},
		{"redirection is a literal word", "cat a >/etc/passwd", []string{"cat", "a", ">/etc/passwd"}},
		{"empty double-quoted word kept", `echo ""`, []string{"echo", ""}},
		{"empty single-quoted word kept", `echo ''`, []string{"echo", ""}},
		{"escaped space joins", `echo a\ b`, []string{"echo", "a b"}},
		{"adjacent quotes join", `echo a"b"'c'`, []string{"echo", "abc"}},
		{"no-break space is not a separator", "echo a\u00a0b", []string{"echo", "a\u00a0b"}},
		{"ideographic space is not a separator", "echo a\u3000b", []string{"echo", "a\u3000b"}},
		{"line separator U+2028 refused", "echo a\u2028b", nil},
		{"paragraph separator U+2029 refused", "echo a\u2029b", nil},
		{"next line U+0085 refused", "echo a\u0085b", nil},
		{"vertical tab refused", "echo a\vb", nil},
		{"form feed refused", "echo a\fb", nil},
		{"bidi override refused", "echo a\u202eb", nil},
		{"byte-order mark refused", "\ufeffecho a", nil},
		{"overlong UTF-8 refused", "echo \xc0\xaf", nil},
		{"surrogate half refused", "echo \xed\xa0\x80", nil},
		{"comment after a quote refused", `echo "a" #x`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitCmdline(tt.in)
			if tt.want == nil {
				if !errors.Is(err, ErrBadCmdline) {
					t.Errorf("%q: got %q, %v, want ErrBadCmdline", tt.in, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("%q: got %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

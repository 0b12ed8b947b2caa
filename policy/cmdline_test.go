package policy

import (
	"errors"
	"slices"
	"testing"
)

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"plain", "git log -n 5", []string{"git", "log", "-n", "5"}, false},
		{"double quotes", `echo "a b" c`, []string{"echo", "a b", "c"}, false},
		{"single quotes keep backslash", `echo 'a\qb'`, []string{"echo", `a\qb`}, false},
		{"shlex: backslash in double quotes escapes any char", `echo "a\qb"`, []string{"echo", "aqb"}, false},
		{"escaped quote", `echo "a\"b"`, []string{"echo", `a"b`}, false},
		{"no expansion", `echo $HOME ~ *`, []string{"echo", "$HOME", "~", "*"}, false},
		{"shell operators are words", `ls ; rm -rf /`, []string{"ls", ";", "rm", "-rf", "/"}, false},
		{"extra spaces", "  ls   -l  ", []string{"ls", "-l"}, false},
		{"comment", "git log # -c x", nil, true},
		{"hash in word", "echo a#b", nil, true},
		{"quoted hash", `echo "#"`, nil, true},
		{"newline", "ls\n-l", nil, true},
		{"carriage return", "ls\r", nil, true},
		{"tab", "ls\t-l", nil, true},
		{"NUL", "ls\x00", nil, true},
		{"ESC", "echo \x1b[2J", nil, true},
		{"C1", "echo \u009b2J", nil, true},
		{"invalid UTF-8", "echo \xff", nil, true},
		{"unterminated quote", `echo "abc`, nil, true},
		{"trailing backslash", `echo abc\`, nil, true},
		{"empty", "", nil, true},
		{"only spaces", "   ", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitCmdline(tt.in)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrBadCmdline) {
					t.Fatalf("got %q, %v; want ErrBadCmdline", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

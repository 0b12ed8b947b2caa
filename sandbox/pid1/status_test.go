package pid1

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    syscall.WaitStatus
		wantErr error
		stage   Stage
		errno   syscall.Errno
	}{
		{"exit 0", []byte{'W', 0, 0, 0, 0}, 0, nil, 0, 0},
		{"exit 42", []byte{'W', 0, 42, 0, 0}, 42 << 8, nil, 0, 0},
		{"exit 255", []byte{'W', 0, 255, 0, 0}, 255 << 8, nil, 0, 0},
		{"SIGSEGV", []byte{'W', 11, 0, 0, 0}, 11, nil, 0, 0},
		{"SIGSEGV with core", []byte{'W', 0x8b, 0, 0, 0}, 0x8b, nil, 0, 0},
		{"empty", nil, 0, ErrNoStatus, 0, 0},
		{"short wait", []byte{'W', 0, 0}, 0, ErrBadStatus, 0, 0},
		{"long wait", []byte{'W', 0, 0, 0, 0, 0}, 0, ErrBadStatus, 0, 0},
		{"stopped", []byte{'W', 0x7f, 19, 0, 0}, 0, ErrBadStatus, 0, 0},
		{"continued", []byte{'W', 0xff, 0xff, 0, 0}, 0, ErrBadStatus, 0, 0},
		{"exec ENOENT", []byte{'E', byte(StageExec), 2, 0, 0, 0}, 0, nil, StageExec, syscall.ENOENT},
		{"filter EINVAL", []byte{'E', byte(StageFilterSize), 22, 0, 0, 0}, 0, nil, StageFilterSize, syscall.EINVAL},
		{"stage 0", []byte{'E', 0, 2, 0, 0, 0}, 0, ErrBadStatus, 0, 0},
		{"stage out of range", []byte{'E', 200, 2, 0, 0, 0}, 0, ErrBadStatus, 0, 0},
		{"short error", []byte{'E', 1, 2}, 0, ErrBadStatus, 0, 0},
		{"two records", []byte{'W', 0, 0, 0, 0, 'W', 0, 0, 0, 0}, 0, ErrBadStatus, 0, 0},
		{"unknown type", []byte{'X', 0, 0, 0, 0}, 0, ErrBadStatus, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus(tt.in)
			if tt.stage != 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Stage != tt.stage || pe.Errno != tt.errno || !errors.Is(err, tt.errno) {
					t.Fatalf("got %v, want %s failing with %v", err, tt.stage, tt.errno)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || (err == nil && got != tt.want) {
				t.Errorf("got %#x, %v; want %#x, %v", uint32(got), err, uint32(tt.want), tt.wantErr)
			}
		})
	}
}

func TestStageNames(t *testing.T) {
	seen := map[string]bool{}
	for s := Stage(1); s < stageCount; s++ {
		n := s.String()
		if n == "?" || seen[n] {
			t.Errorf("stage %d: name %q missing or repeated", s, n)
		}
		seen[n] = true
	}
	for _, s := range []Stage{0, stageCount, -1, 1000} {
		if s.String() != "?" {
			t.Errorf("stage %d: got %q, want ?", s, s.String())
		}
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		tty  bool
		argv []string
		want []string
		bad  bool
	}{
		{"pipe", false, []string{"/bin/echo", "--", "x"}, []string{Path, "pipe", "--", "/bin/echo", "--", "x"}, false},
		{"tty", true, []string{"/bin/sh"}, []string{Path, "tty", "--", "/bin/sh"}, false},
		{"relative command", false, []string{"true"}, nil, true},
		{"no command", false, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.tty, tt.argv)
			if (err != nil) != tt.bad || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, tt.want, tt.bad)
			}
		})
	}
}

func TestEnvFile(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
		bad  bool
	}{
		{"two", []string{"A=1", "B=x y"}, "A=1\x00B=x y\x00", false},
		{"empty", nil, "", false},
		{"value with = and --", []string{"A==--"}, "A==--\x00", false},
		{"no =", []string{"A"}, "", true},
		{"NUL", []string{"A=\x00B=2"}, "", true},
		{"too big", []string{"A=" + strings.Repeat("x", MaxEnvBytes)}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := EnvFile(tt.env)
			if (err != nil) != tt.bad {
				t.Fatalf("got %v, want error %v", err, tt.bad)
			}
			if err != nil {
				return
			}
			defer f.Close()
			b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
			if err != nil || string(b) != tt.want {
				t.Errorf("got %q, %v; want %q", b, err, tt.want)
			}
		})
	}
}

// FuzzParseStatus: no input panics; what parses is an exit, a death by
// signal or a known stage.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte{'W', 0, 42, 0, 0})
	f.Add([]byte{'W', 9, 0, 0, 0})
	f.Add([]byte{'E', byte(StageExec), 2, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ws, err := ParseStatus(b)
		var pe *Error
		switch {
		case err == nil:
			if !ws.Exited() && !ws.Signaled() {
				t.Errorf("%x: accepted wait status %#x", b, uint32(ws))
			}
		case errors.As(err, &pe):
			if pe.Stage <= 0 || pe.Stage >= stageCount {
				t.Errorf("%x: accepted stage %d", b, pe.Stage)
			}
		case !errors.Is(err, ErrNoStatus) && !errors.Is(err, ErrBadStatus):
			t.Errorf("%x: unexpected error %v", b, err)
		}
	})
}

package policy

import (
	"math"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"4096", 4096, false},
		{"4KiB", 4096, false},
		{"256MiB", 256 << 20, false},
		{"1.5GiB", 3 << 29, false},
		{"1MB", 1000000, false},
		{"2kB", 2000, false},
		{"10B", 10, false},
		{" 64 KiB ", 64 << 10, false},
		{"", 0, true},
		{"-1", 0, true},
		{"1XB", 0, true},
		{"0x10", 0, true},
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"1e30", 0, true},
		{"9999999TiB", 0, true},
		{"KiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want && !tt.wantErr {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := Size(256 << 20).String(); got != "256MiB" {
		t.Errorf("got %s, want 256MiB", got)
	}
	if got := Size(1000).String(); got != "1000" {
		t.Errorf("got %s, want 1000", got)
	}
}

func TestParseDurationUmask(t *testing.T) {
	if d, err := ParseDuration("1m30s"); err != nil || time.Duration(d) != 90*time.Second {
		t.Errorf("got %v, %v; want 1m30s", d, err)
	}
	for _, bad := range []string{"", "30", "-1s", "soon"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q): got no error, want one", bad)
		}
	}
	for in, want := range map[string]Umask{"0077": 0o77, "022": 0o22, "0o27": 0o27, "0": 0} {
		if got, err := ParseUmask(in); err != nil || got != want {
			t.Errorf("ParseUmask(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "8", "0999", "01777", "abc"} {
		if _, err := ParseUmask(bad); err == nil {
			t.Errorf("ParseUmask(%q): got no error, want one", bad)
		}
	}
	if got := Umask(0o77).String(); got != "0077" {
		t.Errorf("got %s, want 0077", got)
	}
}

func TestPathComponents(t *testing.T) {
	tests := []struct {
		p, dir string
		want   bool
	}{
		{"/ws/alice", "/ws/alice", true},
		{"/ws/alice/x", "/ws/alice", true},
		{"/ws/alice2", "/ws/alice", false},
		{"/ws/alice2/x", "/ws/alice", false},
		{"/ws", "/ws/alice", false},
		{"/etcetera", "/etc", false},
		{"/anything", "/", true},
	}
	for _, tt := range tests {
		if got := within(tt.p, tt.dir); got != tt.want {
			t.Errorf("within(%q, %q) = %v, want %v", tt.p, tt.dir, got, tt.want)
		}
	}
	if !overlaps("/var/lib", "/var/lib/execgate/ws") || overlaps("/var/lib2", "/var/lib") {
		t.Errorf("overlaps is not component-wise")
	}
}

func TestEditDistanceHint(t *testing.T) {
	names := []string{"commands", "defaults", "env", "profiles", "roles", "roots"}
	tests := map[string]string{
		"comands":  ` (did you mean "commands"?)`,
		"rols":     ` (did you mean "roles"?)`,
		"profiels": ` (did you mean "profiles"?)`,
	}
	for in, want := range tests {
		if got := didYouMean(in, names); got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", in, got, want)
		}
	}
	if got := EditDistance("kitten", "sitting", math.MaxInt); got != 3 {
		t.Errorf("got %d, want 3", got)
	}
}

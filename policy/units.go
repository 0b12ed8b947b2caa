package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written human-readably: a plain integer (bytes) or a
// number with a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB
// (powers of 1000). Examples: 4096, 4KiB, 256MiB, 1.5GiB.
type Size int64

// Duration is a time.Duration written as Go parses it (30s, 1m30s, 500ms).
type Duration time.Duration

// Umask is a file mode creation mask written in octal as a string ("0077").
type Umask uint32

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a human-readable size (see Size).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return checkedSize(float64(n)*mult, s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(t, "xXpP_") {
		return 0, fmt.Errorf("invalid size %q (want e.g. 4096, 64KiB, 256MiB, 1GiB)", s)
	}
	return checkedSize(f*mult, s)
}

func checkedSize(v float64, orig string) (Size, error) {
	if v < 0 {
		return 0, fmt.Errorf("size %q is negative", orig)
	}
	if v >= math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", orig)
	}
	return Size(int64(v)), nil
}

// String renders the size with the largest binary unit that divides it.
func (s Size) String() string {
	n := int64(s)
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.name)
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseDuration parses a non-negative Go duration ("30s").
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 500ms, 30s, 2m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return Duration(d), nil
}

// String renders the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseUmask parses an octal umask ("0077", "022").
func ParseUmask(s string) (Umask, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0o"), "0O")
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil || t == "" || v > 0o777 {
		return 0, fmt.Errorf("invalid umask %q (want an octal string such as \"0077\")", s)
	}
	return Umask(v), nil
}

// String renders the umask as four octal digits.
func (u Umask) String() string { return fmt.Sprintf("%04o", uint32(u)) }

func timeDuration(d Duration) time.Duration { return time.Duration(d) }

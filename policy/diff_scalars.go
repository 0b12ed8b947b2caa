package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// This file holds the small comparisons of Diff: environments, switches,
// numeric limits and bounds, and how values are rendered in a diff line.

func (d *differ) env(id string, o, n Env) {
	for _, k := range sortedMapKeys(o.Set, n.Set) {
		ov, oin := o.Set[k]
		nv, nin := n.Set[k]
		switch {
		case !oin:
			d.add(Changed, id, "env %s=%q set", k, nv)
		case !nin:
			d.add(Changed, id, "env %s (was %q) no longer set", k, ov)
		case ov != nv:
			d.add(Changed, id, "env %s=%q -> %q", k, ov, nv)
		}
	}
	for _, k := range sortedMapKeys(o.Client, n.Client) {
		ov, oin := o.Client[k]
		nv, nin := n.Client[k]
		switch {
		case !oin:
			d.add(Loosened, id, "client may set env %s matching %q", k, nv)
		case !nin:
			d.add(Tightened, id, "client may no longer set env %s", k)
		case ov != nv:
			d.add(Changed, id, "client env %s pattern %q -> %q", k, ov, nv)
		}
	}
	for _, k := range sortedMapKeys(o.Secrets, n.Secrets) {
		ov, oin := o.Secrets[k]
		nv, nin := n.Secrets[k]
		switch {
		case !oin:
			d.add(Changed, id, "secret env %s from key %s added", k, nv)
		case !nin:
			d.add(Changed, id, "secret env %s removed", k)
		case ov != nv:
			d.add(Changed, id, "secret env %s key %s -> %s", k, ov, nv)
		}
	}
}

func sortedMapKeys(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// toggle reports a setting whose presence is the tighter state.
func (d *differ) toggle(id, what, o, n string, on func(string) bool) {
	switch {
	case o == n:
	case on(o) && !on(n):
		d.add(Loosened, id, "%s %q removed", what, o)
	case !on(o) && on(n):
		d.add(Tightened, id, "%s %q added", what, n)
	default:
		d.add(Changed, id, "%s %q -> %q", what, o, n)
	}
}

// flagBool reports a parsing convenience whose enabling accepts more forms.
func (d *differ) flagBool(id, what string, o, n bool) {
	if o == n {
		return
	}
	if n {
		d.add(Loosened, id, "%s enabled", what)
	} else {
		d.add(Tightened, id, "%s disabled", what)
	}
}

func (d *differ) limitsDiff(id string, o, n Limits) {
	d.num(id, "max_arg_bytes", int64(o.MaxArgBytes), int64(n.MaxArgBytes), false, sizeText)
	d.num(id, "max_args", int64(o.MaxArgs), int64(n.MaxArgs), false, intText)
	d.num(id, "max_total_bytes", int64(o.MaxTotalBytes), int64(n.MaxTotalBytes), false, sizeText)
}

func sizeText(v int64) string { return Size(v).String() }

func intText(v int64) string { return fmt.Sprint(v) }

// num reports a limit where a larger value allows more; with
// zeroUnlimited, 0 means no limit at all.
func (d *differ) num(id, key string, o, n int64, zeroUnlimited bool, text func(int64) string) {
	if o == n {
		return
	}
	render := func(v int64) string {
		if zeroUnlimited && v == 0 {
			return "unlimited"
		}
		return text(v)
	}
	looser := n > o
	if zeroUnlimited && (o == 0 || n == 0) {
		looser = n == 0
	}
	k := Tightened
	if looser {
		k = Loosened
	}
	d.add(k, id, "%s %s -> %s", key, render(o), render(n))
}

// describeValue renders a value type for a diff line.
func describeValue(v Value) string {
	switch v.Type {
	case TypeInt:
		return "int " + bound(v.Min, "-inf") + ".." + bound(v.Max, "+inf")
	case TypeEnum:
		return "one of " + strings.Join(v.Values, "|")
	case TypeRegex:
		return fmt.Sprintf("matching %q", v.Pattern)
	case TypePath:
		s := "path in " + strings.Join(v.Roots, ", ")
		if !v.MustExist {
			s += ", may not exist"
		}
		return s
	case TypeText:
		s := fmt.Sprintf("text up to %d bytes", v.MaxLen)
		if v.Multiline {
			s += ", multi-line"
		}
		return s
	}
	return "no value"
}

func bound(p *int64, inf string) string {
	if p == nil {
		return inf
	}
	return fmt.Sprint(*p)
}

// intBound compares an int bound; nil is unbounded. For a lower bound a
// smaller value allows more, for an upper bound a larger one.
func (d *differ) intBound(id, what string, o, n *int64, lower bool) {
	if (o == nil) == (n == nil) && (o == nil || *o == *n) {
		return
	}
	var looser bool
	switch {
	case n == nil:
		looser = true
	case o == nil:
		looser = false
	case lower:
		looser = *n < *o
	default:
		looser = *n > *o
	}
	k := Tightened
	if looser {
		k = Loosened
	}
	inf := "+inf"
	if lower {
		inf = "-inf"
	}
	d.add(k, id, "%s %s -> %s", what, bound(o, inf), bound(n, inf))
}

// shortSHA is the first 12 hex digits of data's SHA-256.
func shortSHA(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

func seccompText(p Profile) string {
	if p.SeccompFile != "" {
		return p.Seccomp + " (" + p.SeccompFile + ")"
	}
	return p.Seccomp
}

func (d *differ) ids(id, what string, o, n uint32) {
	if o == n {
		return
	}
	k := Changed
	switch {
	case n == 0:
		k = Loosened
	case o == 0:
		k = Tightened
	}
	d.add(k, id, "%s %d -> %d", what, o, n)
}

func rootMode(r *Root) string {
	switch {
	case r.Workspace:
		return "per-user workspace"
	case r.ReadOnly:
		return "read-only"
	}
	return "writable"
}

func hasRole(s *Set, name string) bool {
	for _, r := range s.Roles() {
		if r.Name == name {
			return true
		}
	}
	return false
}

package policy

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// This file compares two compiled policy sets for reviewers (`execgate
// policy diff`). It works on the compiled form, never the text, so a
// reordered or recommented but equivalent file reports no difference. Every
// difference is classified: Loosened (NEW allows something OLD did not),
// Tightened (NEW allows less), or Changed (a difference whose direction a
// program cannot judge, such as a new regex or a new binary path).

// ChangeKind classifies one difference.
type ChangeKind string

// The change kinds, in report order.
const (
	Loosened  ChangeKind = "loosened"
	Tightened ChangeKind = "tightened"
	Changed   ChangeKind = "changed"
)

// Change is one difference between two sets.
type Change struct {
	Kind  ChangeKind `json:"kind"`
	Where string     `json:"where"` // rule id, e.g. "commands.git.subcommands.log"
	What  string     `json:"what"`
}

// Diff compares two compiled sets: what new allows that old did not, what
// it tightened and what changed otherwise. The result is sorted by kind,
// place and text; it is empty when the sets are equivalent.
func Diff(old, new *Set) []Change {
	d := &differ{old: old, new: new}
	d.commands()
	d.roles()
	d.roots()
	d.profiles()
	sort.Slice(d.out, func(i, j int) bool {
		a, b := d.out[i], d.out[j]
		if a.Kind != b.Kind {
			return kindRank(a.Kind) < kindRank(b.Kind)
		}
		if a.Where != b.Where {
			return a.Where < b.Where
		}
		return a.What < b.What
	})
	return slices.Compact(d.out)
}

func kindRank(k ChangeKind) int {
	switch k {
	case Loosened:
		return 0
	case Tightened:
		return 1
	}
	return 2
}

// WriteDiff renders changes for a reviewer, one section per kind.
func WriteDiff(w io.Writer, changes []Change) error {
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "no difference: the two policies allow the same")
		return err
	}
	titles := map[ChangeKind]string{
		Loosened:  "NEW allows what OLD did not",
		Tightened: "NEW tightens",
		Changed:   "changed (judge by hand)",
	}
	var b strings.Builder
	for _, k := range []ChangeKind{Loosened, Tightened, Changed} {
		var sect []Change
		for _, c := range changes {
			if c.Kind == k {
				sect = append(sect, c)
			}
		}
		if len(sect) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s (%d):\n", titles[k], len(sect))
		for _, c := range sect {
			fmt.Fprintf(&b, "  %s: %s\n", c.Where, c.What)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type differ struct {
	old, new *Set
	out      []Change
}

func (d *differ) add(k ChangeKind, where, format string, args ...any) {
	d.out = append(d.out, Change{Kind: k, Where: where, What: fmt.Sprintf(format, args...)})
}

// members reports the differences of two sorted string lists: an element
// only in new is a change of kind grow, one only in old the opposite kind.
// Elements in skip (already reported on an enclosing rule) are left out.
func (d *differ) members(where, what string, old, new []string, grow ChangeKind, skip ...[]string) {
	shrink := Tightened
	if grow == Tightened {
		shrink = Loosened
	} else if grow == Changed {
		shrink = Changed
	}
	skipped := func(x string) bool {
		for _, s := range skip {
			if slices.Contains(s, x) {
				return true
			}
		}
		return false
	}
	for _, x := range new {
		if !slices.Contains(old, x) && !skipped(x) {
			d.add(grow, where, "%s %s added", what, x)
		}
	}
	for _, x := range old {
		if !slices.Contains(new, x) && !skipped(x) {
			d.add(shrink, where, "%s %s removed", what, x)
		}
	}
}

// who returns every role of s whose closure reaches one of roles: the roles
// that may actually run a rule that names roles.
func who(s *Set, roles []string) []string {
	var out []string
	for _, r := range s.Roles() {
		if intersects(r.Closure, roles) {
			out = append(out, r.Name)
		}
	}
	return out
}

func (d *differ) commands() {
	for _, oc := range d.old.Commands() {
		if _, ok := d.new.Command(oc.Name); !ok {
			d.add(Tightened, oc.ID, "command removed")
		}
	}
	for _, nc := range d.new.Commands() {
		oc, ok := d.old.Command(nc.Name)
		if !ok {
			d.add(Loosened, nc.ID, "new command %s (%s), run by roles [%s] in profile %s",
				nc.Name, nc.Path, strings.Join(who(d.new, reachable(&nc.Grammar)), ", "), nc.Profile)
			continue
		}
		d.command(oc, nc)
	}
}

// reachable is every role named anywhere in a grammar tree.
func reachable(g *Grammar) []string {
	out := append([]string(nil), g.Roles...)
	for _, sc := range g.Subcommands {
		out = append(out, reachable(&sc.Grammar)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (d *differ) command(oc, nc *Command) {
	id := nc.ID
	if oc.Path != nc.Path {
		d.add(Changed, id, "binary %s -> %s", oc.Path, nc.Path)
	}
	switch {
	case oc.SHA256 != "" && nc.SHA256 == "":
		d.add(Loosened, id, "sha256 pin removed")
	case oc.SHA256 == "" && nc.SHA256 != "":
		d.add(Tightened, id, "sha256 pin added")
	case oc.SHA256 != nc.SHA256:
		d.add(Changed, id, "sha256 pin %s -> %s", oc.SHA256, nc.SHA256)
	}
	if oc.Cwd != nc.Cwd {
		d.add(Changed, id, "working directory root %s -> %s", oc.Cwd, nc.Cwd)
	}
	if oc.Profile != nc.Profile {
		d.add(Changed, id, "profile %s -> %s", oc.Profile, nc.Profile)
		op, _ := d.old.Profile(oc.Profile)
		np, _ := d.new.Profile(nc.Profile)
		d.profileFields(id+" (profile "+oc.Profile+" -> "+nc.Profile+")", op, np)
		d.members(id, "mount", d.old.ProfileMounts(oc.Profile), d.new.ProfileMounts(nc.Profile), Loosened)
	}
	d.env(id, oc.Env, nc.Env)
	d.grammar(&oc.Grammar, &nc.Grammar, nil)
}

// inherited is what an enclosing grammar's changes already explain: the
// roles and deny entries that differ there, and its old and new settings
// (a subcommand that inherits a changed setting changes the same way).
type inherited struct {
	roles, deny []string
	old, new    *Grammar
}

// sameAsParent reports whether a subcommand's setting moved exactly as its
// parent's did, so the parent's line already says it.
func sameAsParent[T comparable](up *inherited, get func(*Grammar) T, o, n *Grammar) bool {
	return up.old != nil && get(o) == get(up.old) && get(n) == get(up.new)
}

// symDiff is every element in exactly one of two sorted lists.
func symDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

func (d *differ) grammar(o, n *Grammar, up *inherited) {
	id := n.ID
	if up == nil {
		up = &inherited{}
	}
	oldWho, newWho := who(d.old, o.Roles), who(d.new, n.Roles)
	d.members(id, "role", oldWho, newWho, Loosened, up.roles)
	d.members(id, "denied flag", o.Deny, n.Deny, Tightened, up.deny)
	here := &inherited{roles: symDiff(oldWho, newWho), deny: symDiff(o.Deny, n.Deny), old: o, new: n}
	if !sameAsParent(up, func(g *Grammar) string { return g.EndOfOptions }, o, n) {
		d.toggle(id, "end_of_options", o.EndOfOptions, n.EndOfOptions, func(v string) bool { return v != "" })
	}
	if !sameAsParent(up, func(g *Grammar) bool { return g.Bundle }, o, n) {
		d.flagBool(id, "bundled short flags", o.Bundle, n.Bundle)
	}
	if !sameAsParent(up, func(g *Grammar) bool { return g.PrefixMatch }, o, n) {
		d.flagBool(id, "long-flag prefix matching", o.PrefixMatch, n.PrefixMatch)
	}
	if o.Order != n.Order && !sameAsParent(up, func(g *Grammar) string { return g.Order }, o, n) {
		d.add(Changed, id, "argv order %s -> %s", o.Order, n.Order)
	}
	if !sameAsParent(up, func(g *Grammar) Limits { return g.Limits }, o, n) {
		d.limitsDiff(id, o.Limits, n.Limits)
	}
	d.flags(id, o.Flags, n.Flags)
	d.positionals(id, o.Positionals, n.Positionals)
	for _, osc := range o.Subcommands {
		if _, ok := n.Subcommand(osc.Name); !ok {
			d.add(Tightened, osc.ID, "subcommand removed")
		}
	}
	for _, ns := range n.Subcommands {
		osc, ok := o.Subcommand(ns.Name)
		if !ok {
			d.add(Loosened, ns.ID, "new subcommand %s, run by roles [%s]", ns.Name, strings.Join(who(d.new, reachable(&ns.Grammar)), ", "))
			continue
		}
		d.grammar(&osc.Grammar, &ns.Grammar, here)
	}
}

func (d *differ) flags(id string, o, n []*Flag) {
	find := func(list []*Flag, canon string) *Flag {
		for _, f := range list {
			if f.Canonical == canon {
				return f
			}
		}
		return nil
	}
	for _, of := range o {
		if find(n, of.Canonical) == nil {
			d.add(Tightened, id, "flag %s removed", of.Canonical)
		}
	}
	for _, nf := range n {
		of := find(o, nf.Canonical)
		if of == nil {
			d.add(Loosened, id, "flag %s allowed (%s)", strings.Join(nf.Names, ", "), describeValue(nf.Value))
			continue
		}
		fid := id + " flag " + nf.Canonical
		d.members(fid, "spelling", of.Names, nf.Names, Loosened)
		d.members(fid, "value form", of.Forms, nf.Forms, Loosened)
		d.value(fid, "value", of.Value, nf.Value)
	}
}

func (d *differ) positionals(id string, o, n Positionals) {
	if o.Min != n.Min {
		k := Loosened
		if n.Min > o.Min {
			k = Tightened
		}
		d.add(k, id, "positionals min %d -> %d", o.Min, n.Min)
	}
	d.num(id, "positionals max", int64(o.Max), int64(n.Max), false, intText)
	for i := 0; i < max(len(o.Items), len(n.Items)); i++ {
		what := fmt.Sprintf("positional %d", i+1)
		switch {
		case i >= len(o.Items):
			d.add(Loosened, id, "%s typed %s", what, describeValue(n.Items[i]))
		case i >= len(n.Items):
			d.add(Changed, id, "%s no longer typed %s", what, describeValue(o.Items[i]))
		default:
			d.value(id, what, o.Items[i], n.Items[i])
		}
	}
	switch {
	case o.Rest == nil && n.Rest != nil:
		d.add(Loosened, id, "further positionals allowed (%s)", describeValue(*n.Rest))
	case o.Rest != nil && n.Rest == nil:
		d.add(Tightened, id, "further positionals no longer allowed")
	case o.Rest != nil:
		d.value(id, "further positionals", *o.Rest, *n.Rest)
	}
}

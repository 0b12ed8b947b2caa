package policy

import (
	"fmt"
	"strings"
)

// level is one matched grammar level: its flags and, below the command,
// the subcommand word that selected it.
type level struct {
	word  string
	flags []flagUse
}

// match walks the grammar tree over args: each level's flags, then either a
// subcommand word (descend) or positionals at the leaf. It returns the
// final argv (Argv[0] is the binary path) and the leaf grammar.
func (d *decider) match(args []string, roles []string) ([]string, *Grammar, *fail) {
	g := &d.cmd.Grammar
	var levels []level
	word := ""
	for {
		sc := &argScanner{d: d, g: g, args: args}
		pos, next, f := sc.scanLevel()
		if f != nil {
			return nil, nil, f
		}
		levels = append(levels, level{word: word, flags: sc.flags})
		if next == nil {
			if f := d.leafChecks(g, roles, args, pos); f != nil {
				return nil, nil, f
			}
			return buildArgv(d.cmd.Path, levels, g, pos), g, nil
		}
		if d.tr.on {
			d.tr.add(next.Rule, "match", "subcommand "+next.Name)
		}
		word, args, g = next.Name, args[sc.i:], &next.Grammar
	}
}

// scanLevel consumes flags and, at a grammar with subcommands, the
// subcommand word (returned as next with sc.i just past it); at a leaf it
// collects the positionals.
func (sc *argScanner) scanLevel() ([]string, *Subcommand, *fail) {
	var pos []string
	ended := false
	for sc.i < len(sc.args) {
		a := sc.args[sc.i]
		if !ended && a == "--" {
			ended = true
			sc.i++
			continue
		}
		word, _, _ := strings.Cut(a, "=")
		isFlag := !ended && len(a) > 1 && a[0] == '-'
		if (isFlag || len(sc.g.Subcommands) > 0) && strings.ContainsAny(word, "\n\t") {
			return nil, nil, sc.deny(ReasonControlCharacter, "newline or tab outside multi-line text")
		}
		if isFlag {
			if f := sc.scanFlag(); f != nil {
				return nil, nil, f
			}
			continue
		}
		sc.i++
		if len(sc.g.Subcommands) > 0 {
			sub, ok := sc.g.Subcommand(a)
			if !ok || ended {
				return nil, nil, sc.deny(ReasonUnknownSubcmd, "no such subcommand")
			}
			return nil, sub, nil
		}
		pos = append(pos, a)
	}
	if len(sc.g.Subcommands) > 0 {
		return nil, nil, sc.deny(ReasonUnknownSubcmd, "a subcommand is required")
	}
	return pos, nil, nil
}

// leafChecks: roles, the leaf's own bounds and the positionals (which it
// rewrites to their canonical spelling).
func (d *decider) leafChecks(g *Grammar, roles, args, pos []string) *fail {
	if !d.s.mayRun(roles, g) {
		return &fail{reason: ReasonRoleForbidden, detail: "no role of the caller runs " + g.ID, rule: g.Rule}
	}
	if g != &d.cmd.Grammar {
		if r, _ := sanitizeArgs(args, g.Limits); r != "" {
			return &fail{reason: r, detail: "bounds of " + g.ID, rule: g.Rule}
		}
	}
	if d.tr.on {
		d.tr.add(g.Rule, "match", "roles allow "+g.ID)
	}
	p := &g.Positionals
	if len(pos) > p.Max {
		return &fail{reason: ReasonTooManyArguments, detail: "too many positionals", rule: g.Rule}
	}
	if len(pos) < p.Min {
		return &fail{reason: ReasonTooFewArguments, detail: "too few positionals", rule: g.Rule}
	}
	for i, a := range pos {
		if strings.HasPrefix(a, "-") && g.EndOfOptions == "" {
			return &fail{reason: ReasonBadArgument, detail: "positional starting with '-' without an end-of-options marker", rule: g.Rule}
		}
		if g.Order == OrderPositionalsFirst && isExpressionOperator(a) {
			return &fail{reason: ReasonBadArgument, detail: "positional the program reads as an operator of its expression", rule: g.Rule}
		}
		v := p.Rest
		if i < len(p.Items) {
			v = &p.Items[i]
		}
		if r, detail := d.checkPositional(v, a); r != "" {
			return &fail{reason: r, detail: fmt.Sprintf("positional %d: %s", i, detail), rule: g.Rule}
		}
		pos[i] = canonicalValue(v, a)
		if d.tr.on {
			d.tr.add(g.Rule, "match", fmt.Sprintf("positional %d is a valid %s", i, v.Type))
		}
	}
	return nil
}

// isExpressionOperator reports whether a word placed before an expression
// (order positionals_first, find's starting points) is read as one of its
// operators rather than as a path: "," "!" "(" ")". find would then read
// every following word as part of the expression.
func isExpressionOperator(a string) bool {
	return a == "," || a == "!" || a == "(" || a == ")"
}

// buildArgv assembles the final argv from canonical flag spellings.
func buildArgv(path string, levels []level, leaf *Grammar, pos []string) []string {
	n := 1 + len(pos) + 1
	for _, l := range levels {
		n += 1 + 2*len(l.flags)
	}
	argv := make([]string, 1, n)
	argv[0] = path
	last := len(levels) - 1
	for i, l := range levels {
		if l.word != "" {
			argv = append(argv, l.word)
		}
		if i == last && leaf.Order == OrderPositionalsFirst {
			argv = append(argv, pos...)
		}
		for _, u := range l.flags {
			argv = u.emit(argv)
		}
	}
	if leaf.Order != OrderPositionalsFirst && len(pos) > 0 {
		if leaf.EndOfOptions != "" {
			argv = append(argv, leaf.EndOfOptions)
		}
		argv = append(argv, pos...)
	}
	return argv
}

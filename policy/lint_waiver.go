package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file holds the strict linter's waivers: a comment
// "# lint:waive CODE[,CODE] -- REASON" on a rule's line or on the comment
// lines right above it drops that rule's findings of those codes.

// waiver is one "# lint:waive CODE[,CODE] -- REASON" comment.
type waiver struct {
	file      string
	line, col int // the rule the comment is attached to
	codes     []string
	reason    string
	used      bool
	malformed string
}

const waiverMark = "lint:waive"

// parseWaivers finds the waiver comments of one policy file. The YAML
// parser attaches each comment to a node, so a "#" inside a quoted or block
// scalar is never taken for one. A waiver in the comment lines directly
// above a key, or at the end of the key's line, applies to that line; one
// left over at the end of a block (a foot comment) is reported as
// misplaced.
func parseWaivers(file string, text []byte) []*waiver {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil // the loader reports the syntax error
	}
	var out []*waiver
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if depth > 100 {
			return
		}
		for _, c := range []struct {
			text string
			foot bool
		}{{n.HeadComment, false}, {n.LineComment, false}, {n.FootComment, true}} {
			for _, ln := range strings.Split(c.text, "\n") {
				if w := waiverIn(ln); w != nil {
					w.file, w.line, w.col = file, n.Line, n.Column
					if c.foot && w.malformed == "" {
						w.malformed = "is not attached to a rule: put it at the end of the rule's line or on the lines right above it"
					}
					out = append(out, w)
				}
			}
		}
		for _, ch := range n.Content {
			walk(ch, depth+1)
		}
	}
	walk(&doc, 0)
	return out
}

// waiverIn parses a waiver in one comment line, if it is one.
func waiverIn(ln string) *waiver {
	body := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(ln), "#"))
	if !strings.HasPrefix(body, waiverMark) {
		return nil
	}
	w := &waiver{}
	rest := strings.TrimSpace(strings.TrimPrefix(body, waiverMark))
	codes, reason, found := strings.Cut(rest, "--")
	w.reason = strings.TrimSpace(reason)
	for _, c := range strings.Split(codes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			w.codes = append(w.codes, c)
		}
	}
	switch {
	case len(w.codes) == 0:
		w.malformed = "names no lint code (want: # lint:waive CODE -- REASON)"
	case !found || w.reason == "":
		w.malformed = "has no reason (want: # lint:waive CODE -- REASON)"
	}
	for _, c := range w.codes {
		if c == LintBadWaiver || !slices.Contains(LintCodes(), c) {
			w.malformed = fmt.Sprintf("names unknown lint code %q", c)
		}
	}
	return w
}

// applyWaivers drops waived findings and adds a finding for every
// malformed or unused waiver.
func applyWaivers(found ErrorList, files []string, read func(string) ([]byte, error)) ErrorList {
	var ws []*waiver
	for _, f := range files {
		if text, err := read(f); err == nil {
			ws = append(ws, parseWaivers(f, text)...)
		}
	}
	var out ErrorList
	for _, e := range found {
		waived := false
		for _, w := range ws {
			if w.malformed == "" && w.file == e.File && w.line == e.Line && slices.Contains(w.codes, e.Code) {
				w.used, waived = true, true
			}
		}
		if !waived {
			out = append(out, e)
		}
	}
	for _, w := range ws {
		msg := ""
		switch {
		case w.malformed != "":
			msg = "waiver " + w.malformed
		case !w.used:
			msg = fmt.Sprintf("waiver for %s waives nothing on line %d: remove it", strings.Join(w.codes, ","), w.line)
		default:
			continue
		}
		out = append(out, &Error{File: w.file, Line: w.line, Col: w.col, Code: LintBadWaiver, Message: msg})
	}
	return out
}

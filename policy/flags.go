package policy

import (
	"sort"
	"strings"
)

// flagIndex resolves a client's spelling of a flag the way GNU getopt
// would: exact names, unique long prefixes, short clusters.
type flagIndex struct {
	exact map[string]*Flag   // every allowed spelling
	deny  map[string]RuleRef // every denied spelling -> the deny entry
	longs []string           // sorted long names, allowed and denied
}

func newFlagIndex(g *Grammar) *flagIndex {
	ix := &flagIndex{exact: map[string]*Flag{}, deny: map[string]RuleRef{}}
	seen := map[string]bool{}
	addLong := func(n string) {
		if strings.HasPrefix(n, "--") && !seen[n] {
			seen[n] = true
			ix.longs = append(ix.longs, n)
		}
	}
	for _, f := range g.Flags {
		for _, n := range f.Names {
			ix.exact[n] = f
			addLong(n)
		}
	}
	for _, n := range g.Deny {
		ix.deny[n] = g.denyRef[n]
		addLong(n)
	}
	sort.Strings(ix.longs)
	return ix
}

// resolveLong maps "--name" (without =value) to an allowed flag, or says
// why not: exact denied, exact allowed, then prefixes (a prefix of any
// denied name is denied even if it is ambiguous, so "--upload-pa" is
// caught whether or not prefix matching is on).
func (ix *flagIndex) resolveLong(name string, prefixMatch bool) (*Flag, ReasonCode, string) {
	if _, ok := ix.deny[name]; ok {
		return nil, ReasonFlagDenied, name
	}
	if f, ok := ix.exact[name]; ok {
		return f, "", ""
	}
	i := sort.SearchStrings(ix.longs, name)
	var cand *Flag
	n := 0
	for ; i < len(ix.longs) && strings.HasPrefix(ix.longs[i], name); i++ {
		full := ix.longs[i]
		if _, ok := ix.deny[full]; ok {
			return nil, ReasonFlagDenied, full
		}
		if f := ix.exact[full]; f != cand {
			cand = f
			n++
		}
	}
	if !prefixMatch || n != 1 {
		return nil, ReasonFlagNotAllowed, ""
	}
	return cand, "", ""
}

// flagUse is one matched flag with its value.
type flagUse struct {
	flag     *Flag
	value    string
	hasValue bool
}

// emit appends the canonical spelling of a matched flag to argv.
func (u flagUse) emit(argv []string) []string {
	c := u.flag.Canonical
	if !u.hasValue {
		return append(argv, c)
	}
	long := strings.HasPrefix(c, "--")
	switch {
	case long && hasForm(u.flag, FormEquals):
		return append(argv, c+"="+u.value)
	case !long && len(c) == 2 && !hasForm(u.flag, FormSeparate):
		return append(argv, c+u.value)
	}
	return append(argv, c, u.value)
}

func hasForm(f *Flag, form string) bool {
	for _, x := range f.Forms {
		if x == form {
			return true
		}
	}
	return false
}

// argScanner walks one grammar level's arguments.
type argScanner struct {
	d     *decider
	g     *Grammar
	args  []string
	i     int
	flags []flagUse
}

// use records a matched flag (and traces it, without its value).
func (sc *argScanner) use(u flagUse) {
	sc.flags = append(sc.flags, u)
	if sc.d.tr.on {
		sc.d.tr.add(u.flag.Rule, "match", "flag "+u.flag.Canonical)
	}
}

// fail is a denial while matching: reason, the argument index, detail.
type fail struct {
	reason ReasonCode
	detail string
	rule   RuleRef
}

func (sc *argScanner) deny(reason ReasonCode, detail string) *fail {
	return &fail{reason: reason, detail: detail, rule: sc.g.Rule}
}

// denied is a flag_denied failure pointing at the deny entry that fired.
func (sc *argScanner) denied(name string) *fail {
	return &fail{reason: ReasonFlagDenied, detail: "denied flag " + name, rule: sc.g.index.deny[name]}
}

// scanFlag consumes the flag at sc.args[sc.i] (and its separate value).
func (sc *argScanner) scanFlag() *fail {
	a := sc.args[sc.i]
	sc.i++
	if strings.HasPrefix(a, "--") {
		return sc.scanLong(a)
	}
	return sc.scanShort(a)
}

func (sc *argScanner) scanLong(a string) *fail {
	name, val, hasEq := strings.Cut(a, "=")
	if !isFlagWord(name[2:]) {
		return sc.deny(ReasonFlagNotAllowed, "malformed long flag")
	}
	f, why, denied := sc.g.index.resolveLong(name, sc.g.PrefixMatch)
	if denied != "" {
		return sc.denied(denied)
	}
	if why != "" {
		return sc.deny(why, "long flag "+name)
	}
	if f.Value.Type == TypeNone {
		if hasEq {
			return sc.deny(ReasonBadFlagValue, f.Canonical+" takes no value")
		}
		sc.use(flagUse{flag: f})
		return nil
	}
	if hasEq {
		if !hasForm(f, FormEquals) {
			return sc.deny(ReasonBadFlagValue, f.Canonical+": --flag=value form not allowed")
		}
		return sc.takeValue(f, val)
	}
	return sc.takeSeparate(f)
}

func (sc *argScanner) takeSeparate(f *Flag) *fail {
	if !hasForm(f, FormSeparate) {
		return sc.deny(ReasonBadFlagValue, f.Canonical+": separate value form not allowed")
	}
	if sc.i >= len(sc.args) {
		return sc.deny(ReasonBadFlagValue, f.Canonical+" needs a value")
	}
	v := sc.args[sc.i]
	sc.i++
	return sc.takeValue(f, v)
}

func (sc *argScanner) takeValue(f *Flag, v string) *fail {
	if r, detail := sc.d.checkValue(&f.Value, v); r != "" {
		return &fail{reason: r, detail: f.Canonical + ": " + detail, rule: f.Rule}
	}
	sc.use(flagUse{flag: f, value: canonicalValue(&f.Value, v), hasValue: true})
	return nil
}

// scanShort handles "-x", "-xVALUE", "-abc" bundles and single-dash words
// such as find's "-name".
func (sc *argScanner) scanShort(a string) *fail {
	ix := sc.g.index
	word, _, _ := strings.Cut(a, "=")
	if _, ok := ix.deny[word]; ok {
		return sc.denied(word)
	}
	if f, ok := ix.exact[a]; ok {
		if f.Value.Type == TypeNone {
			sc.use(flagUse{flag: f})
			return nil
		}
		return sc.takeSeparate(f)
	}
	return sc.scanCluster(a)
}

// scanCluster parses "-abc" / "-n5" / "-cfoo=bar" as getopt does: each
// character a short flag until one that takes a value swallows the rest.
func (sc *argScanner) scanCluster(a string) *fail {
	ix := sc.g.index
	for j := 1; j < len(a); j++ {
		c := a[j]
		name := "-" + string(c)
		if !isFlagChar(c) {
			return sc.deny(ReasonFlagNotAllowed, "malformed short flag")
		}
		if _, ok := ix.deny[name]; ok {
			return sc.denied(name)
		}
		f, ok := ix.exact[name]
		if !ok {
			return sc.deny(ReasonFlagNotAllowed, "short flag "+name)
		}
		if j > 1 && !sc.g.Bundle {
			return sc.deny(ReasonFlagNotAllowed, "bundled short flags not allowed")
		}
		if f.Value.Type == TypeNone {
			sc.use(flagUse{flag: f})
			continue
		}
		if rest := a[j+1:]; rest != "" {
			if !hasForm(f, FormAttached) {
				return sc.deny(ReasonBadFlagValue, f.Canonical+": attached value form not allowed")
			}
			return sc.takeValue(f, rest)
		}
		return sc.takeSeparate(f)
	}
	return nil
}

func isFlagChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '?' || c == '@' || c == '#'
}

func isFlagWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isFlagChar(c) && c != '?' && c != '@' && c != '#' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// compile turns validated files into an immutable Set. It runs only when
// validation found nothing, so every reference resolves.
func (l *loader) compile() *Set {
	s := &Set{
		commands: map[string]*Command{}, roles: map[string]*Role{},
		roots: map[string]*Root{}, profiles: map[string]*compiledProfile{},
	}
	for _, pf := range l.files {
		s.files = append(s.files, pf.name)
		s.pos = append(s.pos, pf.pos)
	}
	for _, name := range sortedKeys(l.roles) {
		r := l.compileRole(name)
		s.roles[name] = r
		s.roleList = append(s.roleList, r)
	}
	for _, name := range sortedKeys(l.roots) {
		r := l.compileRoot(l.roots[name])
		s.roots[name] = r
		s.rootList = append(s.rootList, r)
	}
	for _, name := range sortedKeys(l.profiles) {
		p := l.compileProfile(name)
		s.profiles[name] = p
		s.profList = append(s.profList, p)
	}
	for _, name := range sortedKeys(l.commands) {
		c := l.compileCommand(l.commands[name])
		s.commands[name] = c
		s.cmdList = append(s.cmdList, c)
	}
	s.hash = s.computeHash()
	return s
}

func ruleRef(pf *parsedFile, path string) RuleRef {
	p := pf.at(path)
	return RuleRef{ID: path, File: pf.name, Line: p.Line, Col: p.Col}
}

func sortedCopy(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	j := 0
	for i, v := range out {
		if i == 0 || v != out[j-1] {
			out[j] = v
			j++
		}
	}
	return out[:j]
}

func (l *loader) compileRole(name string) *Role {
	d := l.roles[name]
	closure := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		if closure[n] {
			return
		}
		closure[n] = true
		if rd, ok := l.roles[n]; ok {
			for _, inc := range rd.v.Includes {
				walk(inc)
			}
		}
	}
	walk(name)
	return &Role{
		Name: name, Description: d.v.Description,
		Includes: sortedCopy(d.v.Includes), Permissions: sortedCopy(d.v.Permissions),
		Closure: sortedKeys(closure), Rule: ruleRef(d.pf, d.path),
	}
}

func (l *loader) compileRoot(d *decl[*FileRoot]) *Root {
	ro := !d.v.Workspace && (d.v.ReadOnly == nil && DefaultSharedRootReadOnly || d.v.ReadOnly != nil && *d.v.ReadOnly)
	return &Root{Name: d.name, Host: d.v.Host, Target: d.v.Target, Workspace: d.v.Workspace,
		ReadOnly: ro, Rule: ruleRef(d.pf, d.path)}
}

// compileProfile applies the built-in defaults, then every profile of the
// inherits chain from the most distant ancestor down to the profile itself.
func (l *loader) compileProfile(name string) *compiledProfile {
	var chain []*FileProfile
	for cur := name; cur != ""; {
		d := l.profiles[cur]
		chain = append(chain, d.v)
		cur = d.v.Inherits
	}
	p := defaultProfile()
	p.Name = name
	for i := len(chain) - 1; i >= 0; i-- {
		applyProfile(&p, chain[i])
	}
	if p.SeccompFile != "" {
		// Validation read every file a profile names; the set keeps the
		// bytes, so a later edit takes effect only through a reload.
		if sf, ok := l.seccompFiles[p.SeccompFile]; ok {
			p.SeccompData = sf.data
		}
	}
	d := l.profiles[name]
	return &compiledProfile{Profile: p, Mounts: sortedCopy(l.profileMounts(name)), Rule: ruleRef(d.pf, d.path)}
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func applyProfile(p *Profile, f *FileProfile) {
	set(&p.Untrusted, f.Untrusted)
	if f.Timeout != nil {
		p.Timeout = timeDuration(*f.Timeout)
	}
	if f.KillGrace != nil {
		p.KillGrace = timeDuration(*f.KillGrace)
	}
	setConv(&p.MemoryBytes, f.Memory, func(s Size) int64 { return int64(s) })
	set(&p.Pids, f.Pids)
	set(&p.CPUShares, f.CPUShares)
	set(&p.CPUQuota, f.CPUQuota)
	set(&p.CPUSeconds, f.CPUSeconds)
	set(&p.OpenFiles, f.OpenFiles)
	setConv(&p.FileSizeBytes, f.FileSize, func(s Size) uint64 { return uint64(s) })
	setConv(&p.TmpfsBytes, f.Tmpfs, func(s Size) int64 { return int64(s) })
	setConv(&p.Umask, f.Umask, func(u Umask) uint32 { return uint32(u) })
	setConv(&p.MaxOutputBytes, f.MaxOutput, func(s Size) int64 { return int64(s) })
	setConv(&p.OutputRate, f.OutputRate, func(s Size) int64 { return int64(s) })
	set(&p.KeepOnOutputCap, f.KeepOnOutputCap)
	setConv(&p.Network, f.Network, func(s string) Network { return Network(s) })
	set(&p.TTY, f.TTY)
	set(&p.NoExecWork, f.NoExecWork)
	setConv(&p.WorkspaceBytes, f.WorkspaceSize, func(s Size) int64 { return int64(s) })
	if f.Seccomp != nil {
		p.Seccomp, p.SeccompFile = *f.Seccomp, ""
		if *f.Seccomp != "default" && *f.Seccomp != "strict" {
			p.Seccomp, p.SeccompFile = "custom", *f.Seccomp
		}
	}
	set(&p.UID, f.UID)
	set(&p.GID, f.GID)
}

func setConv[S, D any](dst *D, src *S, conv func(S) D) {
	if src != nil {
		*dst = conv(*src)
	}
}

func (l *loader) compileCommand(d *decl[*FileCommand]) *Command {
	c := d.v
	lim := defaultLimits()
	if df := d.pf.f.Defaults; df != nil {
		lim = mergeLimits(lim, df.Limits)
	}
	base := &Grammar{Limits: lim, Order: DefaultOrder, EndOfOptions: DefaultEndOfOptions,
		Bundle: DefaultBundle, PrefixMatch: DefaultPrefixMatch}
	out := &Command{
		Path: c.Path, SHA256: c.SHA256, Profile: l.commandProfile(d), Cwd: l.commandCwd(d),
		Env: l.mergeEnv(d.pf, d.pf.f.Env, c.Env),
	}
	out.Grammar = *l.compileGrammar(d.pf, d.path, d.name, &c.FileGrammar, base)
	return out
}

func mergeLimits(l Limits, f *FileLimits) Limits {
	if f == nil {
		return l
	}
	setConv(&l.MaxArgBytes, f.MaxArgBytes, func(s Size) int { return int(s) })
	set(&l.MaxArgs, f.MaxArgs)
	setConv(&l.MaxTotalBytes, f.MaxTotalBytes, func(s Size) int { return int(s) })
	return l
}

// compileGrammar compiles g, inheriting unset settings from parent.
func (l *loader) compileGrammar(pf *parsedFile, path, name string, g *FileGrammar, parent *Grammar) *Grammar {
	out := &Grammar{
		ID: path, Name: name, Description: g.Description, Roles: parent.Roles,
		EndOfOptions: parent.EndOfOptions, Bundle: parent.Bundle, PrefixMatch: parent.PrefixMatch,
		Order: parent.Order, Limits: mergeLimits(parent.Limits, g.Limits),
		Deny: sortedCopy(append(append([]string(nil), parent.Deny...), g.Deny...)),
		Rule: ruleRef(pf, path),
	}
	if len(g.Roles) > 0 {
		out.Roles = sortedCopy(g.Roles)
	}
	out.denyRef = make(map[string]RuleRef, len(out.Deny))
	for k, v := range parent.denyRef {
		out.denyRef[k] = v
	}
	for i, n := range g.Deny {
		if _, ok := out.denyRef[n]; !ok {
			out.denyRef[n] = ruleRef(pf, fmt.Sprintf("%s.deny[%d]", path, i))
		}
	}
	if g.EndOfOptions != nil {
		out.EndOfOptions = *g.EndOfOptions
		if out.EndOfOptions == "none" {
			out.EndOfOptions = ""
		}
	}
	set(&out.Bundle, g.Bundle)
	set(&out.PrefixMatch, g.PrefixMatch)
	if g.Order != "" {
		out.Order = g.Order
	}
	for i, f := range g.Flags {
		out.Flags = append(out.Flags, l.compileFlag(pf, fmt.Sprintf("%s.flags[%d]", path, i), f, out.Limits))
	}
	sort.Slice(out.Flags, func(i, j int) bool { return out.Flags[i].Canonical < out.Flags[j].Canonical })
	out.Positionals = l.compilePositionals(g.Positionals, out.Limits)
	for _, sn := range sortedKeys(g.Subcommands) {
		sub := l.compileGrammar(pf, path+".subcommands."+sn, sn, &g.Subcommands[sn].FileGrammar, out)
		out.Subcommands = append(out.Subcommands, &Subcommand{Grammar: *sub})
	}
	out.index = newFlagIndex(out)
	return out
}

func (l *loader) compileFlag(pf *parsedFile, path string, f *FileFlag, lim Limits) *Flag {
	out := &Flag{Names: sortedCopy(f.Names), Value: l.compileValue(&f.FileValue, lim), Rule: ruleRef(pf, path)}
	out.Canonical = f.Names[0]
	for _, n := range f.Names {
		if longFlagRE.MatchString(n) {
			out.Canonical = n
			break
		}
	}
	if out.Value.Type != TypeNone {
		out.Forms = sortedCopy(f.Forms)
		if len(out.Forms) == 0 {
			out.Forms = defaultForms(f.Names)
		}
	}
	return out
}

func (l *loader) compileValue(v *FileValue, lim Limits) Value {
	out := Value{Type: ValueType(v.Type), Min: v.Min, Max: v.Max, Values: sortedCopy(v.Values),
		Pattern: v.Pattern, Roots: sortedCopy(v.Roots), Multiline: v.Multiline}
	if out.Type == "" {
		out.Type = DefaultFlagType
	}
	switch out.Type {
	case TypeRegex:
		out.re, _ = l.compileRegex(v.Pattern)
	case TypePath:
		out.MustExist = DefaultPathMustExist
		set(&out.MustExist, v.MustExist)
	case TypeText:
		out.MaxLen = lim.MaxArgBytes
		if v.MaxLen != nil && *v.MaxLen < out.MaxLen {
			out.MaxLen = *v.MaxLen
		}
	}
	return out
}

func (l *loader) compilePositionals(p *FilePositionals, lim Limits) Positionals {
	if p == nil {
		return Positionals{}
	}
	out := Positionals{Max: len(p.Items)}
	for _, it := range p.Items {
		out.Items = append(out.Items, l.compileValue(it, lim))
	}
	if p.Rest != nil {
		r := l.compileValue(p.Rest, lim)
		out.Rest = &r
		out.Max = lim.MaxArgs
	}
	set(&out.Min, p.Min)
	set(&out.Max, p.Max)
	return out
}

// computeHash hashes the canonical JSON of the compiled set. Positions
// (Rule fields) and secret values are not part of it; the content of a
// custom seccomp file is (its SHA-256), so the hash an audit line carries
// tells which syscall allowlist was in force.
func (s *Set) computeHash() string {
	type prof struct {
		Profile
		Mounts        []string `json:"mounts"`
		SeccompSHA256 string   `json:"seccomp_sha256,omitempty"`
	}
	profs := make([]prof, len(s.profList))
	for i, p := range s.profList {
		profs[i] = prof{Profile: p.Profile, Mounts: p.Mounts}
		if p.SeccompFile != "" {
			sum := sha256.Sum256(p.SeccompData)
			profs[i].SeccompSHA256 = hex.EncodeToString(sum[:])
		}
	}
	canon := struct {
		Roles    []*Role    `json:"roles"`
		Roots    []*Root    `json:"roots"`
		Profiles []prof     `json:"profiles"`
		Commands []*Command `json:"commands"`
	}{s.roleList, s.rootList, profs, s.cmdList}
	data, err := json.Marshal(canon)
	if err != nil {
		panic(fmt.Sprintf("policy: marshal compiled set: %v", err)) // cannot happen: plain data
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

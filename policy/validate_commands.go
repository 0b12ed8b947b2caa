package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

var (
	longFlagRE    = newLazyRegexp(`^--[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	shortFlagRE   = newLazyRegexp(`^-[A-Za-z0-9?@#]$`)
	wordFlagRE    = newLazyRegexp(`^-[A-Za-z][A-Za-z0-9_-]+$`)
	subcommandRE  = newLazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	sha256HexRE   = newLazyRegexp(`^[0-9a-f]{64}$`)
	endOfOptsVals = map[string]bool{"--": true, "--end-of-options": true, "none": true}
)

// binaryDirs are the host directories the sandbox shows at the same path
// (/usr bound read-only, /bin and /sbin as usr-merge links or binds).
var binaryDirs = []string{"/usr", "/bin", "/sbin"}

func inBinaryDirs(p string) bool {
	for _, d := range binaryDirs {
		if within(p, d) && p != d {
			return true
		}
	}
	return false
}

// grammarCtx is what a grammar check needs from its command.
type grammarCtx struct {
	pf      *parsedFile
	mounts  map[string]bool // roots the command's profile mounts
	bundle  bool
	hasRole bool // an enclosing grammar has roles
}

// checkCommands validates every command: binary, roles, profile, cwd, env
// and its grammar.
func (l *loader) checkCommands() {
	for _, name := range sortedKeys(l.commands) {
		d := l.commands[name]
		c := d.v
		l.checkBinary(d)
		profile := l.commandProfile(d)
		mounts := map[string]bool{}
		if profile != "" {
			if _, ok := l.profiles[profile]; !ok {
				l.errAt(d.pf, d.path+".profile", CodeUndefinedProfile, "command %q: profile %q is not declared", name, profile)
			} else {
				for _, m := range l.profileMounts(profile) {
					mounts[m] = true
				}
			}
		} else {
			l.errAt(d.pf, d.path, CodeUndefinedProfile, "command %q has no profile and its file sets no defaults.profile", name)
		}
		if cwd := l.commandCwd(d); cwd != "" {
			if _, ok := l.roots[cwd]; !ok {
				l.errAt(d.pf, d.path+".cwd", CodeUndefinedRoot, "root %q is not declared", cwd)
			} else if _, ok := l.profiles[profile]; ok && !mounts[cwd] {
				l.errAt(d.pf, d.path+".cwd", CodeUndefinedRoot, "cwd root %q is not mounted by profile %q", cwd, profile)
			}
		}
		if c.Env != nil {
			l.checkEnv(d.pf, d.path+".env", c.Env)
		}
		gc := grammarCtx{pf: d.pf, mounts: mounts}
		l.checkGrammar(gc, d.path, &c.FileGrammar)
	}
}

func (l *loader) commandProfile(d *decl[*FileCommand]) string {
	if d.v.Profile != "" {
		return d.v.Profile
	}
	if df := d.pf.f.Defaults; df != nil {
		return df.Profile
	}
	return ""
}

func (l *loader) commandCwd(d *decl[*FileCommand]) string {
	if d.v.Cwd != "" {
		return d.v.Cwd
	}
	if df := d.pf.f.Defaults; df != nil {
		return df.Cwd
	}
	return ""
}

// profileMounts resolves a profile's mounts through inherits.
func (l *loader) profileMounts(name string) []string {
	seen := map[string]bool{}
	for cur := name; cur != "" && !seen[cur]; {
		seen[cur] = true
		d, ok := l.profiles[cur]
		if !ok {
			return nil
		}
		if d.v.Mounts != nil {
			return d.v.Mounts
		}
		cur = d.v.Inherits
	}
	return nil
}

// checkBinary: the path is absolute and clean, exists on the host (the
// sandbox bind-mounts host /usr, so the host path is the sandbox path) and
// matches its sha256 pin.
func (l *loader) checkBinary(d *decl[*FileCommand]) {
	c := d.v
	if !isAbsClean(c.Path) {
		l.errAt(d.pf, d.path+".path", CodeBadPath, "path %q must be absolute and clean", c.Path)
		return
	}
	if !inBinaryDirs(c.Path) {
		l.errAt(d.pf, d.path+".path", CodeBadPath, "path %q is not under %v, the only host directories the sandbox mounts for programs", c.Path, binaryDirs)
		return
	}
	if c.SHA256 != "" && !sha256HexRE.MatchString(c.SHA256) {
		l.errAt(d.pf, d.path+".sha256", CodeBadValue, "sha256 must be 64 lowercase hex digits")
		return
	}
	if l.opts.SkipBinaryCheck {
		return
	}
	st, err := os.Stat(c.Path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		l.errAt(d.pf, d.path+".path", CodeBinaryNotFound, "binary %q does not exist or is not an executable file", c.Path)
		return
	}
	if real, err := filepath.EvalSymlinks(c.Path); err != nil || !inBinaryDirs(real) {
		l.errAt(d.pf, d.path+".path", CodeBadPath, "binary %q resolves outside %v", c.Path, binaryDirs)
		return
	}
	if c.SHA256 == "" {
		return
	}
	got, err := fileSHA256(c.Path)
	if err != nil {
		l.errAt(d.pf, d.path+".sha256", CodeSHA256Mismatch, "cannot hash %q: %v", c.Path, err)
	} else if got != c.SHA256 {
		l.errAt(d.pf, d.path+".sha256", CodeSHA256Mismatch, "binary %q has sha256 %s, the policy pins %s", c.Path, got, c.SHA256)
	}
}

func fileSHA256(name string) (string, error) {
	f, _, err := openRegular(name, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkGrammar validates a command's or subcommand's grammar, recursively.
func (l *loader) checkGrammar(gc grammarCtx, path string, g *FileGrammar) {
	pf := gc.pf
	if g.Bundle != nil {
		gc.bundle = *g.Bundle
	}
	if len(g.Roles) > 0 {
		l.checkRoleRefs(pf, path, g.Roles)
		gc.hasRole = true
	} else if !gc.hasRole && len(g.Subcommands) == 0 {
		l.errAt(pf, path, CodeRequired, "%s: no roles may run it (set roles here or on the command)", path)
	}
	if g.EndOfOptions != nil && !endOfOptsVals[*g.EndOfOptions] {
		l.errAt(pf, path+".end_of_options", CodeBadValue, `end_of_options must be "--", "--end-of-options" or none`)
	}
	if g.Order != "" && g.Order != OrderFlagsFirst && g.Order != OrderPositionalsFirst {
		l.errAt(pf, path+".order", CodeBadValue, "order must be flags_first or positionals_first")
	}
	if g.Order == OrderPositionalsFirst && g.EndOfOptions != nil && *g.EndOfOptions != "none" {
		l.errAt(pf, path+".order", CodeBadValue, "positionals_first cannot be combined with end_of_options")
	}
	l.checkLimits(pf, path+".limits", g.Limits)
	l.checkFlags(gc, path, g)
	for i, name := range g.Deny {
		if !validFlagName(name) {
			l.errAt(pf, fmt.Sprintf("%s.deny[%d]", path, i), CodeBadFlag, "deny entry %q is not a flag name (-x, --long or -word)", name)
		}
	}
	if g.Positionals != nil && len(g.Subcommands) > 0 {
		l.errAt(pf, path+".positionals", CodeBadValue, "a grammar with subcommands cannot take positionals")
	}
	if g.Positionals != nil {
		l.checkPositionals(gc, path+".positionals", g.Positionals)
	}
	for _, name := range sortedKeys(g.Subcommands) {
		sp := path + ".subcommands." + name
		sc := g.Subcommands[name]
		if !subcommandRE.MatchString(name) {
			l.errAt(pf, sp, CodeBadName, "subcommand name %q must match %s", name, subcommandRE)
			continue
		}
		if sc == nil {
			l.errAt(pf, sp, CodeType, "%s: expected a mapping, got null", sp)
			continue
		}
		l.checkGrammar(gc, sp, &sc.FileGrammar)
	}
}

func validFlagName(n string) bool {
	return longFlagRE.MatchString(n) || shortFlagRE.MatchString(n) || wordFlagRE.MatchString(n)
}

func (l *loader) checkFlags(gc grammarCtx, path string, g *FileGrammar) {
	seen := map[string]bool{}
	for i, f := range g.Flags {
		fp := fmt.Sprintf("%s.flags[%d]", path, i)
		if f == nil || len(f.Names) == 0 {
			l.errAt(gc.pf, fp, CodeRequired, "%s: a flag needs names", fp)
			continue
		}
		for j, n := range f.Names {
			np := fmt.Sprintf("%s.names[%d]", fp, j)
			switch {
			case !validFlagName(n):
				l.errAt(gc.pf, np, CodeBadFlag, "flag name %q must look like -x, --long or -word", n)
			case wordFlagRE.MatchString(n) && gc.bundle:
				l.errAt(gc.pf, np, CodeBadFlag, "single-dash word %q is ambiguous with bundle: true", n)
			case seen[n]:
				l.errAt(gc.pf, np, CodeDuplicateFlag, "flag %q is listed twice", n)
			}
			seen[n] = true
		}
		for j, form := range f.Forms {
			if form != FormEquals && form != FormSeparate && form != FormAttached {
				l.errAt(gc.pf, fmt.Sprintf("%s.forms[%d]", fp, j), CodeBadValue, "form must be equals, separate or attached, got %q", form)
			}
		}
		l.checkValue(gc, fp, &f.FileValue, true)
	}
}

func (l *loader) checkPositionals(gc grammarCtx, path string, p *FilePositionals) {
	if p.Min != nil && *p.Min < 0 || p.Max != nil && *p.Max < 0 {
		l.errAt(gc.pf, path, CodeBadValue, "positional counts must not be negative")
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		l.errAt(gc.pf, path+".min", CodeBadValue, "min %d is above max %d", *p.Min, *p.Max)
	}
	if p.Rest == nil && p.Max != nil && *p.Max > len(p.Items) {
		l.errAt(gc.pf, path+".max", CodeBadValue, "max %d is above the %d items and there is no rest", *p.Max, len(p.Items))
	}
	for i, it := range p.Items {
		ip := fmt.Sprintf("%s.items[%d]", path, i)
		if it == nil {
			l.errAt(gc.pf, ip, CodeType, "%s: expected a mapping, got null", ip)
			continue
		}
		l.checkValue(gc, ip, it, false)
	}
	if p.Rest != nil {
		l.checkValue(gc, path+".rest", p.Rest, false)
	}
}

// checkValue validates a value type and that only its own keys are set.
func (l *loader) checkValue(gc grammarCtx, path string, v *FileValue, isFlag bool) {
	t := ValueType(v.Type)
	if t == "" && isFlag {
		t = TypeNone
	}
	bad := func(key, format string, args ...any) {
		l.errAt(gc.pf, path+"."+key, CodeBadValue, format, args...)
	}
	switch t {
	case TypeNone, "":
		if !isFlag {
			bad("type", "a positional needs a value type")
		}
	case TypeInt:
		if v.Min != nil && v.Max != nil && *v.Min > *v.Max {
			bad("min", "min %d is above max %d", *v.Min, *v.Max)
		}
	case TypeEnum:
		if len(v.Values) == 0 {
			bad("type", "enum needs values")
		}
	case TypeRegex:
		if _, err := l.compileRegex(v.Pattern); err != nil || v.Pattern == "" {
			l.errAt(gc.pf, path+".pattern", CodeBadRegex, "pattern %q does not compile: %v", v.Pattern, err)
		}
	case TypePath:
		l.checkPathRoots(gc, path, v.Roots)
	case TypeText:
		if v.MaxLen != nil && *v.MaxLen < 1 {
			bad("max_len", "max_len must be at least 1")
		}
	default:
		bad("type", "unknown type %q (none, int, enum, regex, path, text)", v.Type)
		return
	}
	l.checkValueKeys(gc, path, t, v)
}

func (l *loader) checkPathRoots(gc grammarCtx, path string, roots []string) {
	if len(roots) == 0 {
		l.errAt(gc.pf, path+".type", CodeRequired, "a path value needs roots")
	}
	for i, r := range roots {
		rp := fmt.Sprintf("%s.roots[%d]", path, i)
		if _, ok := l.roots[r]; !ok {
			l.errAt(gc.pf, rp, CodeUndefinedRoot, "root %q is not declared", r)
		} else if !gc.mounts[r] {
			l.errAt(gc.pf, rp, CodeUndefinedRoot, "root %q is not mounted by the command's profile", r)
		}
	}
}

// checkValueKeys reports keys that do not belong to the value's type.
func (l *loader) checkValueKeys(gc grammarCtx, path string, t ValueType, v *FileValue) {
	set := map[string]bool{
		"min": v.Min != nil, "max": v.Max != nil, "values": v.Values != nil, "pattern": v.Pattern != "",
		"roots": v.Roots != nil, "must_exist": v.MustExist != nil, "max_len": v.MaxLen != nil, "multiline": v.Multiline,
	}
	own := map[ValueType][]string{
		TypeInt: {"min", "max"}, TypeEnum: {"values"}, TypeRegex: {"pattern"},
		TypePath: {"roots", "must_exist"}, TypeText: {"max_len", "multiline"},
	}
	allowed := map[string]bool{}
	for _, k := range own[t] {
		allowed[k] = true
	}
	for _, k := range sortedKeys(set) {
		if set[k] && !allowed[k] {
			l.errAt(gc.pf, path+"."+k, CodeBadValue, "%q does not apply to type %s", k, t)
		}
	}
}

func anchored(p string) string { return `^(?:` + p + `)$` }

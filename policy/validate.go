package policy

import (
	"fmt"
	"regexp"
	"sort"
)

// decl is a named declaration and the file it comes from.
type decl[T any] struct {
	pf   *parsedFile
	name string
	path string // dotted path in its file, e.g. "roles.viewer"
	v    T
}

// loader validates and compiles a set of parsed files.
type loader struct {
	opts     LoadOptions
	files    []*parsedFile
	errs     ErrorList
	roles    map[string]*decl[*FileRole]
	roots    map[string]*decl[*FileRoot]
	profiles map[string]*decl[*FileProfile]
	commands map[string]*decl[*FileCommand]
	secrets  map[*parsedFile]map[string]string
	granted  map[string]bool // roles named by some command or subcommand
	regexps  map[string]*regexp.Regexp
	badRegex map[string]error
	// seccompFiles holds every custom seccomp file read, by path.
	seccompFiles map[string]*seccompFileData
}

// compileRegex compiles an anchored pattern once per load.
func (l *loader) compileRegex(pattern string) (*regexp.Regexp, error) {
	if re, ok := l.regexps[pattern]; ok {
		return re, nil
	}
	if err, ok := l.badRegex[pattern]; ok {
		return nil, err
	}
	// The pattern must compile on its own, so that the anchoring wrapper
	// cannot be broken out of ("a)|(.*" compiles only once wrapped).
	_, err := regexp.Compile(pattern)
	var re *regexp.Regexp
	if err == nil {
		re, err = regexp.Compile(anchored(pattern))
	}
	if err != nil {
		l.badRegex[pattern] = err
		return nil, err
	}
	l.regexps[pattern] = re
	return re, nil
}

func newLoader(files []*parsedFile, opts LoadOptions) *loader {
	return &loader{
		opts: opts, files: files,
		roles:    map[string]*decl[*FileRole]{},
		roots:    map[string]*decl[*FileRoot]{},
		profiles: map[string]*decl[*FileProfile]{},
		commands: map[string]*decl[*FileCommand]{},
		secrets:  map[*parsedFile]map[string]string{},
		granted:  map[string]bool{},
		regexps:  map[string]*regexp.Regexp{},
		badRegex: map[string]error{},
	}
}

func (l *loader) errAt(pf *parsedFile, path, code, format string, args ...any) {
	p := pf.at(path)
	l.errs = append(l.errs, &Error{File: pf.name, Line: p.Line, Col: p.Col, Code: code,
		Message: fmt.Sprintf(format, args...)})
}

// validate runs every check in order; each appends errors and goes on.
func (l *loader) validate() {
	checks := []func(){
		l.collectNames,
		l.checkRoots,
		l.checkProfiles,
		l.checkSecretsFiles,
		l.checkEnvs,
		l.checkDefaults,
		l.checkCommands,
		l.checkRoles,
	}
	for _, check := range checks {
		check()
	}
}

var nameRE = newLazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// collectNames indexes every declaration and reports duplicates across files.
func (l *loader) collectNames() {
	for _, pf := range l.files {
		collect(l, pf, "roles", pf.f.Roles, l.roles)
		collect(l, pf, "roots", pf.f.Roots, l.roots)
		collect(l, pf, "profiles", pf.f.Profiles, l.profiles)
		collect(l, pf, "commands", pf.f.Commands, l.commands)
	}
}

func collect[T any](l *loader, pf *parsedFile, kind string, m map[string]T, into map[string]*decl[T]) {
	for _, name := range sortedKeys(m) {
		path := kind + "." + name
		if !nameRE.MatchString(name) {
			l.errAt(pf, path, CodeBadName, "%s name %q must match %s", kind, name, nameRE)
			continue
		}
		if prev, ok := into[name]; ok {
			p := prev.pf.at(prev.path)
			l.errAt(pf, path, CodeDuplicateName, "%s %q already declared at %s:%d:%d", kind, name, prev.pf.name, p.Line, p.Col)
			continue
		}
		if isNilValue(m[name]) {
			l.errAt(pf, path, CodeType, "%s: expected a mapping, got null", path)
			continue
		}
		into[name] = &decl[T]{pf: pf, name: name, path: path, v: m[name]}
	}
}

func isNilValue(v any) bool {
	switch x := v.(type) {
	case *FileRole:
		return x == nil
	case *FileRoot:
		return x == nil
	case *FileProfile:
		return x == nil
	case *FileCommand:
		return x == nil
	}
	return false
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkRoles: includes are declared, no cycles, every role grants something.
func (l *loader) checkRoles() {
	for _, name := range sortedKeys(l.roles) {
		d := l.roles[name]
		for i, inc := range d.v.Includes {
			if _, ok := l.roles[inc]; !ok {
				l.errAt(d.pf, fmt.Sprintf("%s.includes[%d]", d.path, i), CodeUndefinedRole, "role %q includes undeclared role %q", name, inc)
			}
		}
		for i, p := range d.v.Permissions {
			if p != "admin" {
				l.errAt(d.pf, fmt.Sprintf("%s.permissions[%d]", d.path, i), CodeBadValue, "unknown permission %q (known: admin)", p)
			}
		}
		if l.roleCycle(name, map[string]bool{}) {
			l.errAt(d.pf, d.path, CodeRoleCycle, "role %q includes itself (through includes)", name)
		}
	}
	for _, name := range sortedKeys(l.roles) {
		if !l.roleGrants(name, map[string]bool{}) {
			d := l.roles[name]
			l.errAt(d.pf, d.path, CodeRoleGrantsNone, "role %q grants nothing: no command or subcommand names it, it includes no granting role and has no permissions", name)
		}
	}
}

func (l *loader) roleCycle(name string, onPath map[string]bool) bool {
	if onPath[name] {
		return true
	}
	d, ok := l.roles[name]
	if !ok {
		return false
	}
	onPath[name] = true
	defer delete(onPath, name)
	for _, inc := range d.v.Includes {
		if l.roleCycle(inc, onPath) {
			return true
		}
	}
	return false
}

func (l *loader) roleGrants(name string, seen map[string]bool) bool {
	if seen[name] {
		return false
	}
	seen[name] = true
	d, ok := l.roles[name]
	if !ok {
		return false
	}
	if l.granted[name] || len(d.v.Permissions) > 0 {
		return true
	}
	for _, inc := range d.v.Includes {
		if l.roleGrants(inc, seen) {
			return true
		}
	}
	return false
}

// checkRoleRefs reports roles a grammar names that nobody declared and
// records the others as granted.
func (l *loader) checkRoleRefs(pf *parsedFile, path string, roles []string) {
	for i, r := range roles {
		if _, ok := l.roles[r]; !ok {
			l.errAt(pf, fmt.Sprintf("%s.roles[%d]", path, i), CodeUndefinedRole, "role %q is not declared under roles", r)
			continue
		}
		l.granted[r] = true
	}
}

// checkDefaults: the default profile and cwd exist.
func (l *loader) checkDefaults() {
	for _, pf := range l.files {
		d := pf.f.Defaults
		if d == nil {
			continue
		}
		if d.Profile != "" {
			if _, ok := l.profiles[d.Profile]; !ok {
				l.errAt(pf, "defaults.profile", CodeUndefinedProfile, "profile %q is not declared", d.Profile)
			}
		}
		if d.Cwd != "" {
			if _, ok := l.roots[d.Cwd]; !ok {
				l.errAt(pf, "defaults.cwd", CodeUndefinedRoot, "root %q is not declared", d.Cwd)
			}
		}
		l.checkLimits(pf, "defaults.limits", d.Limits)
	}
}

func (l *loader) checkLimits(pf *parsedFile, path string, lim *FileLimits) {
	if lim == nil {
		return
	}
	if lim.MaxArgBytes != nil && (*lim.MaxArgBytes < 1 || *lim.MaxArgBytes > 1<<20) {
		l.errAt(pf, path+".max_arg_bytes", CodeBadValue, "max_arg_bytes must be between 1 and 1MiB")
	}
	if lim.MaxArgs != nil && (*lim.MaxArgs < 0 || *lim.MaxArgs > 4096) {
		l.errAt(pf, path+".max_args", CodeBadValue, "max_args must be between 0 and 4096")
	}
	if lim.MaxTotalBytes != nil && (*lim.MaxTotalBytes < 1 || *lim.MaxTotalBytes > 16<<20) {
		l.errAt(pf, path+".max_total_bytes", CodeBadValue, "max_total_bytes must be between 1 and 16MiB")
	}
}

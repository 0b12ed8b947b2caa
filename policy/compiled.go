package policy

import "regexp"

// This file holds the compiled, immutable form of a policy set. Everything
// is exported read-only for the lint, diff and explain tools: a *Set and the
// values reachable from it must never be modified. Slices are sorted (by
// name or canonical flag) so two equivalent files compile to equal values;
// Rule fields (file:line) are the only position-dependent data and are left
// out of Set.Hash.

// ValueType is the type of a flag value or positional argument.
type ValueType string

// The value types.
const (
	TypeNone  ValueType = "none"
	TypeInt   ValueType = "int"
	TypeEnum  ValueType = "enum"
	TypeRegex ValueType = "regex"
	TypePath  ValueType = "path"
	TypeText  ValueType = "text"
)

// Argument orders of the final argv.
const (
	OrderFlagsFirst       = "flags_first"
	OrderPositionalsFirst = "positionals_first"
)

// Value forms of a flag.
const (
	FormEquals   = "equals"   // --flag=value
	FormSeparate = "separate" // --flag value, -f value
	FormAttached = "attached" // -fvalue
)

// Limits are the global sanitization bounds of a command or subcommand.
type Limits struct {
	MaxArgBytes   int `json:"max_arg_bytes"`
	MaxArgs       int `json:"max_args"`
	MaxTotalBytes int `json:"max_total_bytes"`
}

// Value is a compiled value type. Min/Max are nil when unbounded (int);
// MaxLen is always set for text (the argument limit when the file sets none).
type Value struct {
	Type      ValueType `json:"type"`
	Min       *int64    `json:"min,omitempty"`
	Max       *int64    `json:"max,omitempty"`
	Values    []string  `json:"values,omitempty"`  // enum, sorted
	Pattern   string    `json:"pattern,omitempty"` // regex, as written (matched anchored)
	Roots     []string  `json:"roots,omitempty"`   // path, sorted
	MustExist bool      `json:"must_exist,omitempty"`
	MaxLen    int       `json:"max_len,omitempty"` // text
	Multiline bool      `json:"multiline,omitempty"`

	re *regexp.Regexp
}

// Flag is a compiled allowed flag.
type Flag struct {
	Canonical string   `json:"canonical"` // spelling used in the final argv
	Names     []string `json:"names"`     // every spelling, sorted
	Value     Value    `json:"value"`
	Forms     []string `json:"forms"` // sorted subset of equals, separate, attached
	Rule      RuleRef  `json:"-"`
}

// Positionals is the compiled positional grammar.
type Positionals struct {
	Min   int     `json:"min"`
	Max   int     `json:"max"`
	Items []Value `json:"items,omitempty"`
	Rest  *Value  `json:"rest,omitempty"`
}

// Grammar is the compiled argument grammar of a command or subcommand.
// Inherited settings (bundle, prefix_match, end_of_options, order, limits)
// are resolved; Deny holds the command's and every enclosing deny entry.
type Grammar struct {
	ID           string        `json:"id"`   // "commands.git" or "commands.git.subcommands.log"
	Name         string        `json:"name"` // command or subcommand name
	Description  string        `json:"description,omitempty"`
	Roles        []string      `json:"roles"`          // roles that may run it, sorted (as written or inherited)
	EndOfOptions string        `json:"end_of_options"` // "--", "--end-of-options" or "" (none)
	Bundle       bool          `json:"bundle"`
	PrefixMatch  bool          `json:"prefix_match"`
	Order        string        `json:"order"`
	Flags        []*Flag       `json:"flags"` // sorted by Canonical
	Positionals  Positionals   `json:"positionals"`
	Deny         []string      `json:"deny"` // sorted
	Limits       Limits        `json:"limits"`
	Subcommands  []*Subcommand `json:"subcommands,omitempty"` // sorted by name
	Rule         RuleRef       `json:"-"`

	index   *flagIndex
	denyRef map[string]RuleRef // deny entry -> where it is written (here or above)
}

// Subcommand is a compiled git-style subcommand.
type Subcommand struct {
	Grammar
}

// Env is a command's compiled environment. Secret values are not here:
// only the variable names and the keys they come from.
type Env struct {
	Set     map[string]string `json:"set,omitempty"`     // fixed variables
	Client  map[string]string `json:"client,omitempty"`  // variable -> value pattern
	Secrets map[string]string `json:"secrets,omitempty"` // variable -> secrets-file key

	clientRE     map[string]*regexp.Regexp
	secretValues map[string]string // variable -> value; never logged
	base         []string          // KEY=VALUE of Set and secrets, sorted by key; never logged
	baseKeys     []string
}

// Command is a compiled command. Its Grammar is the command level; the
// subcommands hang off it.
type Command struct {
	Grammar
	Path    string `json:"path"`
	SHA256  string `json:"sha256,omitempty"`
	Profile string `json:"profile"` // profile name (resolved from defaults)
	Cwd     string `json:"cwd"`     // root name of the default working directory
	Env     Env    `json:"env"`
}

// Role is a compiled role.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Includes    []string `json:"includes,omitempty"`    // sorted
	Permissions []string `json:"permissions,omitempty"` // sorted
	Closure     []string `json:"closure"`               // itself and every included role, transitively, sorted
	Rule        RuleRef  `json:"-"`
}

// Root is a compiled root.
type Root struct {
	Name      string  `json:"name"`
	Host      string  `json:"host"` // for the workspace: the template with {sub}
	Target    string  `json:"target"`
	Workspace bool    `json:"workspace"`
	ReadOnly  bool    `json:"readonly"`
	Rule      RuleRef `json:"-"`
}

// compiledProfile is a profile with its mounts and source.
type compiledProfile struct {
	Profile
	Mounts []string `json:"mounts"`
	Rule   RuleRef  `json:"-"`
}

// Set is an immutable, compiled policy set. It is safe for concurrent use.
type Set struct {
	commands map[string]*Command
	cmdList  []*Command
	roles    map[string]*Role
	roleList []*Role
	roots    map[string]*Root
	rootList []*Root
	profiles map[string]*compiledProfile
	profList []*compiledProfile
	files    []string
	pos      []map[string]Pos // per file: dotted path -> position
	hash     string
}

// Source returns where a dotted rule path is written, e.g.
// "commands.git.deny[0]", "roles.viewer.includes[1]",
// "commands.git.subcommands.log.flags[2].names[0]". Paths are those of the
// file model's YAML keys; the first file declaring it wins.
func (s *Set) Source(id string) (RuleRef, bool) {
	for i, m := range s.pos {
		if p, ok := m[id]; ok {
			return RuleRef{ID: id, File: s.files[i], Line: p.Line, Col: p.Col}, true
		}
	}
	return RuleRef{}, false
}

// Hash is the hex SHA-256 of the set's canonical compiled form: equivalent
// policies (reordered keys, other files, other comments) hash alike.
func (s *Set) Hash() string { return s.hash }

// Files are the policy files the set was loaded from, in load order.
func (s *Set) Files() []string { return append([]string(nil), s.files...) }

// SeccompFiles returns the custom seccomp profile files the set's profiles
// name, sorted: the set carries their content as it was at load, so a
// watcher of the policy files watches these too.
func (s *Set) SeccompFiles() []string {
	var out []string
	for _, p := range s.profList {
		if p.SeccompFile != "" {
			out = append(out, p.SeccompFile)
		}
	}
	return sortedCopy(out)
}

// Commands returns every command sorted by name. Do not modify them.
func (s *Set) Commands() []*Command { return append([]*Command(nil), s.cmdList...) }

// Command returns a command by name.
func (s *Set) Command(name string) (*Command, bool) {
	c, ok := s.commands[name]
	return c, ok
}

// Roles returns every role sorted by name. Do not modify them.
func (s *Set) Roles() []*Role { return append([]*Role(nil), s.roleList...) }

// Roots returns every root sorted by name. Do not modify them.
func (s *Set) Roots() []*Root { return append([]*Root(nil), s.rootList...) }

// Profiles returns a copy of every profile sorted by name.
func (s *Set) Profiles() []Profile {
	out := make([]Profile, len(s.profList))
	for i, p := range s.profList {
		out[i] = p.Profile
	}
	return out
}

// Profile returns a copy of a profile by name.
func (s *Set) Profile(name string) (Profile, bool) {
	p, ok := s.profiles[name]
	if !ok {
		return Profile{}, false
	}
	return p.Profile, true
}

// ProfileMounts returns the root names a profile mounts, sorted.
func (s *Set) ProfileMounts(name string) []string {
	if p, ok := s.profiles[name]; ok {
		return append([]string(nil), p.Mounts...)
	}
	return nil
}

// ProfileRule returns where a profile is declared.
func (s *Set) ProfileRule(name string) RuleRef {
	if p, ok := s.profiles[name]; ok {
		return p.Rule
	}
	return RuleRef{}
}

// HasPermission reports whether any of the roles (expanded through
// includes) carries a gateway permission such as "admin".
func (s *Set) HasPermission(roles []string, perm string) bool {
	for _, r := range s.expandRoles(roles) {
		if role, ok := s.roles[r]; ok {
			for _, p := range role.Permissions {
				if p == perm {
					return true
				}
			}
		}
	}
	return false
}

// Subcommand returns a subcommand of a grammar by name.
func (g *Grammar) Subcommand(name string) (*Subcommand, bool) {
	for _, s := range g.Subcommands {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

package policy

// This file is the policy file model: the Go types a `version: 1` policy file
// decodes into, field for field. The loader (load.go, yamlnode.go) decodes
// YAML nodes into these types strictly; validate.go checks them; compile.go
// turns them into the immutable compiled form (compiled.go) that Decide uses.
// The JSON Schema (schema.go) is generated from these types, so the `yaml`
// tags are the file's key names and the `jsonschema` tags document them.
//
// A short example (docs/policy.md is the reference):
//
//	version: 1
//	roles:
//	  viewer:   {description: read-only tools}
//	  operator: {description: workspace tools, includes: [viewer]}
//	roots:
//	  workspace: {workspace: true, host: "/var/lib/execgate/workspaces/{sub}", target: /work}
//	  docs:      {host: /srv/docs, target: /docs}          # read-only by default
//	profiles:
//	  standard:
//	    timeout: 10s
//	    memory: 128MiB
//	    pids: 32
//	    max_output: 1MiB
//	    network: none
//	    seccomp: default
//	    mounts: [workspace, docs]
//	defaults:
//	  profile: standard
//	  cwd: workspace
//	  limits: {max_arg_bytes: 4KiB, max_args: 64, max_total_bytes: 64KiB}
//	env:
//	  set: {LANG: C.UTF-8, HOME: /work, PATH: /usr/bin:/bin}
//	  client:
//	    TZ: {pattern: '[A-Za-z_/+-]{1,40}'}
//	commands:
//	  git:
//	    path: /usr/bin/git
//	    roles: [operator]
//	    bundle: true
//	    prefix_match: true
//	    deny: [-c, --upload-pack, --exec, --config-env]
//	    subcommands:
//	      log:
//	        roles: [viewer, operator]
//	        end_of_options: "--"
//	        flags:
//	          - {names: [-n, --max-count], type: int, min: 1, max: 1000}
//	          - {names: [--oneline]}
//	        positionals:
//	          max: 4
//	          rest: {type: path, roots: [workspace]}

// File is one policy file (`version: 1`). Several files may form one policy
// set; names (roles, roots, profiles, commands) must be unique across them.
type File struct {
	Version     int                     `yaml:"version" jsonschema:"required,enum=1,description=Policy file format version. Required; must be 1."`
	SecretsFile string                  `yaml:"secrets_file,omitempty" jsonschema:"description=Absolute path of a root-owned 0600 KEY=VALUE file; env.secrets name keys in it."`
	Defaults    *FileDefaults           `yaml:"defaults,omitempty" jsonschema:"description=Defaults for every command of this file."`
	Roles       map[string]*FileRole    `yaml:"roles,omitempty" jsonschema:"description=Roles by name. Roles come from the caller's JWT."`
	Roots       map[string]*FileRoot    `yaml:"roots,omitempty" jsonschema:"description=Named host directories mounted into the sandbox."`
	Profiles    map[string]*FileProfile `yaml:"profiles,omitempty" jsonschema:"description=Named sandbox profiles."`
	Env         *FileEnv                `yaml:"env,omitempty" jsonschema:"description=Environment of every command of this file."`
	Commands    map[string]*FileCommand `yaml:"commands,omitempty" jsonschema:"description=Commands by the name clients use."`
}

// FileRole declares a role. A role must grant something: a command or
// subcommand names it, it includes a role that grants something, or it has
// permissions.
type FileRole struct {
	Description string   `yaml:"description,omitempty" jsonschema:"description=What the role is for."`
	Includes    []string `yaml:"includes,omitempty" jsonschema:"description=Roles whose grants this role also has (transitively)."`
	Permissions []string `yaml:"permissions,omitempty" jsonschema:"enum=admin,description=Gateway permissions beyond commands"`
}

// FileRoot is a named host directory. Exactly one root may be the per-user
// workspace, whose host path is a template over the JWT subject ({sub} as a
// whole path component). Other roots are read-only unless readonly: false.
type FileRoot struct {
	Host      string `yaml:"host" jsonschema:"required,description=Absolute host path; for the workspace a template with {sub} as one path component."`
	Target    string `yaml:"target" jsonschema:"required,description=Absolute path inside the sandbox."`
	Workspace bool   `yaml:"workspace,omitempty" jsonschema:"description=This root is the per-user writable workspace."`
	ReadOnly  *bool  `yaml:"readonly,omitempty" jsonschema:"description=Mount read-only (default true for shared roots; the workspace is always writable)."`
}

// FileProfile is a sandbox profile. Unset fields come from the profile it
// inherits, then from the built-in defaults (defaults.go).
type FileProfile struct {
	Inherits        string    `yaml:"inherits,omitempty" jsonschema:"description=Name of a profile whose settings this one extends."`
	Untrusted       *bool     `yaml:"untrusted,omitempty" jsonschema:"description=Marks a profile meant to run untrusted code (shells\\, interpreters)."`
	Timeout         *Duration `yaml:"timeout,omitempty" jsonschema:"description=Wall-clock limit\\, then SIGTERM (e.g. 30s)."`
	KillGrace       *Duration `yaml:"kill_grace,omitempty" jsonschema:"description=Time between SIGTERM and SIGKILL."`
	Memory          *Size     `yaml:"memory,omitempty" jsonschema:"description=Memory limit\\, no swap (e.g. 256MiB)."`
	Pids            *int64    `yaml:"pids,omitempty" jsonschema:"minimum=1,description=Maximum number of processes/threads."`
	CPUShares       *uint64   `yaml:"cpu_shares,omitempty" jsonschema:"minimum=2,maximum=262144,description=Relative CPU weight."`
	CPUQuota        *float64  `yaml:"cpu_quota,omitempty" jsonschema:"minimum=0.01,description=CPUs (0.5 = half a core)."`
	CPUSeconds      *uint64   `yaml:"cpu_seconds,omitempty" jsonschema:"minimum=1,description=RLIMIT_CPU in seconds."`
	OpenFiles       *uint64   `yaml:"open_files,omitempty" jsonschema:"minimum=8,description=RLIMIT_NOFILE."`
	FileSize        *Size     `yaml:"file_size,omitempty" jsonschema:"description=RLIMIT_FSIZE (largest file a run may write)."`
	Tmpfs           *Size     `yaml:"tmpfs,omitempty" jsonschema:"description=Size of the sandbox's /tmp."`
	Umask           *Umask    `yaml:"umask,omitempty" jsonschema:"description=Octal umask as a string (e.g. 0077)."`
	MaxOutput       *Size     `yaml:"max_output,omitempty" jsonschema:"description=Cap on stdout+stderr bytes."`
	OutputRate      *Size     `yaml:"output_rate,omitempty" jsonschema:"description=Output bytes per second (0 = no rate limit)."`
	KeepOnOutputCap *bool     `yaml:"keep_on_output_cap,omitempty" jsonschema:"description=Discard output past the cap instead of killing the run."`
	Network         *string   `yaml:"network,omitempty" jsonschema:"enum=none,enum=loopback,description=Network of the sandbox."`
	TTY             *bool     `yaml:"tty,omitempty" jsonschema:"description=Whether a client may request a terminal."`
	NoExecWork      *bool     `yaml:"noexec_work,omitempty" jsonschema:"description=Writable mounts (workspace\\, /tmp) are noexec."`
	WorkspaceSize   *Size     `yaml:"workspace_size,omitempty" jsonschema:"description=Per-user workspace size cap (0 = none)."`
	Seccomp         *string   `yaml:"seccomp,omitempty" jsonschema:"description=default\\, strict\\, or the absolute path of a custom profile file."`
	UID             *uint32   `yaml:"uid,omitempty" jsonschema:"description=UID inside the sandbox (default 65534)."`
	GID             *uint32   `yaml:"gid,omitempty" jsonschema:"description=GID inside the sandbox (default 65534)."`
	Mounts          []string  `yaml:"mounts,omitempty" jsonschema:"description=Root names mounted in this profile (read-only roots read-only; the workspace writable)."`
}

// FileDefaults applies to every command of the file that does not set its own.
type FileDefaults struct {
	Profile string      `yaml:"profile,omitempty" jsonschema:"description=Profile of commands that name none."`
	Cwd     string      `yaml:"cwd,omitempty" jsonschema:"description=Root whose target is the default working directory."`
	Limits  *FileLimits `yaml:"limits,omitempty" jsonschema:"description=Argument sanitization bounds."`
}

// FileLimits bounds a request's arguments (global sanitization). Defaults:
// 4KiB per argument, 64 arguments, 64KiB in total.
type FileLimits struct {
	MaxArgBytes   *Size `yaml:"max_arg_bytes,omitempty" jsonschema:"description=Longest single argument in bytes (default 4KiB)."`
	MaxArgs       *int  `yaml:"max_args,omitempty" jsonschema:"minimum=0,description=Most arguments after the command name (default 64)."`
	MaxTotalBytes *Size `yaml:"max_total_bytes,omitempty" jsonschema:"description=Total bytes of all arguments (default 64KiB)."`
}

// FileEnv is a command's environment: fixed variables, variables a client
// may set (with value patterns) and secrets from the secrets file. The
// environment is otherwise empty. A command's env extends the file's env.
type FileEnv struct {
	Set     map[string]string         `yaml:"set,omitempty" jsonschema:"description=Fixed variables."`
	Client  map[string]*FileClientVar `yaml:"client,omitempty" jsonschema:"description=Variables a client may set; LD_*\\, GIT_*\\, PATH and similar are never allowed."`
	Secrets map[string]string         `yaml:"secrets,omitempty" jsonschema:"description=VARIABLE: key in secrets_file. Values reach the environment only."`
}

// FileClientVar is a client-settable variable.
type FileClientVar struct {
	Pattern string `yaml:"pattern" jsonschema:"required,description=RE2 pattern the whole value must match (anchored)."`
}

// FileGrammar is the argument grammar shared by commands and subcommands.
// Unset tri-state fields inherit from the enclosing command.
type FileGrammar struct {
	Description  string                     `yaml:"description,omitempty" jsonschema:"description=Shown to clients in the command list."`
	Roles        []string                   `yaml:"roles,omitempty" jsonschema:"description=Roles that may run this (a subcommand without roles uses its command's)."`
	EndOfOptions *string                    `yaml:"end_of_options,omitempty" jsonschema:"enum=--,enum=--end-of-options,enum=none,description=Marker inserted before positionals so none can act as a flag."`
	Bundle       *bool                      `yaml:"bundle,omitempty" jsonschema:"description=Short flags may be bundled (-la)."`
	PrefixMatch  *bool                      `yaml:"prefix_match,omitempty" jsonschema:"description=Unique prefixes of long flags are accepted and expanded (GNU getopt)."`
	Order        string                     `yaml:"order,omitempty" jsonschema:"enum=flags_first,enum=positionals_first,description=Order of the final argv (find needs positionals_first)."`
	Flags        []*FileFlag                `yaml:"flags,omitempty" jsonschema:"description=Allowed flags."`
	Positionals  *FilePositionals           `yaml:"positionals,omitempty" jsonschema:"description=Allowed positional arguments (none when absent)."`
	Deny         []string                   `yaml:"deny,omitempty" jsonschema:"description=Flags that never pass\\, whatever else matches; inherited by subcommands."`
	Limits       *FileLimits                `yaml:"limits,omitempty" jsonschema:"description=Overrides of the argument bounds."`
	Subcommands  map[string]*FileSubcommand `yaml:"subcommands,omitempty" jsonschema:"description=git-style subcommands; when present one is required."`
}

// FileCommand is a command clients may name.
type FileCommand struct {
	Path        string   `yaml:"path" jsonschema:"required,description=Absolute path of the binary inside the sandbox (the same path on the host)."`
	SHA256      string   `yaml:"sha256,omitempty" jsonschema:"pattern=^[0-9a-f]{64}$,description=Pinned SHA-256 of the binary; a mismatch is a load error."`
	Profile     string   `yaml:"profile,omitempty" jsonschema:"description=Sandbox profile (default: defaults.profile)."`
	Cwd         string   `yaml:"cwd,omitempty" jsonschema:"description=Root whose target is the working directory."`
	Env         *FileEnv `yaml:"env,omitempty" jsonschema:"description=Extends the file's env."`
	FileGrammar `yaml:",inline"`
}

// FileSubcommand is a git-style subcommand (the first word after the
// command's own flags).
type FileSubcommand struct {
	FileGrammar `yaml:",inline"`
}

// FileFlag is one allowed flag. Names start with "--" (long) or "-" (short:
// one character; longer single-dash names such as find's -name are matched
// whole). The first long name (else the first name) is canonical: the final
// argv always uses it.
type FileFlag struct {
	Names     []string `yaml:"names" jsonschema:"required,description=Spellings\\, e.g. [-n\\, --max-count]."`
	FileValue `yaml:",inline"`
	Forms     []string `yaml:"forms,omitempty" jsonschema:"enum=equals,enum=separate,enum=attached,description=Accepted value forms: --f=v\\, --f v / -f v\\, -fv (default all)."`
}

// FileValue is the type of a flag value or positional argument.
type FileValue struct {
	Type      string   `yaml:"type,omitempty" jsonschema:"enum=none,enum=int,enum=enum,enum=regex,enum=path,enum=text,description=Value type (flags default to none: no value)."`
	Min       *int64   `yaml:"min,omitempty" jsonschema:"description=int: smallest value."`
	Max       *int64   `yaml:"max,omitempty" jsonschema:"description=int: largest value."`
	Values    []string `yaml:"values,omitempty" jsonschema:"description=enum: the allowed values."`
	Pattern   string   `yaml:"pattern,omitempty" jsonschema:"description=regex: RE2 pattern the whole value must match."`
	Roots     []string `yaml:"roots,omitempty" jsonschema:"description=path: roots the path must lie in."`
	MustExist *bool    `yaml:"must_exist,omitempty" jsonschema:"description=path: the path must exist (default true)."`
	MaxLen    *int     `yaml:"max_len,omitempty" jsonschema:"description=text: longest value in bytes (default: the argument limit)."`
	Multiline bool     `yaml:"multiline,omitempty" jsonschema:"description=text: may contain newlines and tabs."`
}

// FilePositionals describes positional arguments: Items[i] types the i-th
// one, Rest types every one after the items (none allowed when absent).
type FilePositionals struct {
	Min   *int         `yaml:"min,omitempty" jsonschema:"minimum=0,description=Fewest positionals (default 0)."`
	Max   *int         `yaml:"max,omitempty" jsonschema:"minimum=0,description=Most positionals (default: len(items)\\, or the argument limit with rest)."`
	Items []*FileValue `yaml:"items,omitempty" jsonschema:"description=Types of the leading positionals\\, in order."`
	Rest  *FileValue   `yaml:"rest,omitempty" jsonschema:"description=Type of every positional after the items."`
}

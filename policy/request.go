package policy

// Request is what a caller asks for. Either Command (+Args) or Cmdline is set.
type Request struct {
	Subject string            // verified JWT subject
	Roles   []string          // verified roles
	Command string            // a command name, never a path
	Args    []string          // argv after the command name
	Cmdline string            // one string, split by SplitCmdline
	Env     map[string]string // client-set variables; only those the policy names
	Cwd     string            // working directory inside the sandbox, "" = the command's default
	TTY     bool              // the caller asks for a terminal
	Trace   bool              // record every rule considered
}

// Mount is a host directory made visible inside the sandbox.
type Mount struct {
	Root      string `json:"root"`   // root name in the policy
	Source    string `json:"source"` // host path (templated for workspaces)
	Target    string `json:"target"` // path inside the sandbox
	ReadOnly  bool   `json:"readonly"`
	Workspace bool   `json:"workspace"` // the per-user writable workspace
}

// RuleRef points at the rule that fired.
type RuleRef struct {
	ID   string `json:"id"`             // e.g. "commands.git.subcommands.log"
	File string `json:"file,omitempty"` // policy file
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// TraceStep is one rule considered while deciding.
type TraceStep struct {
	Rule    RuleRef `json:"rule"`
	Outcome string  `json:"outcome"` // "match", "skip", "deny", ...
	Detail  string  `json:"detail"`
}

// Decision is the answer to a Request. A Decision with Allowed false carries
// a Reason; one with Allowed true carries everything the sandbox needs.
type Decision struct {
	Allowed bool       `json:"allowed"`
	Reason  ReasonCode `json:"reason"`  // "allowed" or a denial code
	Message string     `json:"message"` // safe for the client: reveals nothing of the policy
	Rule    RuleRef    `json:"rule"`

	Command string   `json:"command,omitempty"`  // command name
	Path    string   `json:"path,omitempty"`     // absolute binary path inside the sandbox
	Argv    []string `json:"argv,omitempty"`     // final argv, Argv[0] == Path
	Env     []string `json:"-"`                  // final environment KEY=VALUE, secrets included: never log
	EnvKeys []string `json:"env_keys,omitempty"` // names only, safe to show
	Cwd     string   `json:"cwd,omitempty"`
	Mounts  []Mount  `json:"mounts,omitempty"`
	Profile *Profile `json:"profile,omitempty"`
	TTY     bool     `json:"tty,omitempty"`

	PolicyHash string      `json:"policy_hash"`
	Trace      []TraceStep `json:"trace,omitempty"`
}

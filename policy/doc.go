// Package policy is execgate's policy model: it loads policy files strictly
// (every error with file:line:col, a code and a message), validates and
// compiles them into an immutable Set, and decides for each request whether a
// subject with some roles may run a command with some arguments, returning a
// Decision that explains itself (rule, reason code, optional trace).
//
// The package is pure Go: it imports neither gin nor libcontainer and needs no
// cgo. Lifecycle: Load -> validate -> compile -> Decide.
//
// Where things are:
//   - file.go, units.go: the policy file model (`version: 1`) and its sizes,
//     durations and umasks; schema.go turns it into a JSON Schema.
//   - load.go, yamlnode.go: reading files and strict yaml.Node decoding.
//   - validate*.go, env.go, secrets.go: the load checks, one small function each.
//   - defaults.go: every default, with its security effect.
//   - compile.go, compiled.go: the immutable compiled form and its canonical hash.
//   - decide.go, match.go, flags.go, values.go, paths.go, sanitize.go,
//     cmdline.go, roles.go, trace.go, messages.go: deciding a Request.
//   - commands_info.go: what a caller may run, for GET /v1/commands.
//   - lint*.go, diff*.go, inspect.go: the reviewers' tools.
//
// Deciding is deny by default. Every argument is sanitized before any rule,
// flags are normalized the way GNU getopt parses them before the allowlist and
// the deny list are consulted, the final argv uses canonical spellings, and
// path arguments are checked lexically and then on the host with
// openat2(RESOLVE_BENEATH). The host check is advisory: the sandbox mounts are
// the boundary.
package policy

// Package policy is execgate's policy model: it loads policy files strictly
// (every error with file:line:col, a code and a message), validates and
// compiles them into an immutable Set, and decides for each request whether a
// subject with some roles may run a command with some arguments, returning a
// Decision that explains itself (rule, reason code, optional trace).
//
// The package is pure Go: it imports neither gin nor libcontainer and needs no
// cgo. Lifecycle: Load -> validate -> compile -> Decide.
package policy

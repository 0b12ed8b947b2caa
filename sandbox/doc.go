// Package sandbox runs one command in a fresh libcontainer container:
// namespaces, a read-only root, a writable per-user workspace, seccomp,
// cgroup limits, rlimits, a wall-clock timeout and capped, back-pressured
// output. It never falls back to a weaker sandbox: when a piece is missing,
// Selfcheck names it and New refuses.
package sandbox

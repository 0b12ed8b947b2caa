// Package sandbox runs one command in a fresh libcontainer container:
// namespaces, a read-only root, a writable per-user workspace, seccomp,
// cgroup limits, rlimits, a wall-clock timeout and capped, back-pressured
// output. It never falls back to a weaker sandbox: when a piece is missing,
// Selfcheck names it and New refuses.
//
// A Manager owns one instance (state root, cgroup parent, lock):
//
//	m, err := sandbox.New(ctx, sandbox.Config{Instance: "gw1"}, log)
//	...
//	defer m.Close()
//	res, err := m.Run(ctx, sandbox.Spec{ID: reqID, Argv: dec.Argv, Env: dec.Env,
//		Cwd: dec.Cwd, Mounts: dec.Mounts, Profile: *dec.Profile, Stdout: w, Stderr: w})
//
// The binary must act as libcontainer's init when started as
// "<binary> init" (cmd/execgate/init.go). Every container's PID 1 is the
// same binary again, started as /.execgate/init: package sandbox/pid1,
// which this package links in, loads the profile's precompiled seccomp
// program, runs the command as its child, forwards signals and reports
// the command's exact end. docs/sandbox.md describes the sandbox, its
// mount table, seccomp profiles, PID 1, limits and life cycle.
package sandbox

package sandbox

import (
	"os"
	"sync"
)

// The container init's environment. libcontainer starts "<binary> init"
// (a fresh Go runtime in every run) with GOMAXPROCS copied from this
// process's environment and nothing else of it. With GOMAXPROCS unset, that
// runtime sizes itself from the CPUs and the cgroup's CPU quota (it reads
// /proc/self/cgroup, the mount table and the cpu controller's files) and
// creates a P per CPU, and libcontainer's init then cuts it to one with a
// stop-the-world: about a tenth of the init's CPU time on every run. With
// GOMAXPROCS=1 the init starts the way it runs.
//
// The variable is set in this process's environment once, when the first
// Manager is built; this process's own runtime read its GOMAXPROCS at start
// and is not affected. Any other child this process starts must get
// Environ, the environment as the process started, instead of os.Environ.

// initGOMAXPROCS is the container init's GOMAXPROCS.
const initGOMAXPROCS = "1"

var (
	startEnv     = os.Environ() // package initialisation: before any Setenv below
	initEnvOnce  sync.Once
	initEnvError error
)

// setInitEnv sets GOMAXPROCS for every container init of this process.
func setInitEnv() error {
	initEnvOnce.Do(func() { initEnvError = os.Setenv("GOMAXPROCS", initGOMAXPROCS) })
	return initEnvError
}

// Environ is this process's environment as it started (before a Manager
// set GOMAXPROCS for its container inits), for the other processes it
// starts: the gateway's front must size its own runtime.
func Environ() []string {
	return append([]string(nil), startEnv...)
}

// Package containerinit makes a binary act as libcontainer's container
// init. The sandbox re-executes the running binary as "<binary> init" in
// every new container (trap 2 of the probe notes), so the init pays the Go
// runtime start and the initialiser of every package that runs before it.
// Importing this package (blank) runs the init from this package's own
// initialiser instead of from main: Go initialises packages in import-path
// order as soon as their dependencies are done, and this package depends
// only on libcontainer, so the initialisers of the rest of the binary
// (policy, gateway, gin, prometheus, ...) never run in a container.
//
// It also links the two packages the init needs: libcontainer/nsenter (its
// cgo constructor joins the container's namespaces before the Go runtime
// starts) and cgroups/devices (device rules of the devices cgroup).
package containerinit

import (
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
	// Device rules of the devices cgroup: without it the cgroup manager
	// cannot apply them.
	_ "github.com/opencontainers/cgroups/devices"
	// nsenter's cgo constructor runs before the Go runtime in "<binary>
	// init" and joins the container's namespaces.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// Arg is the first argument libcontainer starts its init with.
const Arg = "init"

func init() {
	if IsInit(os.Args) {
		Run() // does not return
	}
}

// IsInit reports whether args (os.Args) start libcontainer's init.
func IsInit(args []string) bool {
	return len(args) > 1 && args[1] == Arg
}

// Run is libcontainer's init; it does not return. The package initialiser
// already calls it for "<binary> init"; Run is for a main that checks the
// arguments itself.
func Run() {
	// This is the container's init task (nsenter's stage 2: cloned with
	// CLONE_PARENT, so its parent is the Manager's starter thread). A
	// clone starts with no parent-death signal and libcontainer v1.5 sets
	// one only on its stage 0 (ParentDeathSignal), so without this a
	// Manager killed with SIGKILL left its containers running. libcontainer
	// keeps the signal across its credential changes, and it survives the
	// exec of the sandbox's PID 1; a PID namespace dies with its PID 1. If
	// the Manager died before this line, libcontainer's next sync with it
	// fails and the init exits.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "container init: parent-death signal: %v\n", err)
		os.Exit(1) // a container that could outlive its Manager does not start
	}
	libcontainer.Init()
}

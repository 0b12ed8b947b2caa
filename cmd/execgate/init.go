package main

import (
	"github.com/opencontainers/runc/libcontainer"
	// Device rules of the devices cgroup (trap 2: without it the cgroup
	// manager cannot apply them).
	_ "github.com/opencontainers/cgroups/devices"
	// nsenter's cgo constructor runs before the Go runtime in "execgate
	// init" and joins the container's namespaces; it must be linked into
	// the main binary.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// sandboxInit is libcontainer's container init: the sandbox re-executes
// this binary as "execgate init" inside every new container. It does not
// return.
func sandboxInit() {
	libcontainer.Init()
}

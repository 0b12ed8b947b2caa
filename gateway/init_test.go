package gateway

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// Device rules of the devices cgroup.
	_ "github.com/opencontainers/cgroups/devices"
	// nsenter's cgo constructor joins the container's namespaces when this
	// test binary is re-executed as "init".
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// The test binary is libcontainer's init too: the sandbox re-executes
// /proc/self/exe as "<binary> init" in each new container.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // does not return
	}
}

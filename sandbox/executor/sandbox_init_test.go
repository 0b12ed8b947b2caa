package executor

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's cgo constructor joins the namespaces before the Go runtime
	// starts when this test binary is re-executed as "init".
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	// Device rules of the devices cgroup.
	_ "github.com/opencontainers/cgroups/devices"
)

// The test binary is libcontainer's init too (the end-to-end tests run the
// real sandbox): libcontainer re-executes /proc/self/exe as
// "<binary> init" in each new container. This runs before TestMain.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // does not return
	}
}

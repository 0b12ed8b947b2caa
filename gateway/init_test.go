package gateway

// The test binary is libcontainer's init too: the sandbox re-executes
// /proc/self/exe as "<binary> init" in each new container. containerinit
// runs that init from its own package initialiser, before the rest of the
// test binary initialises.
import _ "github.com/execgate/execgate/sandbox/containerinit"

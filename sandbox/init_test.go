package sandbox

// The test binary is libcontainer's init too: libcontainer re-executes
// /proc/self/exe as "<binary> init" in each new container. The
// containerinit package runs the init from its own initialiser, before
// this package's dependencies (policy, ...) are initialised and long
// before TestMain (attack_main_test.go), so the init never runs the tests.
import _ "github.com/execgate/execgate/sandbox/containerinit"

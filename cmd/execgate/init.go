package main

// The sandbox re-executes this binary as "execgate init" inside every new
// container. containerinit runs libcontainer's init from its own package
// initialiser (it does not return), before the initialisers of the rest of
// the binary, and links nsenter and the devices cgroup (trap 2).
import "github.com/execgate/execgate/sandbox/containerinit"

// sandboxInit is reached only if containerinit's initialiser did not take
// over, which it always does for "execgate init"; it exists so main can
// refuse the verb explicitly.
func sandboxInit() {
	containerinit.Run()
}

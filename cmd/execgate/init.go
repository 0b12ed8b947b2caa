package main

import (
	"fmt"
	"os"
)

// sandboxInit is replaced by the sandbox owner with the libcontainer init
// entry point (libcontainer.Init plus the nsenter and devices imports).
func sandboxInit() {
	fmt.Fprintln(os.Stderr, "execgate init: sandbox support not built in")
	os.Exit(1)
}

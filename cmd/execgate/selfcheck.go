package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/sandbox"
)

func init() {
	register("selfcheck", "check namespaces, seccomp, cgroup controllers and the binary's location", runSelfcheck)
}

func runSelfcheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("execgate selfcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg sandbox.Config
	fs.StringVar(&cfg.Instance, "instance", "", "sandbox instance name (default \"default\")")
	fs.StringVar(&cfg.StateRoot, "state-root", "", "sandbox state root (default /run/execgate/<instance>)")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", "", "cgroup parent to check, as serve's sandbox.cgroup_parent (default /execgate/<instance>)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.CgroupParent != "" {
		if err := sandbox.ValidateCgroupParent(cfg.CgroupParent); err != nil {
			fmt.Fprintf(stderr, "execgate selfcheck: --cgroup-parent: %v\n", err)
			return 2
		}
	}
	checks, err := sandbox.Selfcheck(cfg)
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(stdout, "%s %-32s %s\n", mark, c.Name, c.Detail)
	}
	if err != nil {
		fmt.Fprintf(stderr, "execgate selfcheck: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "selfcheck passed: the sandbox can run here")
	return 0
}

// signalNumber returns the number of a signal name such as "SIGKILL".
func signalNumber(name string) int {
	return int(unix.SignalNum(name))
}

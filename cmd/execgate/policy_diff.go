package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/execgate/execgate/policy"
)

// runPolicyDiff implements `execgate policy diff [--json] OLD NEW`: it
// compiles both policies (each a file or a directory) and prints what NEW
// allows that OLD did not, what it tightened and what else changed. Binaries
// are not checked (OLD may come from another machine). Exit 0 when the two
// are equivalent, 1 when they differ, 2 on usage or load errors.
func runPolicyDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("execgate policy diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the changes as JSON")
	stateDir := fs.String("state-dir", defaultStateDir, "the gateway's state directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: execgate policy diff [--json] OLD NEW")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitUsage
	}
	opts := loadOptions(*stateDir)
	opts.SkipBinaryCheck = true
	var sets [2]*policy.Set
	for i, p := range fs.Args() {
		s, err := policy.Load(ctx, []string{p}, opts)
		if err != nil {
			var list policy.ErrorList
			if errors.As(err, &list) {
				fmt.Fprintln(stderr, list.Error())
			} else {
				fmt.Fprintf(stderr, "execgate policy diff: %v\n", err)
			}
			return exitUsage
		}
		sets[i] = s
	}
	changes := policy.Diff(sets[0], sets[1])
	var err error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if changes == nil {
			changes = []policy.Change{}
		}
		err = enc.Encode(changes)
	} else {
		err = policy.WriteDiff(stdout, changes)
	}
	if err != nil {
		fmt.Fprintf(stderr, "execgate policy diff: %v\n", err)
		return exitUsage
	}
	if len(changes) > 0 {
		return exitFinding
	}
	return exitOK
}

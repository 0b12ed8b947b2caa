package main

import (
	"context"
	"fmt"
	"io"

	"github.com/execgate/execgate/policy"
)

// runPolicySchema implements `execgate policy schema`: it prints the JSON
// Schema of policy files, generated from the Go file model. The committed
// policies/schema.json is this output (a test keeps them equal).
func runPolicySchema(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: execgate policy schema")
		return exitUsage
	}
	data, err := policy.Schema()
	if err != nil {
		fmt.Fprintf(stderr, "execgate policy schema: %v\n", err)
		return exitUsage
	}
	if _, err := stdout.Write(data); err != nil {
		return exitUsage
	}
	return exitOK
}

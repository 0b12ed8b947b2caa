package main

import (
	"context"
	"fmt"
	"io"
)

// runPolicySchema implements `execgate policy schema` (waiting for policy.Schema).
func runPolicySchema(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "execgate policy schema: not available yet")
	return exitUsage
}

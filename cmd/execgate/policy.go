package main

import (
	"context"
	"fmt"
	"io"
	"sort"
)

// This file registers `execgate policy`, the reviewer's tools, and routes to
// its verbs; each verb lives in its own policy_<verb>.go file.

// policyVerb is one verb of `execgate policy`. run returns the exit code.
type policyVerb struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Exit codes of the policy tools: 0 clean/allowed/passed, 1 a finding (load
// error, lint, denial, failed case, difference), 2 bad usage or an
// unreadable input.
const (
	exitOK      = 0
	exitFinding = 1
	exitUsage   = 2
)

var policyVerbs = map[string]policyVerb{
	"check":   {"load policy files and report every error (--strict: and security lints)", runPolicyCheck},
	"explain": {"decide one request against a policy and show the decision, rule, argv, profile and trace", runPolicyExplain},
	"test":    {"run policy test files (cases of input and expected decision)", runPolicyTest},
	"diff":    {"compare two compiled policies: what NEW allows that OLD did not, and what it tightened", runPolicyDiff},
	"schema":  {"print the JSON Schema of policy files", runPolicySchema},
}

func init() {
	register("policy", "policy tools: check, explain, test, diff, schema", runPolicy)
}

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		policyUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	v, ok := policyVerbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "execgate policy: unknown verb %q (try 'execgate policy help')\n", args[0])
		return exitUsage
	}
	return v.run(ctx, args[1:], stdout, stderr)
}

func policyUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: execgate policy <verb> [arguments]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(policyVerbs))
	for n := range policyVerbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, policyVerbs[n].summary)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// defaultStateDir is the gateway's state directory unless told otherwise;
// the policy tools pass it to the loader so a root over it is an error.
const defaultStateDir = "/var/lib/execgate"

// loadOptions are the policy loader's options on the command line: the
// gateway's state directory, and the sandbox's validation of every custom
// seccomp profile file (libseccomp's syscall table, the forbidden list,
// what the sandbox's PID 1 needs), so that a bad file is a load error with
// its place in the policy, never a failure of every run.
func loadOptions(stateDir string) policy.LoadOptions {
	return policy.LoadOptions{StateDir: stateDir, CheckSeccompFile: sandbox.CheckSeccompProfile}
}

// runPolicyCheck implements `execgate policy check [--strict] [--set]
// [FILE|DIR]...`: every file (a directory's *.yaml and *.yml files) is
// loaded as a set of its own, or with --set all of them as one set, as the
// gateway does. It prints every load error, and with --strict every lint
// finding, as "file:line:col: code: message" and exits 1 if there was any.
func runPolicyCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("execgate policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "also report security lints (docs/policy.md, \"Strict lints\") as errors")
	asSet := fs.Bool("set", false, "load all arguments together as one policy set (as the gateway does)")
	stateDir := fs.String("state-dir", defaultStateDir, "the gateway's state directory (a root over it is an error)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: execgate policy check [--strict] [--set] [--state-dir DIR] [FILE|DIR]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"policies"}
	}
	var groups [][]string
	if *asSet {
		groups = [][]string{paths}
	} else {
		files, err := expandPolicyPaths(paths)
		if err != nil {
			fmt.Fprintf(stderr, "execgate policy check: %v\n", err)
			return exitFinding
		}
		for _, f := range files {
			groups = append(groups, []string{f})
		}
	}
	opts := loadOptions(*stateDir)
	problems := 0
	for _, g := range groups {
		problems += checkGroup(ctx, g, opts, *strict, stdout, stderr)
	}
	mode := ""
	if *strict {
		mode = " (strict)"
	}
	fmt.Fprintf(stderr, "checked %d policy set(s)%s: %d problem(s)\n", len(groups), mode, problems)
	if problems > 0 {
		return exitFinding
	}
	return exitOK
}

// checkGroup loads one set and prints its problems; it returns their count.
func checkGroup(ctx context.Context, paths []string, opts policy.LoadOptions, strict bool, stdout, stderr io.Writer) int {
	set, err := policy.Load(ctx, paths, opts)
	if err != nil {
		var list policy.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stdout, e.Error())
			}
			return len(list)
		}
		fmt.Fprintf(stdout, "%s: %v\n", strings.Join(paths, ", "), err)
		return 1
	}
	if !strict {
		return 0
	}
	findings := policy.Lint(set, policy.LintOptions{})
	for _, e := range findings {
		fmt.Fprintln(stdout, e.Error())
	}
	return len(findings)
}

// expandPolicyPaths turns FILE and DIR arguments into policy files: a
// directory stands for its *.yaml and *.yml files (not its subdirectories),
// in lexical order.
func expandPolicyPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("policy path: %w", err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("policy dir: %w", err)
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				names = append(names, filepath.Join(p, n))
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("policy dir %s: %w", p, policy.ErrNoFiles)
		}
		sort.Strings(names)
		out = append(out, names...)
	}
	return out, nil
}

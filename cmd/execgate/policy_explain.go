package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/execgate/execgate/policy"
)

// envFlags collects repeated --env KEY=VALUE flags.
type envFlags map[string]string

func (e envFlags) String() string { return "" }

func (e envFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	e[k] = val
	return nil
}

// explainArgs are the parsed arguments of `execgate policy explain`.
type explainArgs struct {
	paths    []string
	req      policy.Request
	asJSON   bool
	stateDir string
}

// parseExplainArgs parses the flags and the request; ok is false after a
// usage error has been printed.
func parseExplainArgs(args []string, stderr io.Writer) (a explainArgs, ok bool) {
	fs := flag.NewFlagSet("execgate policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Func("policy", "policy file or directory (repeatable; loaded as one set)", func(v string) error {
		a.paths = append(a.paths, v)
		return nil
	})
	sub := fs.String("sub", "", "the JWT subject")
	roles := fs.String("roles", "", "comma-separated roles")
	cmdline := fs.String("cmdline", "", "the request as one command-line string (instead of -- COMMAND ARGS...)")
	cwd := fs.String("cwd", "", "working directory inside the sandbox")
	tty := fs.Bool("tty", false, "ask for a terminal")
	fs.BoolVar(&a.asJSON, "json", false, "print the decision as JSON")
	fs.StringVar(&a.stateDir, "state-dir", defaultStateDir, "the gateway's state directory")
	env := envFlags{}
	fs.Var(env, "env", "client environment variable KEY=VALUE (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: execgate policy explain --policy P --sub SUBJECT --roles R[,R] [--cmdline \"...\" | -- COMMAND ARGS...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return a, false
	}
	a.req = policy.Request{Subject: *sub, Cmdline: *cmdline, Cwd: *cwd, TTY: *tty, Trace: true}
	if len(env) > 0 {
		a.req.Env = env
	}
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			a.req.Roles = append(a.req.Roles, r)
		}
	}
	rest := fs.Args()
	switch {
	case len(a.paths) == 0:
		fmt.Fprintln(stderr, "execgate policy explain: --policy is required")
		return a, false
	case (len(rest) == 0) == (*cmdline == ""):
		fmt.Fprintln(stderr, "execgate policy explain: give either --cmdline or -- COMMAND ARGS...")
		return a, false
	case len(rest) > 0:
		a.req.Command, a.req.Args = rest[0], rest[1:]
	}
	return a, true
}

// runPolicyExplain implements `execgate policy explain --policy P --sub S
// --roles R[,R] [--cmdline "..."] [-- COMMAND ARGS...]`: it decides one
// request and prints the decision, the rule, the final argv, the profile,
// the mounts and the trace. Exit 0 allowed, 1 denied, 2 usage or load error.
func runPolicyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a, ok := parseExplainArgs(args, stderr)
	if !ok {
		return exitUsage
	}
	set, err := policy.Load(ctx, a.paths, loadOptions(a.stateDir))
	if err != nil {
		var list policy.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(stderr, list.Error())
		} else {
			fmt.Fprintf(stderr, "execgate policy explain: %v\n", err)
		}
		return exitUsage
	}
	dec := set.Decide(ctx, a.req)
	if a.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(dec); err != nil {
			fmt.Fprintf(stderr, "execgate policy explain: %v\n", err)
			return exitUsage
		}
	} else {
		writeExplanation(stdout, set, dec)
	}
	if dec.Allowed {
		return exitOK
	}
	return exitFinding
}

// writeExplanation renders a decision for a reviewer. Environment values
// are never printed (they may hold secrets): names only.
func writeExplanation(w io.Writer, set *policy.Set, d *policy.Decision) {
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	fmt.Fprintf(w, "decision: %s\n", verdict)
	fmt.Fprintf(w, "reason:   %s\n", d.Reason)
	fmt.Fprintf(w, "message:  %s\n", d.Message)
	fmt.Fprintf(w, "rule:     %s\n", ruleText(d.Rule))
	if d.Allowed {
		fmt.Fprintf(w, "command:  %s (%s)\n", d.Command, d.Path)
		fmt.Fprintf(w, "argv:     %s\n", quoteArgv(d.Argv))
		fmt.Fprintf(w, "cwd:      %s\n", d.Cwd)
		fmt.Fprintf(w, "tty:      %t\n", d.TTY)
		fmt.Fprintf(w, "env:      %s\n", strings.Join(d.EnvKeys, " "))
		for _, m := range d.Mounts {
			mode := "ro"
			if !m.ReadOnly {
				mode = "rw"
			}
			fmt.Fprintf(w, "mount:    %s %s -> %s (%s)\n", m.Root, m.Source, m.Target, mode)
		}
		if d.Profile != nil {
			writeProfile(w, set, d.Profile)
		}
	}
	fmt.Fprintf(w, "policy:   %s\n", d.PolicyHash)
	if len(d.Trace) > 0 {
		fmt.Fprintln(w, "trace:")
		for _, t := range d.Trace {
			fmt.Fprintf(w, "  %-6s %s: %s\n", t.Outcome, ruleText(t.Rule), t.Detail)
		}
	}
}

func ruleText(r policy.RuleRef) string {
	if r.ID == "" {
		return "-"
	}
	if r.File == "" {
		return r.ID
	}
	return fmt.Sprintf("%s (%s:%d:%d)", r.ID, r.File, r.Line, r.Col)
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func writeProfile(w io.Writer, set *policy.Set, p *policy.Profile) {
	fmt.Fprintf(w, "profile:  %s (untrusted %t)\n", p.Name, p.Untrusted)
	fmt.Fprintf(w, "  timeout %s, kill_grace %s, memory %s, pids %d, cpu_quota %g, cpu_seconds %d\n",
		p.Timeout, p.KillGrace, policy.Size(p.MemoryBytes), p.Pids, p.CPUQuota, p.CPUSeconds)
	fmt.Fprintf(w, "  open_files %d, file_size %s, tmpfs %s, umask %s, max_output %s, output_rate %s\n",
		p.OpenFiles, policy.Size(int64(min(p.FileSizeBytes, 1<<62))), policy.Size(p.TmpfsBytes),
		policy.Umask(p.Umask), policy.Size(p.MaxOutputBytes), policy.Size(p.OutputRate))
	fmt.Fprintf(w, "  network %s, tty %t, noexec_work %t, workspace_size %s, seccomp %s, uid %d, gid %d, mounts [%s]\n",
		p.Network, p.TTY, p.NoExecWork, policy.Size(p.WorkspaceBytes), p.Seccomp, p.UID, p.GID,
		strings.Join(set.ProfileMounts(p.Name), ", "))
}

package policy

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// This file is the strict linter behind `execgate policy check --strict`: it
// reads a compiled Set and reports security findings that are not load
// errors but that a reviewer must see (docs/policy.md, "Strict lints"). A
// finding is an *Error like a load error, so it prints as
// "file:line:col: code: message". A finding is waived by a comment on the
// rule's line or on the line just above it:
//
//	admin:   # lint:waive role_grants_everything -- the operators' own break-glass role
//
// A waiver needs a known code and a reason; one that waives nothing is
// itself a finding, so stale waivers do not pile up.

// Lint codes (Error.Code of a finding).
const (
	LintInterpreter         = "interpreter_outside_untrusted"
	LintDangerousFlag       = "dangerous_flag_not_denied"
	LintDangerousSubcommand = "dangerous_subcommand"
	LintNetwork             = "network_enabled"
	LintWritableRoot        = "writable_shared_root"
	LintRoleEverything      = "role_grants_everything"
	LintLimit               = "limit_above_threshold"
	LintRunsAsRoot          = "runs_as_root"
	LintUmask               = "umask_permissive"
	LintTTY                 = "tty_outside_untrusted"
	LintWritableExec        = "writable_exec"
	LintBadWaiver           = "bad_waiver"
)

// LintCodes returns every lint code, sorted.
func LintCodes() []string {
	c := []string{LintInterpreter, LintDangerousFlag, LintDangerousSubcommand, LintNetwork,
		LintWritableRoot, LintRoleEverything, LintLimit, LintRunsAsRoot, LintUmask, LintTTY,
		LintWritableExec, LintBadWaiver}
	sort.Strings(c)
	return c
}

// LintOptions tune Lint.
type LintOptions struct {
	// ReadFile returns a policy file's text, read for waiver comments;
	// nil reads the file from disk (bounded like the loader).
	ReadFile func(name string) ([]byte, error)
}

// Lint returns the strict findings of a set that are not waived, plus every
// bad or unused waiver, sorted. It never modifies the set.
func Lint(s *Set, opts LintOptions) ErrorList {
	if s == nil {
		return nil
	}
	l := &linter{s: s}
	l.commands()
	l.profiles()
	l.roots()
	l.roles()
	read := opts.ReadFile
	if read == nil {
		read = readPolicyText
	}
	out := applyWaivers(l.found, s.Files(), read)
	out.Sort()
	return out
}

type linter struct {
	s     *Set
	found ErrorList
}

// at returns the position of a key below a rule (e.g. "profiles.p.network")
// when the file sets it there, else the rule's own position: a finding
// points at the line that causes it.
func (l *linter) at(rule RuleRef, id string) RuleRef {
	if r, ok := l.s.Source(id); ok && r.Line > 0 {
		return r
	}
	return rule
}

func (l *linter) add(r RuleRef, code, format string, args ...any) {
	line, col := r.Line, r.Col
	if line == 0 {
		line, col = 1, 1
	}
	l.found = append(l.found, &Error{File: r.File, Line: line, Col: col, Code: code, Message: fmt.Sprintf(format, args...)})
}

// programNames is every catalog name a command may be: its client name,
// its binary's base name and, when the binary is a symlink on this host
// (/usr/bin/sh -> dash, /usr/bin/vi -> vim.basic), the base name of its
// target.
func programNames(c *Command) []string {
	names := []string{programName(c.Name), programName(c.Path)}
	if real, err := filepath.EvalSymlinks(c.Path); err == nil {
		names = append(names, programName(real))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (l *linter) commands() {
	for _, c := range l.s.Commands() {
		prof, _ := l.s.Profile(c.Profile)
		l.limits(&c.Grammar)
		if prof.Untrusted {
			continue // the sandbox alone holds here; docs/policy.md says why
		}
		var shells, progs []string
		var flags []dangerousFlag
		for _, n := range programNames(c) {
			if _, ok := interpreters[n]; ok {
				shells = append(shells, n)
			}
			if _, ok := dangerousFlags[n]; ok {
				progs = append(progs, n)
			}
			for _, df := range dangerousFlags[n] {
				if !slices.ContainsFunc(flags, func(f dangerousFlag) bool { return f.Flag == df.Flag }) {
					flags = append(flags, df)
				}
			}
			l.subcommands(c.Name, n, c.Subcommands)
		}
		if len(shells) > 0 {
			l.add(c.Rule, LintInterpreter, "command %q runs %s (%s) in profile %q, which is not marked untrusted: whoever controls its arguments or input runs any code",
				c.Name, strings.Join(shells, "/"), interpreters[shells[0]], c.Profile)
		}
		for _, df := range flags {
			if !slices.Contains(c.Deny, df.Flag) {
				l.add(c.Rule, LintDangerousFlag, "command %q (%s) does not deny %s, which %s: add it to the command's deny list",
					c.Name, strings.Join(progs, "/"), df.Flag, df.Why)
			}
		}
	}
}

func (l *linter) subcommands(cmd, prog string, subs []*Subcommand) {
	for _, sc := range subs {
		if why, ok := dangerousSubcommands[prog][sc.Name]; ok {
			l.add(sc.Rule, LintDangerousSubcommand, "command %q allows subcommand %q, which %s", cmd, sc.Name, why)
		}
		l.limits(&sc.Grammar)
		l.subcommands(cmd, prog, sc.Subcommands)
	}
}

// Argument bound thresholds of the strict linter.
const (
	LintMaxArgBytes   = 64 << 10
	LintMaxArgs       = 1024
	LintMaxTotalBytes = 1 << 20
)

func (l *linter) limits(g *Grammar) {
	at := func(k string) RuleRef { return l.at(g.Rule, g.ID+".limits."+k) }
	if g.Limits.MaxArgBytes > LintMaxArgBytes {
		l.add(at("max_arg_bytes"), LintLimit, "%s: max_arg_bytes %s is above the strict threshold %s", g.ID, Size(g.Limits.MaxArgBytes), Size(LintMaxArgBytes))
	}
	if g.Limits.MaxArgs > LintMaxArgs {
		l.add(at("max_args"), LintLimit, "%s: max_args %d is above the strict threshold %d", g.ID, g.Limits.MaxArgs, LintMaxArgs)
	}
	if g.Limits.MaxTotalBytes > LintMaxTotalBytes {
		l.add(at("max_total_bytes"), LintLimit, "%s: max_total_bytes %s is above the strict threshold %s", g.ID, Size(g.Limits.MaxTotalBytes), Size(LintMaxTotalBytes))
	}
}

// Threshold is one profile limit the strict linter bounds.
type Threshold struct {
	Key   string // the profile key in a policy file
	Limit string // the largest value that passes, as documented
	// over reports the profile's value when it exceeds the limit.
	over func(p Profile) (string, bool)
}

func sizeOver(limit int64, v func(Profile) int64) func(Profile) (string, bool) {
	return func(p Profile) (string, bool) { n := v(p); return Size(n).String(), n > limit }
}

// Thresholds returns the profile limits the strict linter enforces, in
// documentation order. An unlimited value (0 where 0 means none) is over.
func Thresholds() []Threshold {
	return []Threshold{
		{"timeout", "1h", func(p Profile) (string, bool) { return p.Timeout.String(), p.Timeout > time.Hour }},
		{"kill_grace", "30s", func(p Profile) (string, bool) { return p.KillGrace.String(), p.KillGrace > 30*time.Second }},
		{"memory", "2GiB", sizeOver(2<<30, func(p Profile) int64 { return p.MemoryBytes })},
		{"pids", "512", func(p Profile) (string, bool) { return fmt.Sprint(p.Pids), p.Pids > 512 }},
		{"cpu_quota", "2", func(p Profile) (string, bool) { return fmt.Sprint(p.CPUQuota), p.CPUQuota > 2 }},
		{"cpu_seconds", "3600", func(p Profile) (string, bool) { return fmt.Sprint(p.CPUSeconds), p.CPUSeconds > 3600 }},
		{"open_files", "4096", func(p Profile) (string, bool) { return fmt.Sprint(p.OpenFiles), p.OpenFiles > 4096 }},
		{"file_size", "1GiB", sizeOver(1<<30, func(p Profile) int64 { return int64(min(p.FileSizeBytes, 1<<62)) })},
		{"tmpfs", "1GiB", sizeOver(1<<30, func(p Profile) int64 { return p.TmpfsBytes })},
		{"max_output", "64MiB", sizeOver(64<<20, func(p Profile) int64 { return p.MaxOutputBytes })},
		{"output_rate", "16MiB", sizeOver(16<<20, func(p Profile) int64 { return p.OutputRate })},
		{"workspace_size", "10GiB", func(p Profile) (string, bool) {
			if p.WorkspaceBytes == 0 {
				return "unlimited (0)", true
			}
			return Size(p.WorkspaceBytes).String(), p.WorkspaceBytes > 10<<30
		}},
	}
}

func (l *linter) profiles() {
	ws := ""
	for _, r := range l.s.Roots() {
		if r.Workspace {
			ws = r.Name
		}
	}
	for _, p := range l.s.Profiles() {
		rule := l.s.ProfileRule(p.Name)
		key := func(k string) RuleRef { return l.at(rule, "profiles."+p.Name+"."+k) }
		if p.Network != NetworkNone {
			l.add(key("network"), LintNetwork, "profile %q has network %q: commands in it reach the network", p.Name, p.Network)
		}
		for _, t := range Thresholds() {
			if t.Key == "workspace_size" && (ws == "" || !slices.Contains(l.s.ProfileMounts(p.Name), ws)) {
				continue
			}
			if v, over := t.over(p); over {
				l.add(key(t.Key), LintLimit, "profile %q: %s %s is above the strict threshold %s", p.Name, t.Key, v, t.Limit)
			}
		}
		if p.UID == 0 || p.GID == 0 {
			at := key("uid")
			if p.UID != 0 {
				at = key("gid")
			}
			l.add(at, LintRunsAsRoot, "profile %q runs commands as uid %d gid %d: root inside the sandbox widens every kernel attack", p.Name, p.UID, p.GID)
		}
		if p.Umask&0o002 == 0 {
			l.add(key("umask"), LintUmask, "profile %q has umask %04o: files it creates are world-writable", p.Name, p.Umask)
		}
		if p.Untrusted {
			continue
		}
		if p.TTY {
			l.add(key("tty"), LintTTY, "profile %q allows a terminal but is not marked untrusted: interactive programs are shells in disguise", p.Name)
		}
		if !p.NoExecWork {
			l.add(key("noexec_work"), LintWritableExec, "profile %q lets commands execute files in writable mounts but is not marked untrusted", p.Name)
		}
	}
}

func (l *linter) roots() {
	for _, r := range l.s.Roots() {
		if !r.Workspace && !r.ReadOnly {
			l.add(l.at(r.Rule, "roots."+r.Name+".readonly"), LintWritableRoot, "root %q (%s) is shared and writable: one user can change what every other user reads", r.Name, r.Host)
		}
	}
}

// roles reports a role that reaches every command and every subcommand of
// a set that has more than one role.
func (l *linter) roles() {
	roles := l.s.Roles()
	cmds := l.s.Commands()
	if len(roles) < 2 || len(cmds) == 0 {
		return
	}
	for _, r := range roles {
		all := true
		for _, c := range cmds {
			if !grantsAll(&c.Grammar, r.Closure) {
				all = false
				break
			}
		}
		if all {
			l.add(r.Rule, LintRoleEverything, "role %q is granted every command and subcommand of the set: grant it only what it needs", r.Name)
		}
	}
}

// grantsAll reports whether roles reach g and every subcommand below it.
func grantsAll(g *Grammar, roles []string) bool {
	if len(g.Subcommands) == 0 {
		return intersects(g.Roles, roles)
	}
	for _, sc := range g.Subcommands {
		if !grantsAll(&sc.Grammar, roles) {
			return false
		}
	}
	return true
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// readPolicyText reads a policy file for its waivers, bounded like the
// loader: a file that grew past the loader's limit has no waivers.
func readPolicyText(name string) ([]byte, error) {
	data, err := readPolicyFile(name)
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("policy %s: larger than %d bytes", name, maxFileBytes)
	}
	return data, nil
}

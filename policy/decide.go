package policy

import (
	"context"
	"fmt"
)

var subjectRE = newLazyRegexp(DefaultSubjectPattern)

// decider holds one decision's state.
type decider struct {
	s       *Set
	cmd     *Command
	subject string
	cwd     string // sandbox working directory (absolute, clean)
	tr      tracer

	openRoots []openRoot // host root directories opened for path checks
}

// Decide decides a request. It never panics and denies by default: only a
// request that passes every check is allowed. The Set is not modified.
func (s *Set) Decide(ctx context.Context, req Request) (dec *Decision) {
	if s == nil {
		return &Decision{Reason: ReasonInternal, Message: ReasonInternal.Message()}
	}
	d := &decider{s: s, subject: req.Subject, tr: tracer{on: req.Trace}}
	defer d.closeRoots()
	defer func() {
		if r := recover(); r != nil {
			dec = d.deny(ReasonInternal, RuleRef{}, fmt.Sprintf("panic: %v", r))
		}
	}()
	if err := ctx.Err(); err != nil {
		return d.deny(ReasonInternal, RuleRef{}, "context done")
	}
	return d.decide(req)
}

func (d *decider) deny(r ReasonCode, rule RuleRef, detail string) *Decision {
	if d.tr.on {
		d.tr.add(rule, "deny", string(r)+": "+detail)
	}
	dec := &Decision{Reason: r, Message: r.Message(), Rule: rule, PolicyHash: d.s.hash, Trace: d.tr.steps}
	if d.cmd != nil {
		dec.Command = d.cmd.Name
	}
	return dec
}

func (d *decider) denyFail(f *fail) *Decision { return d.deny(f.reason, f.rule, f.detail) }

func (d *decider) decide(req Request) *Decision {
	if !validSubject(req.Subject) {
		return d.deny(ReasonBadSubject, RuleRef{}, "subject does not match "+DefaultSubjectPattern)
	}
	name, args, bad := requestWords(req)
	if bad != "" {
		return d.deny(ReasonBadCmdline, RuleRef{}, bad)
	}
	cmd, ok := d.s.commands[name]
	if !ok || !nameRE.MatchString(name) {
		return d.deny(ReasonUnknownCommand, RuleRef{}, "no such command")
	}
	d.cmd = cmd
	if d.tr.on {
		d.tr.add(cmd.Rule, "match", "command "+name)
	}
	if !d.s.mayRunAny(req.Roles, &cmd.Grammar) {
		return d.deny(ReasonRoleForbidden, cmd.Rule, "no role of the caller runs this command")
	}
	d.tr.add(cmd.Rule, "match", "roles reach this command")
	if r, i := sanitizeArgs(args, cmd.Limits); r != "" {
		return d.deny(r, cmd.Rule, fmt.Sprintf("global sanitization, argument %d", i))
	}
	if d.tr.on {
		d.tr.add(cmd.Rule, "match", fmt.Sprintf("global sanitization of %d arguments", len(args)))
	}
	prof := d.s.profiles[cmd.Profile]
	if req.TTY && !prof.TTY {
		return d.deny(ReasonTTYNotAllowed, prof.Rule, "profile "+prof.Name+" allows no terminal")
	}
	if f := d.resolveCwd(req.Cwd, prof); f != nil {
		return d.denyFail(f)
	}
	argv, leaf, f := d.match(args, req.Roles)
	if f != nil {
		return d.denyFail(f)
	}
	return d.allow(req, prof, leaf, argv)
}

// allow builds the allowed decision once the environment passes.
func (d *decider) allow(req Request, prof *compiledProfile, leaf *Grammar, argv []string) *Decision {
	cmd := d.cmd
	env, keys, badVar := cmd.Env.buildEnv(req.Env)
	if badVar != "" {
		return d.deny(ReasonEnvNotAllowed, cmd.Rule, describeEnv(badVar)+" is not allowed")
	}
	if d.tr.on {
		d.tr.add(prof.Rule, "match", "profile "+prof.Name)
	}
	d.tr.add(leaf.Rule, "allow", "every rule passed")
	p := prof.Profile
	return &Decision{
		Allowed: true, Reason: ReasonAllowed, Message: ReasonAllowed.Message(), Rule: leaf.Rule,
		Command: cmd.Name, Path: cmd.Path, Argv: argv, Env: env, EnvKeys: keys, Cwd: d.cwd,
		Mounts: d.mounts(prof), Profile: &p, TTY: req.TTY, PolicyHash: d.s.hash, Trace: d.tr.steps,
	}
}

func validSubject(s string) bool {
	return s != "." && s != ".." && subjectRE.MatchString(s)
}

// requestWords returns the command name and argv of a request, splitting
// the command-line form.
func requestWords(req Request) (string, []string, string) {
	if req.Cmdline == "" {
		return req.Command, req.Args, ""
	}
	if req.Command != "" || len(req.Args) > 0 {
		return "", nil, "both cmdline and command/args given"
	}
	words, err := SplitCmdline(req.Cmdline)
	if err != nil {
		return "", nil, err.Error()
	}
	return words[0], words[1:], ""
}

// resolveCwd sets the sandbox working directory: the command's cwd root
// target, or the client's choice, which must be a directory inside a root
// the profile mounts.
func (d *decider) resolveCwd(cwd string, prof *compiledProfile) *fail {
	d.cwd = "/"
	if r, ok := d.s.roots[d.cmd.Cwd]; ok {
		d.cwd = r.Target
	}
	if cwd == "" {
		return nil
	}
	if r := checkChars(cwd, false); r != "" || hasShellMeta(cwd) {
		if r == "" {
			r = ReasonShellSyntax
		}
		return &fail{reason: r, detail: "working directory", rule: d.cmd.Rule}
	}
	if r, detail := d.checkPath(cwd, prof.Mounts, true, true); r != "" {
		return &fail{reason: r, detail: "working directory: " + detail, rule: prof.Rule}
	}
	r, rel, _ := d.locate(cwd, prof.Mounts)
	d.cwd = joinComps(r.Target, rel)
	return nil
}

// joinComps joins a target and lexical components, applying "..".
func joinComps(target string, rel []string) string {
	comps := splitComps(target)
	for _, c := range rel {
		if c == ".." {
			comps = comps[:len(comps)-1]
		} else {
			comps = append(comps, c)
		}
	}
	out := ""
	for _, c := range comps {
		out += "/" + c
	}
	if out == "" {
		return "/"
	}
	return out
}

// mounts lists the profile's roots as mounts, the workspace templated.
func (d *decider) mounts(prof *compiledProfile) []Mount {
	out := make([]Mount, 0, len(prof.Mounts))
	for _, n := range prof.Mounts {
		r := d.s.roots[n]
		out = append(out, Mount{Root: n, Source: d.hostDir(r), Target: r.Target, ReadOnly: r.ReadOnly, Workspace: r.Workspace})
	}
	return out
}

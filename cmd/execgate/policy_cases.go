package main

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/execgate/execgate/policy"
)

// This file is the policy test file format that `execgate policy test` runs
// (docs/policy.md, "Policy tests"):
//
//	version: 1
//	policy: ../default.yaml          # file or directory, relative to this file
//	defaults: {sub: alice, roles: [viewer]}
//	files:                           # created in each subject's workspace first
//	  alice: [notes.txt, src/, {path: out, symlink: /etc}]
//	cases:
//	  - name: viewer lists the workspace
//	    run: [ls, -la]               # or cmdline: "ls -la"
//	    expect: allow
//	    argv: [/usr/bin/ls, -l, -a, --]   # optional: the final argv
//	  - name: git -c is denied
//	    roles: [operator]
//	    cmdline: git -c core.pager=sh log
//	    expect: deny
//	    reason: flag_denied          # required with deny

// maxCaseFileBytes bounds one test file.
const maxCaseFileBytes = 4 << 20

// errCaseFile classifies every problem with a test file's content.
var errCaseFile = errors.New("bad policy test file")

// caseFileError is one problem in a test file, with its position.
type caseFileError struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *caseFileError) Error() string {
	return fmt.Sprintf("%s:%d:%d: bad_test: %s", e.File, e.Line, e.Col, e.Msg)
}

func (e *caseFileError) Unwrap() error { return errCaseFile }

// caseFile is one decoded policy test file.
type caseFile struct {
	Name     string               // the test file's path
	Policy   string               // the policy file or directory, resolved against the test file's directory
	Files    map[string][]fixture // subject -> entries created in that subject's workspace
	Cases    []*policyCase
	Defaults caseDefaults
}

type caseDefaults struct {
	Sub   string
	Roles []string
}

// fixture is one file, directory or symlink created in a workspace.
type fixture struct {
	Path    string // relative to the workspace, slash-separated
	Dir     bool
	Symlink string // target, when a symlink
	Content string
}

// policyCase is one request and its expected outcome.
type policyCase struct {
	Line, Col int
	Name      string
	Sub       string
	Roles     []string
	Run       []string // command name then arguments
	Cmdline   string
	Env       map[string]string
	Cwd       string
	TTY       bool
	Expect    string // "allow" or "deny"
	Reason    policy.ReasonCode
	Argv      []string // expected final argv, optional
	Profile   string   // expected profile name, optional
}

// request builds the policy request of a case.
func (c *policyCase) request() policy.Request {
	r := policy.Request{Subject: c.Sub, Roles: c.Roles, Cmdline: c.Cmdline, Env: c.Env, Cwd: c.Cwd, TTY: c.TTY, Trace: true}
	if len(c.Run) > 0 {
		r.Command, r.Args = c.Run[0], c.Run[1:]
	}
	return r
}

// parseCaseFile decodes a test file strictly: unknown keys, missing
// fields, unknown reason codes and bad fixture paths are errors.
func parseCaseFile(name string, data []byte) (*caseFile, error) {
	if len(data) > maxCaseFileBytes {
		return nil, &caseFileError{name, 1, 1, fmt.Sprintf("file larger than %d bytes", maxCaseFileBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &caseFileError{name, 1, 1, strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &caseFileError{name, 1, 1, "empty test file"}
	}
	p := &caseParser{file: name}
	cf := p.file_(doc.Content[0])
	if p.err != nil {
		return nil, p.err
	}
	cf.Name = name
	if !filepath.IsAbs(cf.Policy) {
		cf.Policy = filepath.Join(filepath.Dir(name), filepath.FromSlash(cf.Policy))
	}
	return cf, nil
}

// caseParser walks the YAML tree and keeps the first error.
type caseParser struct {
	file string
	err  error
}

func (p *caseParser) fail(n *yaml.Node, format string, args ...any) {
	if p.err == nil {
		p.err = &caseFileError{p.file, n.Line, n.Column, fmt.Sprintf(format, args...)}
	}
}

// fields returns a mapping's values by key, failing on unknown, duplicate
// or missing-required keys, aliases and non-mappings.
func (p *caseParser) fields(n *yaml.Node, what string, allowed, required []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s: expected a mapping", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind == yaml.AliasNode || v.Anchor != "" {
			p.fail(k, "%s: anchors, aliases and complex keys are not allowed", what)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.fail(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, "%s: duplicate key %q", what, k.Value)
		}
		out[k.Value] = v
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			p.fail(n, "%s: %q is required", what, r)
		}
	}
	return out
}

func (p *caseParser) str(n *yaml.Node, what string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, "%s: expected a string", what)
		return ""
	}
	return n.Value
}

func (p *caseParser) bool_(n *yaml.Node, what string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.fail(n, "%s: expected true or false", what)
		return false
	}
	return n.Value == "true"
}

func (p *caseParser) strs(n *yaml.Node, what string) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "%s: expected a list of strings", what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		out = append(out, p.str(e, what))
	}
	return out
}

func (p *caseParser) strMap(n *yaml.Node, what string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s: expected a mapping of strings", what)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[p.str(n.Content[i], what)] = p.str(n.Content[i+1], what)
	}
	return out
}

func (p *caseParser) file_(n *yaml.Node) *caseFile {
	f := p.fields(n, "test file", []string{"version", "policy", "defaults", "files", "cases"}, []string{"version", "policy", "cases"})
	cf := &caseFile{Files: map[string][]fixture{}}
	if v := f["version"]; v != nil && (v.Kind != yaml.ScalarNode || v.Value != "1") {
		p.fail(v, "version: must be 1")
	}
	cf.Policy = p.str(f["policy"], "policy")
	if f["policy"] != nil && cf.Policy == "" {
		p.fail(f["policy"], "policy: must name a policy file or directory")
	}
	if d := f["defaults"]; d != nil {
		df := p.fields(d, "defaults", []string{"sub", "roles"}, nil)
		cf.Defaults = caseDefaults{Sub: p.str(df["sub"], "defaults.sub"), Roles: p.strs(df["roles"], "defaults.roles")}
	}
	if fs := f["files"]; fs != nil {
		p.fixtures(fs, cf)
	}
	if cs := f["cases"]; cs != nil {
		if cs.Kind != yaml.SequenceNode || len(cs.Content) == 0 {
			p.fail(cs, "cases: expected a non-empty list")
		} else {
			for _, c := range cs.Content {
				cf.Cases = append(cf.Cases, p.case_(c, cf.Defaults))
			}
		}
	}
	return cf
}

func (p *caseParser) fixtures(n *yaml.Node, cf *caseFile) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "files: expected a mapping of subject to entries")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		sub := p.str(n.Content[i], "files")
		list := n.Content[i+1]
		if list.Kind != yaml.SequenceNode {
			p.fail(list, "files.%s: expected a list", sub)
			continue
		}
		for _, e := range list.Content {
			fx := p.fixture(e, "files."+sub)
			if fx.Path != "" {
				cf.Files[sub] = append(cf.Files[sub], fx)
			}
		}
	}
}

func (p *caseParser) fixture(n *yaml.Node, what string) fixture {
	var fx fixture
	if n.Kind == yaml.ScalarNode {
		fx.Path = p.str(n, what)
		fx.Dir = strings.HasSuffix(fx.Path, "/")
	} else {
		f := p.fields(n, what, []string{"path", "symlink", "content", "dir"}, []string{"path"})
		fx = fixture{Path: p.str(f["path"], what+".path"), Symlink: p.str(f["symlink"], what+".symlink"),
			Content: p.str(f["content"], what+".content"), Dir: p.bool_(f["dir"], what+".dir")}
	}
	clean := path.Clean(strings.TrimSuffix(fx.Path, "/"))
	if fx.Path == "" || path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		p.fail(n, "%s: %q must be a relative path inside the workspace", what, fx.Path)
		return fixture{}
	}
	fx.Path = clean
	return fx
}

var caseKeys = []string{"name", "sub", "roles", "run", "cmdline", "env", "cwd", "tty", "expect", "reason", "argv", "profile"}

func (p *caseParser) case_(n *yaml.Node, d caseDefaults) *policyCase {
	f := p.fields(n, "case", caseKeys, []string{"name", "expect"})
	c := &policyCase{Line: n.Line, Col: n.Column, Sub: d.Sub, Roles: d.Roles}
	c.Name = p.str(f["name"], "case.name")
	what := fmt.Sprintf("case %q", c.Name)
	if f["sub"] != nil {
		c.Sub = p.str(f["sub"], what+": sub")
	}
	if f["roles"] != nil {
		c.Roles = p.strs(f["roles"], what+": roles")
	}
	c.Run = p.strs(f["run"], what+": run")
	c.Cmdline = p.str(f["cmdline"], what+": cmdline")
	c.Env = p.strMap(f["env"], what+": env")
	c.Cwd = p.str(f["cwd"], what+": cwd")
	c.TTY = p.bool_(f["tty"], what+": tty")
	c.Expect = p.str(f["expect"], what+": expect")
	c.Reason = policy.ReasonCode(p.str(f["reason"], what+": reason"))
	c.Argv = p.strs(f["argv"], what+": argv")
	c.Profile = p.str(f["profile"], what+": profile")
	switch {
	case (f["run"] == nil) == (f["cmdline"] == nil):
		p.fail(n, "%s: exactly one of run and cmdline is required", what)
	case f["run"] != nil && len(c.Run) == 0:
		p.fail(f["run"], "%s: run needs at least the command name", what)
	case c.Expect != "allow" && c.Expect != "deny":
		p.fail(n, "%s: expect must be allow or deny, got %q", what, c.Expect)
	case c.Expect == "deny" && c.Reason == "":
		p.fail(n, "%s: a deny case needs a reason code", what)
	case c.Reason != "" && !knownReason(c.Reason):
		p.fail(f["reason"], "%s: unknown reason code %q", what, c.Reason)
	case c.Expect == "deny" && c.Reason == policy.ReasonAllowed:
		p.fail(f["reason"], "%s: a deny case cannot expect reason allowed", what)
	case c.Expect == "deny" && (c.Argv != nil || c.Profile != ""):
		p.fail(n, "%s: argv and profile apply to allow cases only", what)
	}
	return c
}

// readCaseFile reads and parses one test file.
func readCaseFile(name string, r io.Reader) (*caseFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCaseFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read test file %s: %w", name, err)
	}
	return parseCaseFile(name, data)
}

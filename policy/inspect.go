package policy

import (
	"fmt"
	"strings"
)

// This file holds read-only views of a compiled Set for the policy tools
// (lint, diff, explain, the policy test runner). None of them modifies s.

// WorkspaceRoot returns the set's workspace root, if it has one.
func (s *Set) WorkspaceRoot() (*Root, bool) {
	for _, r := range s.rootList {
		if r.Workspace {
			return r, true
		}
	}
	return nil, false
}

// WorkspaceHost returns the host directory of a subject's workspace: the
// workspace template with {sub} replaced. The subject is not validated
// here; Decide rejects a bad subject before any path is built.
func (s *Set) WorkspaceHost(sub string) (string, bool) {
	r, ok := s.WorkspaceRoot()
	if !ok {
		return "", false
	}
	return strings.Replace(r.Host, subPlaceholder, sub, 1), true
}

// WithWorkspaceHost returns a copy of s that is the same policy except that
// its workspace root's host template is tmpl (an absolute path ending in
// the component {sub}). `execgate policy test` uses it to decide against a
// throw-away directory of fixtures instead of the real workspaces; s itself
// is not changed. The copy's Hash is the original's.
func (s *Set) WithWorkspaceHost(tmpl string) (*Set, error) {
	if !isAbsClean(tmpl) || !strings.HasSuffix(tmpl, "/"+subPlaceholder) || strings.Count(tmpl, subPlaceholder) != 1 {
		return nil, fmt.Errorf("workspace template %q: want an absolute clean path ending in /%s", tmpl, subPlaceholder)
	}
	if _, ok := s.WorkspaceRoot(); !ok {
		return nil, fmt.Errorf("workspace template %q: the policy has no workspace root", tmpl)
	}
	c := new(Set)
	*c = *s // every field shared: the set is immutable
	c.roots = make(map[string]*Root, len(s.roots))
	c.rootList = make([]*Root, 0, len(s.rootList))
	for _, r := range s.rootList {
		if r.Workspace {
			cp := *r
			cp.Host = tmpl
			r = &cp
		}
		c.roots[r.Name] = r
		c.rootList = append(c.rootList, r)
	}
	return c, nil
}

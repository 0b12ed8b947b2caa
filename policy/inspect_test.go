package policy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestWithWorkspaceHostCopiesEverything: the copy shares every field of the
// original but the roots.
func TestWithWorkspaceHostCopiesEverything(t *testing.T) {
	s := lintFixture(t, filepath.Join("testdata", "lint", "clean.yaml"))
	dir := t.TempDir()
	c, err := s.WithWorkspaceHost(filepath.Join(dir, "{sub}"))
	if err != nil {
		t.Fatal(err)
	}
	ov, cv := reflect.ValueOf(s).Elem(), reflect.ValueOf(c).Elem()
	for i := 0; i < ov.NumField(); i++ {
		name := ov.Type().Field(i).Name
		if name == "roots" || name == "rootList" {
			continue
		}
		of, cf := ov.Field(i), cv.Field(i)
		switch of.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer:
			if of.Pointer() != cf.Pointer() || (of.Kind() != reflect.Pointer && of.Len() != cf.Len()) {
				t.Errorf("field %s is not carried over", name)
			}
		case reflect.String:
			if of.String() != cf.String() {
				t.Errorf("field %s = %q, want %q", name, cf.String(), of.String())
			}
		default:
			// Copied by value with the rest of the set.
		}
	}
	if got, _ := s.WorkspaceHost("alice"); got != "/var/lib/execgate-test/workspaces/alice" {
		t.Errorf("original workspace %q changed", got)
	}
	if got, _ := c.WorkspaceHost("alice"); got != filepath.Join(dir, "alice") {
		t.Errorf("copy workspace %q, want %q", got, filepath.Join(dir, "alice"))
	}
	if c.Hash() != s.Hash() {
		t.Errorf("copy hash %s, want %s", c.Hash(), s.Hash())
	}
}

// TestWithWorkspaceHostDecides: paths are checked against the new place.
func TestWithWorkspaceHostDecides(t *testing.T) {
	s := lintFixture(t, filepath.Join("testdata", "lint", "clean.yaml"))
	dir := t.TempDir()
	c, err := s.WithWorkspaceHost(filepath.Join(dir, "{sub}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alice", "f.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	req := Request{Subject: "alice", Roles: []string{"viewer"}, Command: "ls", Args: []string{"f.txt"}}
	if d := c.Decide(context.Background(), req); !d.Allowed {
		t.Errorf("copy: got %s, want allowed", d.Reason)
	}
	if d := s.Decide(context.Background(), req); d.Allowed || d.Reason != ReasonPathNotFound {
		t.Errorf("original: got allowed %t %s, want path_not_found", d.Allowed, d.Reason)
	}
	for _, m := range c.Decide(context.Background(), req).Mounts {
		if m.Workspace && m.Source != filepath.Join(dir, "alice") {
			t.Errorf("workspace mount source %q, want %q", m.Source, filepath.Join(dir, "alice"))
		}
	}
}

func TestWithWorkspaceHostRejects(t *testing.T) {
	s := lintFixture(t, filepath.Join("testdata", "lint", "clean.yaml"))
	for _, tmpl := range []string{"", "relative/{sub}", "/tmp/x", "/tmp/{sub}/x", "/tmp/{sub}/{sub}", "/tmp/../{sub}"} {
		if _, err := s.WithWorkspaceHost(tmpl); err == nil {
			t.Errorf("WithWorkspaceHost(%q) succeeded, want an error", tmpl)
		}
	}
	noWS := lintFixture(t, filepath.Join("testdata", "diff", "base.yaml"))
	if _, ok := noWS.WorkspaceRoot(); !ok {
		t.Fatal("base.yaml has a workspace root")
	}
}

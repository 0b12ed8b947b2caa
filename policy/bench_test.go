package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDecideGit is a typical decision: a git subcommand with three
// flags and two path arguments checked on the host.
func BenchmarkDecideGit(b *testing.B) {
	s := loadFixture(b, "decide.yaml", fixtureDir(b))
	req := Request{Subject: "alice", Roles: []string{"operator"}, Command: "git",
		Args: []string{"log", "-n5", "--oneline", "--author", "Ann", "--", "src", "README"}}
	ctx := context.Background()
	if d := s.Decide(ctx, req); !d.Allowed {
		b.Fatalf("got %s, want allowed", d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Decide(ctx, req)
	}
}

// BenchmarkDecideNoPaths is the same without host path checks (the
// matcher alone).
func BenchmarkDecideNoPaths(b *testing.B) {
	s := loadFixture(b, "decide.yaml", fixtureDir(b))
	req := Request{Subject: "alice", Roles: []string{"operator"}, Command: "git",
		Args: []string{"log", "-n5", "--oneline", "--author", "Ann"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.Decide(ctx, req)
	}
}

// BenchmarkLoad1000Commands loads a generated policy of 1,000 commands,
// each with flags, positionals and a subcommand.
func BenchmarkLoad1000Commands(b *testing.B) {
	data := []byte(generatePolicy(1000))
	if _, err := LoadBytes("gen.yaml", data, LoadOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("gen.yaml", data, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func generatePolicy(n int) string {
	var sb strings.Builder
	sb.WriteString("version: 1\nroles: {viewer: {}, operator: {includes: [viewer]}}\n")
	sb.WriteString("roots: {ws: {workspace: true, host: '/srv/execgate/ws/{sub}', target: /work}}\n")
	sb.WriteString("profiles: {std: {timeout: 10s, memory: 128MiB, mounts: [ws]}}\n")
	sb.WriteString("defaults: {profile: std, cwd: ws}\ncommands:\n")
	for i := range n {
		fmt.Fprintf(&sb, `  cmd%04d:
    path: /usr/bin/echo
    roles: [viewer]
    bundle: true
    end_of_options: "--"
    deny: [-c, --exec]
    flags:
      - {names: [-n, --count], type: int, min: 1, max: 100}
      - {names: [-v, --verbose]}
      - {names: [--format], type: enum, values: [json, text]}
      - {names: [--match], type: regex, pattern: '[a-z]{1,20}'}
    subcommands:
      show:
        roles: [operator]
        flags: [{names: [--all]}]
        positionals: {max: 4, rest: {type: path, roots: [ws]}}
`, i)
	}
	return sb.String()
}

// BenchmarkHostPathCheck is the host side of one path argument: open the
// root directory, openat2(RESOLVE_BENEATH) the path, close both. It is
// the floor under BenchmarkDecideGit's two path arguments.
func BenchmarkHostPathCheck(b *testing.B) {
	dir := fixtureDir(b)
	s := loadFixture(b, "decide.yaml", dir)
	d := &decider{s: s, subject: "alice", cwd: "/work"}
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := d.checkPath("src/main.go", []string{"workspace"}, true, false); r != "" {
			b.Fatalf("got %s", r)
		}
		d.closeRoots()
	}
}

package policy

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestDecideAllowed(t *testing.T) {
	dir := fixtureDir(t)
	s := loadFixture(t, "decide.yaml", dir)
	op := []string{"operator"}
	tests := []struct {
		name  string
		roles []string
		cmd   string
		args  []string
		want  []string // argv after the binary path
	}{
		{"git log grammar", []string{"viewer"}, "git", []string{"log", "-n5", "--one", "--", "src", "README"},
			[]string{"log", "--max-count=5", "--oneline", "--", "src", "README"}},
		{"long prefix expanded", op, "git", []string{"log", "--max-c=3"}, []string{"log", "--max-count=3"}},
		{"separate long value", op, "git", []string{"log", "--max-count", "3"}, []string{"log", "--max-count=3"}},
		{"global flag before subcommand", op, "git", []string{"--no-pager", "log", "-p"}, []string{"--no-pager", "log", "--patch"}},
		{"bundle with attached value at end", op, "git", []string{"log", "-psn7"}, []string{"log", "--patch", "-s", "--max-count=7"}},
		{"nested subcommand", op, "git", []string{"stash", "show", "-p"}, []string{"stash", "show", "-p"}},
		{"text may hold shell metacharacters", op, "git", []string{"log", "--grep", "a;b|c$(x)"}, []string{"log", "--grep=a;b|c$(x)"}},
		{"ls bundle", op, "ls", []string{"-la", "src"}, []string{"-l", "--all", "--", "src"}},
		{"ls dash positional after --", op, "ls", []string{"--", "src"}, []string{"--", "src"}},
		{"ls enum equals", op, "ls", []string{"--color=never"}, []string{"--color=never"}},
		{"ls read-only root", op, "ls", []string{"/docs/guide"}, []string{"--", "/docs/guide"}},
		{"ls symlink inside root", op, "ls", []string{"inside-link"}, []string{"--", "inside-link"}},
		{"ls dot dot inside root", op, "ls", []string{"src/sub/../../README"}, []string{"--", "src/sub/../../README"}},
		{"head attached short", op, "head", []string{"-n5", "README"}, []string{"--lines=5", "README"}},
		{"int leading zeros canonical", op, "head", []string{"-n", "010", "README"}, []string{"--lines=10", "README"}},
		{"head equals", op, "head", []string{"--lines=5", "README"}, []string{"--lines=5", "README"}},
		{"echo text", op, "echo", []string{"hello; rm -rf /"}, []string{"hello; rm -rf /"}},
		{"end-of-options marker", op, "cat", []string{"--", "-dash"}, []string{"--end-of-options", "-dash"}},
		{"attached-only form kept", op, "cat", []string{"-n3", "README"}, []string{"-n3", "--end-of-options", "README"}},
		{"touch new file", op, "touch", []string{"new.txt"}, []string{"--", "new.txt"}},
		{"find positionals first", op, "find", []string{".", "-name", "main.go", "-type", "f"}, []string{".", "-name", "main.go", "-type", "f"}},
		{"python multiline", []string{"runner"}, "python3", []string{"-c", "print(1)\n\tprint(2)"}, []string{"-c", "print(1)\n\tprint(2)"}},
		{"admin includes operator", []string{"admin"}, "touch", []string{"x"}, []string{"--", "x"}},
		{"unknown caller role ignored", []string{"root", "viewer"}, "ls", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(s, tt.roles, tt.cmd, tt.args...)
			if !d.Allowed {
				t.Fatalf("got denied %s (%s), want allowed", d.Reason, traceText(s, tt.roles, tt.cmd, tt.args))
			}
			c, _ := s.Command(tt.cmd)
			want := append([]string{c.Path}, tt.want...)
			if !slices.Equal(d.Argv, want) {
				t.Errorf("got argv %q, want %q", d.Argv, want)
			}
			checkAllowedInvariants(t, s, d)
		})
	}
}

func traceText(s *Set, roles []string, cmd string, args []string) string {
	d := s.Decide(context.Background(), Request{Subject: "alice", Roles: roles, Command: cmd, Args: args, Trace: true})
	var b strings.Builder
	for _, st := range d.Trace {
		b.WriteString(st.Rule.ID + " " + st.Outcome + " " + st.Detail + "; ")
	}
	return b.String()
}

func TestDecideDenied(t *testing.T) {
	dir := fixtureDir(t)
	s := loadFixture(t, "decide.yaml", dir)
	op := []string{"operator"}
	long := strings.Repeat("a", DefaultMaxArgBytes+1)
	big := strings.Repeat("b", 4000)
	tests := []struct {
		name  string
		roles []string
		cmd   string
		args  []string
		want  ReasonCode
	}{
		{"unknown command", op, "nosuch", nil, ReasonUnknownCommand},
		{"command as path", op, "/usr/bin/ls", nil, ReasonUnknownCommand},
		{"command dot dot", op, "..", nil, ReasonUnknownCommand},
		{"command relative path", op, "../ls", nil, ReasonUnknownCommand},
		{"empty command", op, "", nil, ReasonUnknownCommand},
		{"role missing", []string{"viewer"}, "touch", []string{"x"}, ReasonRoleForbidden},
		{"no roles", nil, "ls", nil, ReasonRoleForbidden},
		{"undeclared role", []string{"root"}, "ls", nil, ReasonRoleForbidden},
		{"subcommand role", []string{"viewer"}, "git", []string{"status"}, ReasonRoleForbidden},
		{"runner cannot git", []string{"runner"}, "git", []string{"log"}, ReasonRoleForbidden},
		{"unknown subcommand", op, "git", []string{"push"}, ReasonUnknownSubcmd},
		{"missing subcommand", op, "git", nil, ReasonUnknownSubcmd},
		{"subcommand after --", op, "git", []string{"--", "log"}, ReasonUnknownSubcmd},
		{"missing nested subcommand", op, "git", []string{"stash"}, ReasonUnknownSubcmd},
		{"unknown flag", op, "ls", []string{"-z"}, ReasonFlagNotAllowed},
		{"unknown long flag", op, "git", []string{"log", "--bogus"}, ReasonFlagNotAllowed},
		{"ambiguous prefix", op, "git", []string{"log", "--a"}, ReasonFlagNotAllowed},
		{"prefix without prefix_match", op, "ls", []string{"--al"}, ReasonFlagNotAllowed},
		{"bundle without bundle", op, "find", []string{".", "-nt"}, ReasonFlagNotAllowed},
		{"subcommand flag at command level", op, "git", []string{"--oneline", "log"}, ReasonFlagNotAllowed},
		{"git -c", op, "git", []string{"-c", "core.pager=sh", "log"}, ReasonFlagDenied},
		{"git -c attached", op, "git", []string{"-ccore.pager=sh", "log"}, ReasonFlagDenied},
		{"git -cx=y", op, "git", []string{"-cx=y", "log"}, ReasonFlagDenied},
		{"git -c in subcommand", op, "git", []string{"log", "-c"}, ReasonFlagDenied},
		{"git -c bundled", op, "git", []string{"log", "-sc"}, ReasonFlagDenied},
		{"upload-pack prefix", op, "git", []string{"--upload-pa=evil", "log"}, ReasonFlagDenied},
		{"upload-pack prefix in subcommand", op, "git", []string{"fetch", "--upload-pa=evil"}, ReasonFlagDenied},
		{"upload-pack exact", op, "git", []string{"fetch", "--upload-pack", "evil"}, ReasonFlagDenied},
		{"exec equals empty", op, "git", []string{"log", "--exec="}, ReasonFlagDenied},
		{"exec prefix", op, "git", []string{"log", "--exe"}, ReasonFlagDenied},
		{"find -exec", op, "find", []string{".", "-exec", "sh", ";"}, ReasonFlagDenied},
		{"find -delete", op, "find", []string{".", "-delete"}, ReasonFlagDenied},
		{"find -exec=", op, "find", []string{".", "-exec=x"}, ReasonFlagDenied},
		{"int zero", op, "head", []string{"-n", "0", "README"}, ReasonBadFlagValue},
		{"int word", op, "head", []string{"-n", "abc", "README"}, ReasonBadFlagValue},
		{"int too big", op, "head", []string{"-n99999", "README"}, ReasonBadFlagValue},
		{"int overflow", op, "head", []string{"-n", "99999999999999999999", "README"}, ReasonBadFlagValue},
		{"int plus sign", op, "head", []string{"-n", "+5", "README"}, ReasonBadFlagValue},
		{"missing value", op, "head", []string{"README", "-n"}, ReasonBadFlagValue},
		{"enum", op, "ls", []string{"--color=rainbow"}, ReasonBadFlagValue},
		{"separate form not allowed", op, "cat", []string{"-n", "3", "README"}, ReasonBadFlagValue},
		{"form not allowed", op, "ls", []string{"--color", "auto"}, ReasonBadFlagValue},
		{"value on none flag", op, "git", []string{"log", "--oneline=x"}, ReasonBadFlagValue},
		{"regex mismatch", op, "git", []string{"log", "--author", "bob_1"}, ReasonBadFlagValue},
		{"python -c attached form", []string{"runner"}, "python3", []string{"-cprint(1)"}, ReasonBadFlagValue},
		{"dash positional without marker", op, "head", []string{"--", "-x"}, ReasonBadArgument},
		{"stdin dash without marker", op, "head", []string{"-"}, ReasonBadArgument},
		{"too many positionals", op, "head", []string{"README", "src/main.go"}, ReasonTooManyArguments},
		{"too many arguments", op, "echo", make([]string, DefaultMaxArgs+1), ReasonTooManyArguments},
		{"positionals for no-positional", op, "git", []string{"status", "x"}, ReasonTooManyArguments},
		{"too few", op, "head", nil, ReasonTooFewArguments},
		{"argument too long", op, "echo", []string{long}, ReasonArgumentTooLong},
		{"text over max_len", op, "echo", []string{strings.Repeat("x", 101)}, ReasonArgumentTooLong},
		{"request too large", op, "echo", slices.Repeat([]string{big}, 17), ReasonRequestTooLarge},
		{"ESC sequence", op, "echo", []string{"\x1b[31mred"}, ReasonControlCharacter},
		{"C1 CSI", op, "echo", []string{"\u009b31m"}, ReasonControlCharacter},
		{"C1 NEL", op, "echo", []string{"a\u0085b"}, ReasonControlCharacter},
		{"DEL", op, "echo", []string{"a\x7f"}, ReasonControlCharacter},
		{"NUL", op, "echo", []string{"a\x00b"}, ReasonControlCharacter},
		{"newline in single-line text", op, "echo", []string{"a\nb"}, ReasonControlCharacter},
		{"tab in path", op, "ls", []string{"a\tb"}, ReasonControlCharacter},
		{"newline in flag", op, "ls", []string{"-l\n"}, ReasonControlCharacter},
		{"newline in subcommand", op, "git", []string{"log\n"}, ReasonControlCharacter},
		{"tab in flag value name", op, "git", []string{"log", "--grep\t=x"}, ReasonControlCharacter},
		{"CR in multiline text", []string{"runner"}, "python3", []string{"-c", "a\rb"}, ReasonControlCharacter},
		{"bidi override", op, "echo", []string{"a\u202eb"}, ReasonControlCharacter},
		{"invalid UTF-8", op, "echo", []string{"\xff\xfe"}, ReasonInvalidUTF8},
		{"overlong UTF-8", op, "echo", []string{"\xc0\xaf"}, ReasonInvalidUTF8},
		{"metachar in path", op, "ls", []string{"a;b"}, ReasonShellSyntax},
		{"command substitution in path", op, "ls", []string{"$(id)"}, ReasonShellSyntax},
		{"space in path", op, "ls", []string{"a b"}, ReasonShellSyntax},
		{"metachar in int", op, "head", []string{"-n", "5;", "README"}, ReasonShellSyntax},
		{"glob in regex value", op, "find", []string{".", "-name", "*.go"}, ReasonShellSyntax},
		{"dot dot leaves root", op, "ls", []string{"../alice2"}, ReasonPathOutsideRoot},
		{"absolute outside", op, "ls", []string{"/etc"}, ReasonPathOutsideRoot},
		{"absolute dot dot", op, "ls", []string{"/work/../etc"}, ReasonPathOutsideRoot},
		{"leave and reenter", op, "ls", []string{"../work/README"}, ReasonPathOutsideRoot},
		{"component not prefix", op, "ls", []string{"/work2/x"}, ReasonPathOutsideRoot},
		{"component not prefix docs", op, "ls", []string{"/docsx"}, ReasonPathOutsideRoot},
		{"absolute symlink", op, "ls", []string{"abs-escape"}, ReasonPathOutsideRoot},
		{"relative symlink", op, "ls", []string{"rel-escape"}, ReasonPathOutsideRoot},
		{"directory symlink", op, "ls", []string{"dir-escape/secret"}, ReasonPathOutsideRoot},
		{"symlink to root", op, "ls", []string{"rootlink/etc/passwd"}, ReasonPathOutsideRoot},
		{"symlink then dot dot", op, "ls", []string{"rootlink/../etc"}, ReasonPathOutsideRoot},
		{"dangling absolute symlink", op, "touch", []string{"dangling-abs"}, ReasonPathOutsideRoot},
		{"write through symlink dir", op, "touch", []string{"dir-escape/new"}, ReasonPathOutsideRoot},
		{"root not allowed for value", op, "touch", []string{"/docs/x"}, ReasonPathOutsideRoot},
		{"not found", op, "ls", []string{"nosuch"}, ReasonPathNotFound},
		{"parent not found", op, "touch", []string{"nodir/new"}, ReasonPathNotFound},
		{"file as dir", op, "ls", []string{"README/x"}, ReasonPathNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(s, tt.roles, tt.cmd, tt.args...)
			if d.Allowed || d.Reason != tt.want {
				t.Fatalf("got allowed=%v reason %s, want denied %s (trace: %s)", d.Allowed, d.Reason, tt.want, traceText(s, tt.roles, tt.cmd, tt.args))
			}
			checkDenialShape(t, d)
		})
	}
}

// checkDenialShape: a denial carries nothing the sandbox could run and a
// message that is the fixed text of its reason.
func checkDenialShape(t *testing.T, d *Decision) {
	t.Helper()
	if len(d.Argv) != 0 || len(d.Env) != 0 || d.Profile != nil || len(d.Mounts) != 0 {
		t.Errorf("denial carries run data: %+v", d)
	}
	if d.Message != d.Reason.Message() {
		t.Errorf("got message %q, want %q", d.Message, d.Reason.Message())
	}
}

func TestDecideRequestFields(t *testing.T) {
	dir := fixtureDir(t)
	s := loadFixture(t, "decide.yaml", dir)
	op := []string{"operator"}
	ctx := context.Background()
	tests := []struct {
		name string
		req  Request
		want ReasonCode
	}{
		{"cmdline", Request{Cmdline: `git log -n 5 --author "Ann"`}, ReasonAllowed},
		{"cmdline comment", Request{Cmdline: "git log # -c x=y"}, ReasonBadCmdline},
		{"cmdline newline", Request{Cmdline: "git log\n-c"}, ReasonBadCmdline},
		{"cmdline invalid utf8", Request{Cmdline: "echo \xff"}, ReasonBadCmdline},
		{"cmdline unbalanced quote", Request{Cmdline: `echo "abc`}, ReasonBadCmdline},
		{"cmdline and command", Request{Cmdline: "ls", Command: "ls"}, ReasonBadCmdline},
		{"cmdline denied flag", Request{Cmdline: "git -c x=y log"}, ReasonFlagDenied},
		{"empty subject", Request{Subject: "-", Command: "ls"}, ReasonAllowed},
		{"cwd", Request{Command: "ls", Cwd: "src"}, ReasonAllowed},
		{"cwd outside", Request{Command: "ls", Cwd: "../.."}, ReasonPathOutsideRoot},
		{"cwd symlink escape", Request{Command: "ls", Cwd: "dir-escape"}, ReasonPathOutsideRoot},
		{"cwd file", Request{Command: "ls", Cwd: "README"}, ReasonPathNotFound},
		{"cwd metachar", Request{Command: "ls", Cwd: "a;b"}, ReasonShellSyntax},
		{"env allowed", Request{Command: "ls", Env: map[string]string{"TZ": "Europe/Paris"}}, ReasonAllowed},
		{"env unknown", Request{Command: "ls", Env: map[string]string{"FOO": "1"}}, ReasonEnvNotAllowed},
		{"env LD_PRELOAD", Request{Command: "ls", Env: map[string]string{"LD_PRELOAD": "/tmp/x.so"}}, ReasonEnvNotAllowed},
		{"env PATH", Request{Command: "ls", Env: map[string]string{"PATH": "/tmp"}}, ReasonEnvNotAllowed},
		{"env bad value", Request{Command: "ls", Env: map[string]string{"TZ": "a;b"}}, ReasonEnvNotAllowed},
		{"tty denied", Request{Command: "ls", TTY: true}, ReasonTTYNotAllowed},
		{"tty allowed", Request{Command: "python3", Roles: []string{"runner"}, TTY: true}, ReasonAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if req.Subject == "" {
				req.Subject = "alice"
			} else if req.Subject == "-" {
				req.Subject = "alice"
			}
			if req.Roles == nil {
				req.Roles = op
			}
			d := s.Decide(ctx, req)
			if d.Reason != tt.want {
				t.Fatalf("got %s, want %s", d.Reason, tt.want)
			}
			if d.Allowed {
				checkAllowedInvariants(t, s, d)
			}
		})
	}
}

func TestDecideSubject(t *testing.T) {
	dir := fixtureDir(t)
	s := loadFixture(t, "decide.yaml", dir)
	for _, sub := range []string{"", ".", "..", "a/b", "../bob", "alice bob", "al\x00ice", "ålice", strings.Repeat("a", 65), "{sub}"} {
		d := s.Decide(context.Background(), Request{Subject: sub, Roles: []string{"viewer"}, Command: "ls"})
		if d.Allowed || d.Reason != ReasonBadSubject {
			t.Errorf("subject %q: got %s, want %s", sub, d.Reason, ReasonBadSubject)
		}
	}
	d := s.Decide(context.Background(), Request{Subject: "a.b-C_9", Roles: []string{"viewer"}, Command: "echo"})
	if !d.Allowed {
		t.Errorf("subject a.b-C_9: got %s, want allowed", d.Reason)
	}
}

func TestDecideOutputs(t *testing.T) {
	dir := fixtureDir(t)
	s := loadFixture(t, "decide.yaml", dir)
	d := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"viewer"}, Command: "git",
		Args: []string{"log", "-n1"}, Env: map[string]string{"TZ": "UTC"}, Cwd: "src", Trace: true})
	if !d.Allowed {
		t.Fatalf("got %s, want allowed", d.Reason)
	}
	if d.Rule.ID != "commands.git.subcommands.log" || d.Rule.File != "decide.yaml" || d.Rule.Line == 0 {
		t.Errorf("got rule %+v, want commands.git.subcommands.log with file:line", d.Rule)
	}
	if d.Cwd != "/work/src" {
		t.Errorf("got cwd %q, want /work/src", d.Cwd)
	}
	wantEnv := []string{"HOME=/work", "LANG=C.UTF-8", "PATH=/usr/bin:/bin", "TZ=UTC"}
	if !slices.Equal(d.Env, wantEnv) {
		t.Errorf("got env %q, want %q", d.Env, wantEnv)
	}
	if d.Profile == nil || d.Profile.Name != "standard" || d.Profile.MemoryBytes != 128<<20 || d.Profile.Pids != 32 {
		t.Errorf("got profile %+v, want standard with 128MiB and 32 pids", d.Profile)
	}
	wantMounts := []Mount{
		{Root: "docs", Source: dir + "/docs", Target: "/docs", ReadOnly: true},
		{Root: "workspace", Source: dir + "/ws/alice", Target: "/work", Workspace: true},
	}
	if !slices.Equal(d.Mounts, wantMounts) {
		t.Errorf("got mounts %+v, want %+v", d.Mounts, wantMounts)
	}
	if len(d.Trace) < 3 || d.Trace[len(d.Trace)-1].Outcome != "allow" {
		t.Errorf("got trace %+v, want command, subcommand and allow steps", d.Trace)
	}
	if d.PolicyHash != s.Hash() {
		t.Errorf("got hash %s, want %s", d.PolicyHash, s.Hash())
	}
	d.Profile.MemoryBytes = 1
	if p, _ := s.Profile("standard"); p.MemoryBytes != 128<<20 {
		t.Errorf("modifying a decision changed the set: got %d", p.MemoryBytes)
	}
}

func TestDecideCanceledContext(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := s.Decide(ctx, Request{Subject: "alice", Roles: []string{"viewer"}, Command: "ls"})
	if d.Allowed || d.Reason != ReasonInternal {
		t.Errorf("got %s, want %s", d.Reason, ReasonInternal)
	}
}

// checkAllowedInvariants are the properties every allowed decision has;
// the fuzz target checks them too.
func checkAllowedInvariants(t testing.TB, s *Set, d *Decision) {
	t.Helper()
	if len(d.Argv) == 0 || d.Argv[0] != d.Path || d.Profile == nil {
		t.Fatalf("allowed decision without argv/path/profile: %+v", d)
	}
	c, ok := s.Command(d.Command)
	if !ok || c.Path != d.Path {
		t.Fatalf("allowed decision for unknown command %q", d.Command)
	}
	for _, a := range d.Argv {
		if r := checkChars(a, true); r != "" {
			t.Fatalf("allowed argv %q carries %s", a, r)
		}
		if strings.ContainsAny(a, "\n\t") && !multilineAllowed(c) {
			t.Fatalf("allowed argv %q has a newline/tab but no multi-line text is declared", a)
		}
	}
	// Flags are everything before the end-of-options marker (after it the
	// program reads only positionals).
	flags := d.Argv[1:]
	if i := slices.IndexFunc(flags, func(a string) bool { return a == "--" || a == "--end-of-options" }); i >= 0 {
		flags = flags[:i]
	}
	for _, g := range grammarsOf(&c.Grammar) {
		for _, denied := range g.Deny {
			for _, a := range flags {
				if a == denied || strings.HasPrefix(a, denied+"=") ||
					len(denied) == 2 && len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.HasPrefix(a, denied) {
					t.Fatalf("allowed argv %q carries denied flag %s", d.Argv, denied)
				}
			}
		}
	}
	if !within(d.Cwd, "/") {
		t.Fatalf("cwd %q is not absolute", d.Cwd)
	}
}

func multilineAllowed(c *Command) bool {
	for _, g := range grammarsOf(&c.Grammar) {
		for _, f := range g.Flags {
			if f.Value.Type == TypeText && f.Value.Multiline {
				return true
			}
		}
		p := g.Positionals
		for _, v := range p.Items {
			if v.Type == TypeText && v.Multiline {
				return true
			}
		}
		if p.Rest != nil && p.Rest.Type == TypeText && p.Rest.Multiline {
			return true
		}
	}
	return false
}

func grammarsOf(g *Grammar) []*Grammar {
	out := []*Grammar{g}
	for _, s := range g.Subcommands {
		out = append(out, grammarsOf(&s.Grammar)...)
	}
	return out
}

func TestDecideClosesRootFDs(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	for range 200 {
		decide(s, []string{"operator"}, "ls", "src", "/docs/guide", "abs-escape")
		decide(s, []string{"operator"}, "touch", "new", "nodir/x")
	}
	if after := count(); after > before+2 {
		t.Errorf("got %d open fds after 400 decisions, want about %d", after, before)
	}
}

func TestDecideConcurrent(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				d := decide(s, []string{"operator"}, "git", "log", "-n", fmt.Sprint(i+1), "--", "src")
				if !d.Allowed || d.Argv[2] != fmt.Sprintf("--max-count=%d", i+1) {
					errs <- fmt.Sprintf("got %v %q", d.Reason, d.Argv)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestDecideTraceOnDenial(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	d := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"operator"}, Command: "git",
		Args: []string{"log", "--upload-pa=evil"}, Trace: true})
	if d.Reason != ReasonFlagDenied || len(d.Trace) < 2 {
		t.Fatalf("got %s with trace %+v, want flag_denied with a trace", d.Reason, d.Trace)
	}
	last := d.Trace[len(d.Trace)-1]
	want, _ := s.Source("commands.git.deny[1]")
	if last.Outcome != "deny" || last.Rule != want || want.Line == 0 {
		t.Errorf("got last step %+v, want a deny at the deny entry %+v", last, want)
	}
	if d.Rule != last.Rule {
		t.Errorf("got decision rule %+v, want %+v", d.Rule, last.Rule)
	}
	if strings.Contains(d.Message, "upload") {
		t.Errorf("message %q reveals the policy", d.Message)
	}
	for _, st := range d.Trace {
		if strings.Contains(st.Detail, "evil") {
			t.Errorf("trace carries the argument value: %q", st.Detail)
		}
	}
	if nt := s.Decide(context.Background(), Request{Subject: "alice", Roles: []string{"operator"}, Command: "git", Args: []string{"log"}}); nt.Trace != nil {
		t.Errorf("got a trace without asking: %+v", nt.Trace)
	}
}

// TestDecideFreshWorkspace: before a subject's first run its workspace
// does not exist; it behaves as an empty directory.
func TestDecideFreshWorkspace(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	tests := []struct {
		cmd  string
		args []string
		want ReasonCode
	}{
		{"touch", []string{"first.txt"}, ReasonAllowed},
		{"touch", []string{"/work/first.txt"}, ReasonAllowed},
		{"touch", []string{"dir/first.txt"}, ReasonPathNotFound},
		{"touch", []string{".."}, ReasonPathOutsideRoot},
		{"ls", []string{"README"}, ReasonPathNotFound},
		{"ls", nil, ReasonAllowed},
	}
	for _, tt := range tests {
		d := s.Decide(context.Background(), Request{Subject: "newcomer", Roles: []string{"operator"}, Command: tt.cmd, Args: tt.args})
		if d.Reason != tt.want {
			t.Errorf("%s %q: got %s, want %s", tt.cmd, tt.args, d.Reason, tt.want)
		}
	}
}

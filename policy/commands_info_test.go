package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCommandsFor(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	names := func(infos []CommandInfo) []string {
		var out []string
		for _, c := range infos {
			out = append(out, c.Name)
		}
		return out
	}
	tests := []struct {
		roles []string
		want  string
	}{
		{[]string{"viewer"}, "echo,git,head,ls"},
		{[]string{"operator"}, "cat,echo,find,git,head,ls,touch"},
		{[]string{"runner"}, "python3"},
		{[]string{"nobody"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(names(s.CommandsFor(tt.roles)), ","); got != tt.want {
			t.Errorf("CommandsFor(%v) = %s, want %s", tt.roles, got, tt.want)
		}
	}
	infos := s.CommandsFor([]string{"viewer"})
	var git CommandInfo
	for _, c := range infos {
		if c.Name == "git" {
			git = c
		}
	}
	if len(git.Subcommands) != 1 || git.Subcommands[0].Name != "log" {
		t.Fatalf("viewer sees git subcommands %+v, want only log", git.Subcommands)
	}
	log := git.Subcommands[0]
	if log.Positionals == nil || log.Positionals.Max != 8 || log.Positionals.Rest == nil || log.Positionals.Rest.Type != TypePath {
		t.Errorf("got positionals %+v, want up to 8 paths", log.Positionals)
	}
	data, err := json.Marshal(infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"--upload-pack", "/usr/bin/", "/ws/", "deny"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("command list reveals %q: %s", secret, data)
		}
	}
	py := s.CommandsFor([]string{"runner"})[0]
	if !py.TTY {
		t.Errorf("python3 runs in a TTY-capable profile; got tty=false")
	}
}

func TestCommandsForGolden(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	data, err := json.MarshalIndent(s.CommandsFor([]string{"viewer"}), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "commands_viewer.golden.json", append(data, '\n'))
}

func TestDecideNilSet(t *testing.T) {
	var s *Set
	if d := s.Decide(t.Context(), Request{Subject: "alice", Command: "ls"}); d.Allowed || d.Reason != ReasonInternal {
		t.Errorf("got %+v, want internal_error", d)
	}
}

func TestHasPermission(t *testing.T) {
	s := loadFixture(t, "decide.yaml", fixtureDir(t))
	if !s.HasPermission([]string{"admin"}, "admin") || s.HasPermission([]string{"operator"}, "admin") || s.HasPermission(nil, "admin") {
		t.Errorf("admin permission: got wrong answers")
	}
}

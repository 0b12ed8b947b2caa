package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadRootsSensitiveEvasion tries to mount a sensitive host path
// through a spelling the lexical check does not see: a symlink (the
// distribution's /var/run, or one planted in an ordinary directory), or a
// directory of sockets that a read-only mount does not protect (connect()
// works through one: docker, containerd, the D-Bus system bus).
func TestLoadRootsSensitiveEvasion(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	toEtc := link("to-etc", "/etc")
	toProc := link("to-proc", "/proc")
	toState := link("to-state", state)
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	wsLinked := link("ws-link", "/etc")
	policy := func(roots string) string {
		return "version: 1\nroles: {v: {}}\nprofiles: {p: {}}\ndefaults: {profile: p}\ncommands: {x: {path: /usr/bin/echo, roles: [v]}}\nroots:\n" + roots
	}
	tests := []struct{ name, roots, msg string }{
		{"symlink to /etc", "  r: {host: " + toEtc + ", target: /r}\n", "/etc"},
		{"below a symlink to /etc", "  r: {host: " + toEtc + "/ssh, target: /r}\n", "/etc"},
		{"symlink to /proc", "  r: {host: " + toProc + ", target: /r}\n", "/proc"},
		{"symlink to the state directory", "  r: {host: " + toState + ", target: /r}\n", "state"},
		{"workspaces below a symlink to /etc", "  ws: {workspace: true, host: '" + wsLinked + "/{sub}', target: /work}\n", "/etc"},
		{"/run: runtime sockets", "  r: {host: /run, target: /r}\n", "/run"},
		{"/run/dbus: the system bus socket", "  r: {host: /run/dbus, target: /r}\n", "/run"},
		{"/var/run, the distribution's symlink to /run", "  r: {host: /var/run, target: /r}\n", "/run"},
		{"/var/lib/docker", "  r: {host: /var/lib/docker, target: /r}\n", "/var/lib/docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el := loadErr(t, policy(tt.roots), LoadOptions{StateDir: state})
			if !hasCode(el, CodeSensitiveRoot, tt.msg) {
				t.Errorf("got errors %v, want %s mentioning %q", el, CodeSensitiveRoot, tt.msg)
			}
		})
	}
}

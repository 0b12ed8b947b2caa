package sandbox

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

func FuzzParseKeyedCounter(f *testing.F) {
	f.Add([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), "oom_kill")
	f.Add([]byte("max 9223372036854775807\n"), "max")
	f.Add([]byte("max 99999999999999999999\n"), "max")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		if n := parseKeyedCounter(data, key); n < 0 {
			t.Fatalf("negative counter %d", n)
		}
	})
}

// FuzzValidateSpec feeds hostile argv, env, cwd and mount targets: no
// panic, and whatever is accepted is absolute, clean and NUL-free.
func FuzzValidateSpec(f *testing.F) {
	f.Add("run-1", "/bin/echo", "A=1", "/work", "/data", "/docs")
	f.Add("../x", "echo", "=x", "rel", "/etc/passwd", "/")
	f.Add("a", "/bin/sh\x00", "K=\x00", "/a/../b", "/data", "/data/sub")
	f.Fuzz(func(t *testing.T, id, argv0, env, cwd, target1, target2 string) {
		s := Spec{ID: id, Argv: []string{argv0}, Env: []string{env}, Cwd: cwd, Profile: testProfile(),
			Mounts: []policy.Mount{{Source: "/srv/a", Target: target1}, {Source: "/srv/b", Target: target2}}}
		if err := validateSpec(&s); err != nil {
			return
		}
		if !validID(s.ID) || !filepath.IsAbs(s.Argv[0]) || strings.ContainsRune(s.Argv[0], 0) {
			t.Fatalf("accepted bad id or argv: %q %q", s.ID, s.Argv[0])
		}
		if !filepath.IsAbs(s.Cwd) || filepath.Clean(s.Cwd) != s.Cwd {
			t.Fatalf("accepted cwd %q", s.Cwd)
		}
		if isUnder(target1, target2) || isUnder(target2, target1) {
			t.Fatalf("accepted overlapping targets %q %q", target1, target2)
		}
	})
}

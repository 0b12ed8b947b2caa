package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestSeccompReloadRunsNewAllowlist: a custom seccomp file edited after a
// load takes effect through a reload of the policy, exactly as reloaded:
// the new set's hash differs, a run with the new profile gets the new
// allowlist (socket now EPERM), and a run still holding the old profile
// keeps the allowlist it was validated with (the Manager's cache is keyed
// by content, not by path).
func TestSeccompReloadRunsNewAllowlist(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("syscall numbers in the script are amd64's")
	}
	m := newTestManager(t)
	dir := filepath.Join(t.TempDir(), "seccomp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "custom.json")
	writeProfile := func(allow []string) {
		t.Helper()
		data, err := json.Marshal(SeccompFile{Allow: allow})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "version: 1\nroles: {viewer: {}}\nprofiles:\n  p: {seccomp: " + file +
		"}\ndefaults: {profile: p}\ncommands:\n  echo: {path: /usr/bin/echo, roles: [viewer]}\n"
	load := func() (*policy.Set, policy.Profile) {
		t.Helper()
		set, err := policy.LoadBytes("p.yaml", []byte(src), policy.LoadOptions{SkipBinaryCheck: true, CheckSeccompFile: CheckSeccompProfile})
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		lp, _ := set.Profile("p")
		p := testProfile()
		p.Seccomp, p.SeccompFile, p.SeccompData = lp.Seccomp, lp.SeccompFile, lp.SeccompData
		return set, p
	}
	const eperm, ok = "1", "0"
	writeProfile(defaultAllowKnown())
	set1, p1 := load()
	if got := syscallResultsFor(t, m, p1)["socket_unix"]; got != ok {
		t.Fatalf("first file: got socket errno %q, want %q", got, ok)
	}
	writeProfile(subtract(defaultAllowKnown(), []string{"socket"}))
	set2, p2 := load()
	if set1.Hash() == set2.Hash() {
		t.Errorf("got the same policy hash %s after the seccomp file changed, want another", set1.Hash())
	}
	if got := syscallResultsFor(t, m, p2)["socket_unix"]; got != eperm {
		t.Errorf("after the edit and reload: got socket errno %q, want %q (the new allowlist)", got, eperm)
	}
	if got := syscallResultsFor(t, m, p1)["socket_unix"]; got != ok {
		t.Errorf("the old set's profile: got socket errno %q, want %q (what it was validated with)", got, ok)
	}
}

// TestSeccompCustomWithoutData: a custom profile that does not carry its
// content (not from policy.Load) is refused; the Manager never reads the
// file named.
func TestSeccompCustomWithoutData(t *testing.T) {
	m := newTestManager(t)
	p := testProfile()
	p.Seccomp, p.SeccompFile = "custom", "/etc/passwd"
	_, err := m.seccompFor(&p)
	if err == nil || !strings.Contains(err.Error(), "carries no content") {
		t.Errorf("got %v, want a refusal: carries no content", err)
	}
}

// TestSeccompCacheBound: at most maxCustomSeccomp custom programs stay
// cached (least recently used dropped first; the built-in ones always
// stay), an evicted program no run holds is closed at once, and one a run
// still holds is closed by its last release.
func TestSeccompCacheBound(t *testing.T) {
	m := newTestManager(t)
	allow := []string{"read", "write", "close", "rt_sigtimedwait", "wait4", "kill", "exit_group", "execve"}
	profile := func(i int) *policy.Profile {
		data, err := json.Marshal(SeccompFile{Description: fmt.Sprintf("v%d", i), Allow: allow})
		if err != nil {
			t.Fatal(err)
		}
		return &policy.Profile{Seccomp: "custom", SeccompFile: "/x.json", SeccompData: data}
	}
	custom := func() int {
		m.seccompMu.Lock()
		defer m.seccompMu.Unlock()
		n := 0
		for _, prog := range m.seccompCache {
			if prog.custom {
				n++
			}
		}
		return n
	}
	closed := func(prog *seccompProgram) bool { return prog.file.Fd() == ^uintptr(0) }
	held, err := m.seccompFor(profile(0)) // a run holds v0 throughout
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.seccompFor(profile(1))
	if err != nil {
		t.Fatal(err)
	}
	m.releaseSeccomp(first)
	for i := 2; i < maxCustomSeccomp+10; i++ {
		prog, err := m.seccompFor(profile(i))
		if err != nil {
			t.Fatal(err)
		}
		m.releaseSeccomp(prog)
	}
	if got := custom(); got != maxCustomSeccomp {
		t.Errorf("got %d custom programs cached, want %d", got, maxCustomSeccomp)
	}
	if got := len(m.seccompCache) - custom(); got != 4 {
		t.Errorf("got %d built-in programs cached, want 4 (default, strict, each with and without noexec)", got)
	}
	if !closed(first) {
		t.Error("an evicted program no run holds: got its memfd open, want it closed")
	}
	if closed(held) || !held.evicted {
		t.Errorf("an evicted program a run holds: got closed %v evicted %v, want open and evicted", closed(held), held.evicted)
	}
	m.releaseSeccomp(held)
	if !closed(held) {
		t.Error("the last release of an evicted program: got its memfd open, want it closed")
	}
	// The same content again compiles anew and is cached again.
	again, err := m.seccompFor(profile(0))
	if err != nil {
		t.Fatal(err)
	}
	if again == held || closed(again) {
		t.Error("v0 after its eviction: got the closed program back, want a new one")
	}
	m.releaseSeccomp(again)
}

package gateway

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

// needRoot skips a test that needs root (policy.ReadSeccompFile reads
// only root-owned files) for another user, and fails it under CI.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the test needs root (euid %d) and CI is set", os.Geteuid())
	}
	t.Skipf("the test needs root (euid %d; with CI set it fails instead)", os.Geteuid())
}

// hasCommand reports whether the serving set has a command.
func hasCommand(env *testEnv, name string) bool {
	_, ok := env.srv.currentPolicy().Command(name)
	return ok
}

// TestPollReloadsSameSizeEditWithOldMtime: an edit that keeps the size
// and puts the old mtime back (cp -p, rsync -t) is seen (ctime and the
// content digest of a recently changed file are in the stamp).
func TestPollReloadsSameSizeEditWithOldMtime(t *testing.T) {
	env := startServer(t, nil)
	path := filepath.Join(env.policyDir, "policy.yaml")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(old, []byte("\n  echo:\n"), []byte("\n  ech2:\n"), 1)
	if len(edited) != len(old) || bytes.Equal(edited, old) {
		t.Fatal("the test policy has no echo command to rename")
	}
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if st2, err := os.Stat(path); err != nil || st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatalf("got size/mtime %v, want those of before the edit (err %v)", st2, err)
	}
	waitFor(t, "the poller to reload the same-size edit", func() bool { return hasCommand(env, "ech2") })
}

// TestPollReloadsEditDuringLoad: the stamp is taken before the load, so an
// edit made after the loader read the files (and before the stamp would
// have been taken after it) is reloaded at the next poll.
func TestPollReloadsEditDuringLoad(t *testing.T) {
	var armed atomic.Bool
	var path string
	var next []byte
	env := startServer(t, func(cfg *Config, d *Deps) {
		d.LoadPolicy = func(ctx context.Context) (*policy.Set, error) {
			set, err := policy.Load(ctx, []string{cfg.Policy}, policy.LoadOptions{StateDir: cfg.StateDir})
			if armed.CompareAndSwap(true, false) {
				// The files are read: edit again before the load returns.
				if werr := os.WriteFile(path, next, 0o600); werr != nil {
					t.Error(werr)
				}
			}
			return set, err
		}
	})
	path = filepath.Join(env.policyDir, "policy.yaml")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.Replace(old, []byte("\n  echo:\n"), []byte("\n  echo2:\n"), 1)
	next = bytes.Replace(old, []byte("\n  echo:\n"), []byte("\n  echo3:\n"), 1)
	armed.Store(true)
	if err := os.WriteFile(path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the load that sees the first edit", func() bool { return !armed.Load() })
	waitFor(t, "the poller to reload the edit made during the load", func() bool { return hasCommand(env, "echo3") })
}

// TestPollReloadsChmodFixedSeccompFile: a chmod that makes a refused
// seccomp file acceptable reloads, both for a file only the rejected
// policy names and for one of the serving set (only ctime and the mode
// change).
func TestPollReloadsChmodFixedSeccompFile(t *testing.T) {
	env, file := seccompServer(t)
	pid1 := `"read","write","close","rt_sigtimedwait","wait4","kill","exit_group","execve"`
	writeGroupWritable := func(data string) {
		t.Helper()
		// Written aside and renamed over: the poller never sees the new
		// content with the old mode.
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, 0o664); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	rejected := func() int {
		n := 0
		for _, l := range env.auditLines() {
			if l["type"] == "policy_reload" && l["allowed"] == false {
				n++
			}
		}
		return n
	}
	hash := func() string { return env.srv.currentPolicy().Hash() }
	h0 := hash()

	// A policy naming a group-writable file is refused. The file (and its
	// directory) are older than racyWindow: what makes the chmod below
	// reload is that the file the rejected load reported is watched, not
	// the one retry of a load whose files changed while it ran.
	writeGroupWritable(`{"allow":[` + pid1 + `]}`)
	time.Sleep(racyWindow + 100*time.Millisecond)
	path := filepath.Join(env.policyDir, "policy.yaml")
	pol, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pol = bytes.Replace(pol, []byte("\nprofiles:\n"), []byte("\nprofiles:\n  custom:\n    inherits: standard\n    seccomp: "+file+"\n"), 1)
	// Renamed over the old file: the poller never sees half of it.
	tmp := filepath.Join(filepath.Dir(env.policyDir), "policy.yaml.new")
	if err := os.WriteFile(tmp, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload", func() bool { return rejected() > 0 })
	time.Sleep(5 * env.cfg.PolicyPoll)
	if got := rejected(); got != 1 {
		t.Errorf("got %d refused reloads of unchanged files, want 1 (no retry every poll)", got)
	}
	if got := hash(); got != h0 {
		t.Fatalf("after a refused reload: got hash %s, want the old %s", got, h0)
	}
	// chmod alone fixes it.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poller to reload after the chmod of the file the rejected policy names", func() bool { return hash() != h0 })
	h1 := hash()

	// The serving set's file is edited group-writable: refused; chmod
	// fixes it and the new allowlist loads.
	n := rejected()
	writeGroupWritable(`{"allow":[` + pid1 + `,"openat"]}`)
	waitFor(t, "the refused reload of the group-writable edit", func() bool { return rejected() > n })
	if got := hash(); got != h1 {
		t.Fatalf("after a refused reload: got hash %s, want the old %s", got, h1)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poller to reload after the chmod of the serving set's file", func() bool { return hash() != h1 })
	p, ok := env.srv.currentPolicy().Profile("custom")
	if !ok || !bytes.Contains(p.SeccompData, []byte(`"openat"`)) {
		t.Errorf("got profile %v (%v) with seccomp data %q, want the edited allowlist", p.Name, ok, p.SeccompData)
	}
}

// TestPolicyStampRacyDigest: a file changed within racyWindow of its stamp
// carries a content digest, so an edit that leaves every stat field as it
// was (same size within one timestamp tick) still differs; once the file
// is older than racyWindow the poll reads nothing.
func TestPolicyStampRacyDigest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte("version: 1\n# a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Policy: path}}
	a := s.stampPolicy(nil)
	if f := a.find(watchKey{name: path}); f == nil || !f.hasSum {
		t.Fatalf("got stamp %+v of a file just written, want one with a digest", f)
	}
	if err := os.WriteFile(path, []byte("version: 1\n# b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := s.stampPolicy(a)
	// As if the edit had fallen within the same timestamp tick.
	fa, fb := a.find(watchKey{name: path}), b.find(watchKey{name: path})
	fb.mtime, fb.ctime = fa.mtime, fa.ctime
	if !fa.sameStat(fb) {
		t.Fatalf("got stats %+v and %+v, want the same", fa, fb)
	}
	if a.equal(b) {
		t.Error("a same-stat edit of a racy file: got equal stamps, want different")
	}
	if c := s.stampPolicy(a); a.equal(c) {
		t.Error("an edit: got equal stamps, want different")
	}
	// An old file: no digest.
	past := time.Now().Add(-time.Hour)
	old := &policyStamp{at: time.Now(), files: []fileStamp{{key: watchKey{name: path}, ctime: past.UnixNano(), hasSum: true}}}
	if old.trim(); old.files[0].hasSum {
		t.Error("got a digest kept for a file changed an hour ago, want none")
	}
	if !(&policyStamp{}).equal(&policyStamp{}) {
		t.Error("empty stamps: got different, want equal")
	}
}

// TestPolicyStampSeccompDir: a seccomp file's directory is stamped by what
// the loader checks of it (identity, owner, mode): a chmod changes the
// stamp, another file created in it does not.
func TestPolicyStampSeccompDir(t *testing.T) {
	dir := t.TempDir()
	k := watchKey{name: dir, nofollow: true}
	a := statFile(k)
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if b := statFile(k); !a.sameStat(&b) {
		t.Errorf("after a file was created in the directory: got stamp %+v, want %+v", b, a)
	}
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	if b := statFile(k); a.sameStat(&b) {
		t.Error("after a chmod of the directory: got the same stamp, want another")
	}
}

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestAttackCanaries plants world-readable files on the host in /etc,
// /root, the sandbox state root and another user's workspace: none may be
// visible inside a sandbox, neither at its host path nor anywhere else.
func TestAttackCanaries(t *testing.T) {
	s := suite(t)
	name := randomName("execgate-canary-")
	bobWS := s.workspace(t, "bob")
	dirs := map[string]string{
		"etc": "/etc", "root": "/root", "state root": s.cfg.StateRoot, "other user's workspace": bobWS,
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte("canary\n"), 0o644); err != nil {
			t.Fatalf("plant canary: %v", err)
		}
		t.Cleanup(func() { _ = os.Remove(p) })
	}
	for what, d := range dirs {
		t.Run(what, func(t *testing.T) {
			p := filepath.Join(d, name)
			out := s.sh(t, runOpts{user: "alice"}, "cat "+p)
			if strings.Contains(out.stdout, "canary") || !strings.Contains(out.stderr, "No such file or directory") {
				t.Errorf("cat %s: got stdout %q stderr %q, want ENOENT", p, out.stdout, out.stderr)
			}
		})
	}
	t.Run("anywhere", func(t *testing.T) {
		// Control: the same name in alice's own workspace must be found,
		// and only there.
		own := filepath.Join(s.workspace(t, "alice"), name)
		if err := os.WriteFile(own, []byte("own\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(own)
		out := s.sh(t, runOpts{user: "alice"}, "find / -path /proc -prune -o -name '"+name+"' -print 2>/dev/null; echo done")
		if got, want := strings.Join(lines(out.stdout), " "), attackWorkTarget+"/"+name+" done"; got != want {
			t.Errorf("find by name inside the sandbox: got %q, want %q", got, want)
		}
	})
}

// TestAttackSecrets reads host secrets that must not exist inside, and
// checks that the environment is exactly the Spec's: nothing of the
// caller's environment leaks in.
func TestAttackSecrets(t *testing.T) {
	s := suite(t)
	secret := randomName("host-secret-")
	t.Setenv("EXECGATE_ATTACK_HOST_SECRET", secret)
	t.Run("environment", func(t *testing.T) {
		out := s.run(t, runOpts{}, "/usr/bin/env")
		if got, want := strings.Join(lines(out.stdout), " "), "PATH=/usr/bin:/bin HOME=/work LC_ALL=C"; got != want || strings.Contains(out.stdout, secret) {
			t.Errorf("environment inside: got %q, want %q", got, want)
		}
	})
	for _, p := range []string{"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/.ssh/authorized_keys"} {
		t.Run(p, func(t *testing.T) {
			out := s.sh(t, runOpts{}, "cat "+p)
			if out.res.ExitCode == 0 || strings.Contains(out.stdout, "root:") {
				t.Errorf("cat %s succeeded: %v", p, out)
			}
		})
	}
}

// TestAttackProcStatus reads the credentials of the command itself.
func TestAttackProcStatus(t *testing.T) {
	s := suite(t)
	out := s.run(t, runOpts{}, "/bin/cat", "/proc/self/status")
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("cat /proc/self/status: %v", out)
	}
	fields := map[string]string{}
	for _, l := range lines(out.stdout) {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	want := map[string]string{
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
		"NoNewPrivs": "1", "Seccomp": "2",
		"Uid": "65534\t65534\t65534\t65534", "Gid": "65534\t65534\t65534\t65534", "Groups": "",
	}
	for k, w := range want {
		t.Run(k, func(t *testing.T) {
			if got, ok := fields[k]; !ok || got != w {
				t.Errorf("%s: got %q, want %q", k, got, w)
			}
		})
	}
}

// TestAttackInheritedFDs lists the command's open descriptors: 0, 1, 2 and
// the one ls opened for the listing.
func TestAttackInheritedFDs(t *testing.T) {
	s := suite(t)
	out := s.run(t, runOpts{}, "/bin/ls", "-1", "/proc/self/fd")
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("ls /proc/self/fd: %v", out)
	}
	if got, want := strings.Join(lines(out.stdout), " "), "0 1 2 3"; got != want {
		t.Errorf("open fds: got %q, want %q", got, want)
	}
}

// TestAttackProcExe tries to open the running binary for writing through
// /proc/self/exe and /proc/1/exe (the runc CVE-2019-5736 path).
func TestAttackProcExe(t *testing.T) {
	s := suite(t)
	out := s.sh(t, runOpts{}, `for p in /proc/self/exe /proc/1/exe; do if ( exec 3>>$p ) 2>/dev/null; then echo "OPENED $p"; fi; done
( exec 3>>/tmp/control ) && echo CONTROL-OPENED`)
	if strings.Contains(out.stdout, "OPENED /") || !strings.Contains(out.stdout, "CONTROL-OPENED") {
		t.Errorf("the binary could be opened for writing: %v", out)
	}
}

// TestAttackCrossUser leaves a file in alice's workspace and looks for it
// from bob's run.
func TestAttackCrossUser(t *testing.T) {
	s := suite(t)
	name := randomName("alice-secret-")
	out := s.sh(t, runOpts{user: "alice"}, "echo secret > /work/"+name+" && echo written")
	if !strings.Contains(out.stdout, "written") {
		t.Fatalf("alice could not write her workspace: %v", out)
	}
	out = s.sh(t, runOpts{user: "bob"}, "ls -a /work; find / -path /proc -prune -o -name '"+name+"' -print 2>/dev/null; cat /work/"+name)
	if strings.Contains(out.stdout, name) || strings.Contains(out.stdout, "secret") {
		t.Errorf("bob sees alice's file: %v", out)
	}
	out = s.sh(t, runOpts{user: "alice"}, "cat /work/"+name)
	if !strings.Contains(out.stdout, "secret") {
		t.Errorf("alice lost her file between runs: %v", out)
	}
}

// TestAttackTmpNotShared leaves a file in /tmp and looks for it in the
// next run of the same user.
func TestAttackTmpNotShared(t *testing.T) {
	s := suite(t)
	name := randomName("tmp-marker-")
	out := s.sh(t, runOpts{}, "echo x > /tmp/"+name+" && echo written")
	if !strings.Contains(out.stdout, "written") {
		t.Fatalf("could not write /tmp: %v", out)
	}
	out = s.sh(t, runOpts{}, "ls -a /tmp; cat /tmp/"+name)
	if strings.Contains(out.stdout, name) || !strings.Contains(out.stderr, "No such file or directory") {
		t.Errorf("/tmp is shared between runs: %v", out)
	}
}

// TestAttackWorkspaceSymlink plants symlinks in a user's own workspace
// that point out of it, then asks for runs whose mount sources go through
// them. The host directory a symlink names must never be created in,
// chowned or mounted.
func TestAttackWorkspaceSymlink(t *testing.T) {
	s := suite(t)
	ws := s.workspace(t, "mallory")
	victim := t.TempDir() // a root-owned host directory outside every workspace
	if err := os.WriteFile(filepath.Join(victim, "secret"), []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	// What mallory's earlier run could have left in her workspace.
	link := filepath.Join(ws, "proj")
	_ = os.Remove(link)
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(link) })
	cases := []struct {
		name     string
		source   string
		readOnly bool // a shared root rather than a workspace
	}{
		{"symlink itself", link, false},
		{"below a symlink", filepath.Join(link, "sub"), false},
		{"shared root through a symlink", link, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mounts := []policy.Mount{{Root: "work", Source: c.source, Target: "/data", Workspace: !c.readOnly, ReadOnly: c.readOnly}}
			prof := attackProfile()
			var stdout, stderr strings.Builder
			res, err := s.mgr.Run(t.Context(), Spec{
				ID: fmt.Sprintf("atk-%d-%d", os.Getpid(), runSeq.Add(1)), Subject: "mallory",
				Argv: []string{"/bin/sh", "-c", "cat /data/secret; ls -la /data"}, Env: []string{"PATH=/usr/bin:/bin"},
				Cwd: "/", Mounts: mounts, Profile: prof, Stdout: &stdout, Stderr: &stderr,
			})
			if err == nil && strings.Contains(stdout.String(), "host secret") {
				t.Errorf("the host directory behind the symlink is mounted: %+v\n%s", res, stdout.String())
			}
			if ents, _ := os.ReadDir(victim); len(ents) != 1 {
				t.Errorf("the host directory behind the symlink was written to: %v", ents)
				_ = os.RemoveAll(filepath.Join(victim, "sub"))
			}
			if fi, err := os.Stat(victim); err == nil {
				st, st0 := fi.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t)
				if st.Uid != st0.Uid || st.Gid != st0.Gid || fi.Mode() != before.Mode() {
					t.Errorf("the host directory behind the symlink was re-owned or re-moded: %d:%d %v, was %d:%d %v",
						st.Uid, st.Gid, fi.Mode(), st0.Uid, st0.Gid, before.Mode())
				}
			}
			if err == nil {
				t.Errorf("run with a mount source through a symlink was accepted (%+v); want a SpecError", res)
			} else if !errors.Is(err, ErrBadSpec) {
				t.Logf("refused with %v (not ErrBadSpec)", err)
			}
		})
	}
}

// TestAttackDevices lists /dev and tries to create a device node: only the
// six nodes of a sandbox exist, and mknod fails.
func TestAttackDevices(t *testing.T) {
	s := suite(t)
	for _, uid := range []uint32{attackUID, 0} {
		t.Run(fmt.Sprintf("uid%d", uid), func(t *testing.T) {
			o := runOpts{profile: func(p *policy.Profile) { p.UID, p.GID = uid, uid }}
			out := s.sh(t, o, "ls -1A /dev; mknod /dev/sda b 8 0 && echo MKNOD-OK; mknod /tmp/mem c 1 1 && echo MKNOD-OK; head -c 1 /tmp/mem >/dev/null 2>&1 && echo READ-MEM")
			got := slices.DeleteFunc(lines(out.stdout), func(l string) bool { return strings.HasSuffix(l, "-OK") || l == "READ-MEM" })
			// Exactly the six devices, and the links every /dev has (fd,
			// std*, ptmx -> pts/ptmx, which only a TTY run's devpts fills).
			want := []string{"fd", "full", "null", "ptmx", "random", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("/dev: got %v, want exactly %v", got, want)
			}
			if strings.Contains(out.stdout, "MKNOD-OK") || strings.Contains(out.stdout, "READ-MEM") {
				t.Errorf("a device node could be created or used: %v", out)
			}
		})
	}
}

// TestAttackTTYDevpts asks for a terminal and lists /dev/pts: a fresh
// devpts instance holds the sandbox's own terminal only, none of the host's.
func TestAttackTTYDevpts(t *testing.T) {
	s := suite(t)
	o := runOpts{tty: true, profile: func(p *policy.Profile) { p.TTY = true }}
	out := s.sh(t, o, "ls -1 /dev/pts; tty; grep ' /dev/pts ' /proc/self/mountinfo")
	ls := lines(out.stdout)
	if len(ls) < 3 {
		t.Fatalf("unexpected output: %v", out)
	}
	for _, l := range ls[:len(ls)-2] {
		if l != "0" && l != "ptmx" {
			t.Errorf("/dev/pts holds %q: not the sandbox's own terminal", l)
		}
	}
	if ls[len(ls)-2] != "/dev/pts/0" {
		t.Errorf("tty: got %q, want /dev/pts/0", ls[len(ls)-2])
	}
	if m := ls[len(ls)-1]; !strings.Contains(m, "nosuid") || !strings.Contains(m, "noexec") {
		t.Errorf("devpts mount lacks nosuid/noexec: %s", m)
	}
}

// TestAttackProcLimits reads the command's rlimits and session: core
// dumps off, the profile's file and size limits, and a session of its own.
func TestAttackProcLimits(t *testing.T) {
	s := suite(t)
	out := s.sh(t, runOpts{}, "cat /proc/self/limits; echo; cut -d' ' -f1,6 /proc/self/stat")
	for _, want := range []string{
		"Max core file size        0                    0",
		"Max open files            256                  256",
		"Max file size             67108864             67108864",
	} {
		if !strings.Contains(out.stdout, want) {
			t.Errorf("limits lack %q:\n%s", want, out.stdout)
		}
	}
	ls := lines(out.stdout)
	if f := strings.Fields(ls[len(ls)-1]); len(f) != 2 || f[1] != "1" {
		t.Errorf("session of the command's shell: got %q, want session 1 (the sandbox's pid 1 is the session leader)", ls[len(ls)-1])
	}
}

// TestAttackProcMasks reads the /proc files a sandbox hides and tries to
// make the command less likely to be picked by the host's OOM killer.
func TestAttackProcMasks(t *testing.T) {
	s := suite(t)
	out := s.sh(t, runOpts{}, `for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/interrupts /proc/sysrq-trigger; do
  [ -e "$f" ] || continue; n=$(head -c 4096 "$f" 2>/dev/null | wc -c); echo "$f $n"; done
ls /proc/acpi /proc/scsi 2>/dev/null | wc -l
echo -1000 > /proc/self/oom_score_adj && echo OOM-ADJ-LOWERED; cat /proc/self/oom_score_adj
echo h > /proc/sysrq-trigger && echo SYSRQ-WRITTEN; echo done`)
	ls := lines(out.stdout)
	if len(ls) < 4 || ls[len(ls)-1] != "done" {
		t.Fatalf("script did not finish: %v", out)
	}
	for _, l := range ls {
		if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[0], "/proc/") && f[1] != "0" {
			t.Errorf("masked %s is readable (%s bytes)", f[0], f[1])
		}
	}
	if strings.Contains(out.stdout, "OOM-ADJ-LOWERED") || strings.Contains(out.stdout, "SYSRQ-WRITTEN") {
		t.Errorf("a protected /proc write succeeded: %v", out)
	}
	if !slices.Contains(ls, "1000") {
		t.Errorf("oom_score_adj is not 1000 (sandboxes first for the host's OOM killer): %v", out)
	}
}

// hostMountsUnder lists the host's mount points at or below any of dirs.
func hostMountsUnder(t *testing.T, dirs ...string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lines(string(b)) {
		if f := strings.Fields(l); len(f) > 4 {
			mp := unescapeMountinfo(f[4])
			if slices.ContainsFunc(dirs, func(d string) bool { return isUnder(mp, d) }) {
				out = append(out, mp)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestAttackNestedMountSymlink plants a symlink in mallory's workspace
// where a second mount (a shared root below /work) will land: the
// destination must resolve inside the container (runc's CVE-2021-30465
// class), never on the host.
func TestAttackNestedMountSymlink(t *testing.T) {
	s := suite(t)
	ws := s.workspace(t, "mallory2")
	for _, target := range []string{"/etc", "../../../../../../etc", "/proc/self/root/etc"} {
		t.Run(target, func(t *testing.T) {
			link := filepath.Join(ws, "shared")
			_ = os.RemoveAll(link)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(link)
			before := hostMountsUnder(t, "/etc", "/usr", "/root", "/proc")
			o := runOpts{user: "mallory2", mounts: []policy.Mount{
				{Root: "shared", Source: helperDir, Target: attackWorkTarget + "/shared", ReadOnly: true},
			}}
			out := s.run(t, o, "/bin/sh", "-c", "grep -c . /proc/self/mountinfo; ls /work/shared /etc | head -n 3")
			after := hostMountsUnder(t, "/etc", "/usr", "/root", "/proc")
			if !slices.Equal(before, after) {
				t.Errorf("host mounts changed: before %v, after %v (run: %v)", before, after, out)
			}
			if _, err := os.Stat(filepath.Join("/etc", filepath.Base(helperDir))); err == nil {
				t.Errorf("something was created in the host's /etc")
			}
			t.Logf("run: err=%v ended=%s", out.err, out.res.EndedBy)
		})
	}
}

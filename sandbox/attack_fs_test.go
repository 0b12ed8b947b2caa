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

// mountEntry is one parsed /proc/self/mountinfo line.
type mountEntry struct {
	root, point, opts, fstype, source, super string
	tags                                     []string // propagation: shared, master, ...
}

func parseMountinfo(t *testing.T, text string) []mountEntry {
	t.Helper()
	var out []mountEntry
	for _, l := range lines(text) {
		f := strings.Fields(l)
		sep := slices.Index(f, "-")
		if len(f) < 10 || sep < 6 || sep+3 >= len(f) {
			t.Fatalf("mountinfo line %q: unexpected format", l)
		}
		e := mountEntry{
			root: unescapeMountinfo(f[3]), point: unescapeMountinfo(f[4]), opts: f[5],
			fstype: f[sep+1], source: f[sep+2], super: f[sep+3],
		}
		for _, tag := range f[6:sep] {
			e.tags = append(e.tags, strings.SplitN(tag, ":", 2)[0])
		}
		out = append(out, e)
	}
	return out
}

// masking reports whether the mount is one of the empty read-only tmpfs
// mounts (one inode) that hide /proc directories: nothing can be put in it.
func (e mountEntry) masking() bool {
	return e.fstype == "tmpfs" && e.has("ro") && slices.Contains(strings.Split(e.super, ","), "nr_inodes=1")
}

func (e mountEntry) has(opt string) bool { return slices.Contains(strings.Split(e.opts, ","), opt) }

// deviceNode reports whether the mount is a single device node bound from
// a /dev (the /dev/null binds that mask /proc files, or bound device
// nodes): such a bind keeps the flags of the /dev it comes from, which
// cannot be nodev.
func (e mountEntry) deviceNode() bool {
	return (e.fstype == "devtmpfs" || e.fstype == "tmpfs") &&
		slices.Contains([]string{"/null", "/zero", "/full", "/random", "/urandom", "/tty"}, e.root)
}

// normalise renders a mount without what differs between hosts and runs:
// ids, device numbers, the host paths of the temp tree, the fs type and
// options of host disk file systems.
func (e mountEntry) normalise() string {
	root := strings.ReplaceAll(e.root, attackBase, "$BASE")
	root = strings.ReplaceAll(root, helperDir, "$HELPERS")
	fstype, super := e.fstype, e.super
	switch fstype {
	case "tmpfs", "proc", "devpts", "mqueue", "sysfs", "devtmpfs", "cgroup", "cgroup2":
		if fstype == "devtmpfs" {
			super = "-" // size and inode counts of the host's /dev
		}
	default:
		fstype, super = "hostfs", "-"
	}
	tags := "-"
	if len(e.tags) > 0 {
		tags = strings.Join(e.tags, ",")
	}
	return fmt.Sprintf("%s %s %s prop=%s root=%s super=%s", e.point, fstype, e.opts, tags, root, super)
}

// writableOK are the mount points that may be read-write in a sandbox.
var writableOK = []string{attackWorkTarget, "/tmp", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/proc"}

// TestAttackMountTable compares the sandbox's whole mount table with
// testdata/mountinfo.golden and checks its properties: nothing propagates
// to or from the host, every mount is nosuid, everything but /dev is
// nodev, and only the workspace, /tmp and the kernel file systems are
// writable.
func TestAttackMountTable(t *testing.T) {
	s := suite(t)
	out := s.run(t, runOpts{}, "/bin/cat", "/proc/self/mountinfo")
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("cat mountinfo: %v", out)
	}
	mounts := parseMountinfo(t, out.stdout)
	var norm strings.Builder
	norm.WriteString("# The default sandbox's /proc/self/mountinfo, normalised (attack_fs_test.go).\n")
	norm.WriteString("# mountpoint fstype mount-options prop=propagation root=source-root super=fs-options\n")
	for _, m := range mounts {
		norm.WriteString(m.normalise() + "\n")
		t.Run(m.point, func(t *testing.T) {
			for _, tag := range m.tags {
				if tag == "shared" {
					t.Errorf("mount is shared with a peer group (%s): mount events propagate", m.normalise())
				}
			}
			if m.masking() {
				return
			}
			if !m.has("nosuid") && !m.deviceNode() {
				t.Errorf("mount lacks nosuid: %s", m.normalise())
			}
			if !m.has("nodev") && !m.deviceNode() && m.point != "/dev" && m.fstype != "devpts" {
				t.Errorf("mount lacks nodev: %s", m.normalise())
			}
			if m.has("rw") && !m.deviceNode() && !slices.Contains(writableOK, m.point) {
				t.Errorf("mount is writable: %s (writable only: %v)", m.normalise(), writableOK)
			}
		})
	}
	for _, must := range []string{"/", "/usr", "/proc", "/dev", "/tmp", attackWorkTarget} {
		if !slices.ContainsFunc(mounts, func(m mountEntry) bool { return m.point == must }) {
			t.Errorf("no mount at %s", must)
		}
	}
	for _, m := range mounts {
		if m.fstype == "sysfs" || strings.HasPrefix(m.fstype, "cgroup") {
			t.Errorf("%s is mounted at %s: not part of a sandbox", m.fstype, m.point)
		}
	}
	compareGolden(t, "mountinfo.golden", norm.String())
}

// TestAttackNoExecWork checks that with NoExecWork the workspace and /tmp
// are noexec: a binary copied there does not run.
func TestAttackNoExecWork(t *testing.T) {
	s := suite(t)
	o := runOpts{profile: func(p *policy.Profile) { p.NoExecWork = true }}
	out := s.sh(t, o, "for d in /tmp /work; do cp /bin/true $d/t && $d/t && echo RAN $d; rm -f $d/t; done; grep -E ' /(tmp|work) ' /proc/self/mountinfo")
	if strings.Contains(out.stdout, "RAN") {
		t.Errorf("a binary ran from a noexec mount: %v", out)
	}
	for _, m := range parseMountinfo(t, out.stdout) {
		if !m.has("noexec") {
			t.Errorf("%s lacks noexec with NoExecWork: %s", m.point, m.normalise())
		}
	}
}

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
		out := s.sh(t, runOpts{user: "alice"}, "find / -xdev -name '"+name+"' 2>/dev/null; find /work /tmp /etc -name '"+name+"' 2>/dev/null; echo done")
		if strings.Contains(out.stdout, name) {
			t.Errorf("canary found inside the sandbox:\n%s", out.stdout)
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

// writeEveryROMount tries, on every read-only mount, to create a file and
// to append to an existing regular file (the mount itself when it is a
// file), and prints one line per attempt.
const writeEveryROMount = `while read -r id parent mm root mp opts rest; do
  case ",$opts," in *,ro,*) ;; *) continue ;; esac
  if [ -d "$mp" ]; then
    t="$mp/.execgate-write-probe"
    if err=$( ( : >> "$t" ) 2>&1 ); then echo "CREATED $mp"; else echo "CREATE-REFUSED $mp ${err##*: }"; fi
    f=$(find "$mp" -xdev -maxdepth 3 -type f 2>/dev/null | head -n 1)
  else
    f="$mp"
  fi
  [ -n "$f" ] || continue
  if err=$( ( : >> "$f" ) 2>&1 ); then echo "APPENDED $f"; else echo "APPEND-REFUSED $f ${err##*: }"; fi
done < /proc/self/mountinfo`

// TestAttackWriteReadOnlyMounts writes to every read-only mount, as the
// sandbox uid and as uid 0 without capabilities (for which only the
// read-only flag stands in the way of root-owned files). A refused write
// must say EROFS or EACCES; creating a file in procfs may also say ENOENT
// (procfs has no file creation at all), but appending to an existing
// procfs file must not succeed.
func TestAttackWriteReadOnlyMounts(t *testing.T) {
	s := suite(t)
	for _, uid := range []uint32{attackUID, 0} {
		t.Run(fmt.Sprintf("uid%d", uid), func(t *testing.T) {
			o := runOpts{profile: func(p *policy.Profile) { p.UID, p.GID = uid, uid }}
			out := s.sh(t, o, writeEveryROMount)
			got := lines(out.stdout)
			if len(got) < 5 {
				t.Fatalf("too few read-only mounts found: %v", out)
			}
			for _, l := range got {
				refused := strings.HasSuffix(l, "Read-only file system") || strings.HasSuffix(l, "Permission denied")
				procCreate := strings.HasPrefix(l, "CREATE-REFUSED /proc/") && strings.HasSuffix(l, "Directory nonexistent")
				if !strings.Contains(l, "-REFUSED ") || !(refused || procCreate) {
					t.Errorf("%s (want EROFS or EACCES)", l)
				}
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
	out := s.sh(t, runOpts{}, `for p in /proc/self/exe /proc/1/exe; do if ( exec 3>>$p ) 2>/dev/null; then echo "OPENED $p"; fi; done; echo checked`)
	if strings.Contains(out.stdout, "OPENED") || !strings.Contains(out.stdout, "checked") {
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
	out = s.sh(t, runOpts{user: "bob"}, "ls -a /work; find / -xdev -name '"+name+"' 2>/dev/null; cat /work/"+name)
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
			// ptmx, pts, fd and std* are what libcontainer adds to every /dev.
			want := []string{"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
			slices.Sort(got)
			for _, g := range got {
				if !slices.Contains(want, g) {
					t.Errorf("unexpected /dev entry %q (all: %v)", g, got)
				}
			}
			if strings.Contains(out.stdout, "MKNOD-OK") || strings.Contains(out.stdout, "READ-MEM") {
				t.Errorf("a device node could be created or used: %v", out)
			}
		})
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

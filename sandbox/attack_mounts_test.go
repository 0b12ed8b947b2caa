package sandbox

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox/pid1"
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
	if self, err := os.Readlink("/proc/self/exe"); err == nil && root == self {
		root = "$SELF" // the test binary, bound at pid1.Path
	}
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

// writeEveryROMount tries, on every read-only mount, to create a file and
// to append to an existing regular file (the mount itself when it is a
// file), and prints one line per attempt. A mount that is a character
// device (the /dev/null binds masking /proc files) is listed with its
// device number instead: writing to a device node is no write to a file
// system, read-only or not.
const writeEveryROMount = `while read -r id parent mm root mp opts rest; do
  case ",$opts," in *,ro,*) ;; *) continue ;; esac
  if [ -c "$mp" ]; then echo "CHARDEV $mp $(stat -c %t:%T "$mp")"; continue; fi
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
			out := s.sh(t, o, writeEveryROMount+"\n: >> /tmp/control && echo CONTROL-WRITTEN >&2")
			if !strings.Contains(out.stderr, "CONTROL-WRITTEN") {
				t.Fatalf("control: the script cannot write /tmp: %v", out)
			}
			got := lines(out.stdout)
			if len(got) < 5 {
				t.Fatalf("too few read-only mounts found: %v", out)
			}
			for _, l := range got {
				if strings.HasPrefix(l, "CHARDEV ") {
					if !strings.HasPrefix(l, "CHARDEV /proc/") || !strings.HasSuffix(l, " 1:3") {
						t.Errorf("%s (want only /dev/null, 1:3, masking a /proc file)", l)
					}
					continue
				}
				refused := strings.HasSuffix(l, "Read-only file system") || strings.HasSuffix(l, "Permission denied")
				procCreate := strings.HasPrefix(l, "CREATE-REFUSED /proc/") && strings.HasSuffix(l, "Directory nonexistent")
				// The binary running as PID 1: the kernel refuses writes
				// to an executing file (ETXTBSY) before it checks the
				// read-only mount.
				busy := l == "APPEND-REFUSED "+pid1.Path+" Text file busy"
				if !strings.Contains(l, "-REFUSED ") || !(refused || procCreate || busy) {
					t.Errorf("%s (want EROFS or EACCES)", l)
				}
			}
		})
	}
}

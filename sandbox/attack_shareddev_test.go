package sandbox

import (
	"fmt"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// devSnapshot lists /dev as a run sees it: name, type, mode, owner,
// device number or link target.
const devSnapshot = `for f in /dev/* /dev/.[!.]*; do [ -e "$f" ] || [ -L "$f" ] || continue; stat -c '%n %F %a %u:%g %t:%T %N' "$f"; done`

// devTamper tries, from inside one run, every way to leave something in the
// shared /dev for the next run: create files, nodes, links and
// directories, change a node's mode or owner, remove or rename a node,
// mount over it, and POSIX shared memory or message queues (which would
// need /dev/shm or /dev/mqueue). One "what: outcome" line each.
const devTamper = `t() {
  label=$1; shift; out=$("$@" 2>&1); st=$?; out=$(printf '%s' "$out" | tail -n 1)
  if [ $st -eq 0 ]; then echo "$label: DONE"; else echo "$label: refused ${out##*: }"; fi
}
t create sh -c ': > /dev/x'
t mkdir mkdir /dev/shm
t symlink ln -s /work /dev/y
t mknod mknod /dev/z c 1 3
t chmod chmod 777 /dev/null
t chown chown 65534 /dev/null
t rm rm -f /dev/zero
t rename mv /dev/full /dev/full2
t mount-tmpfs mount -t tmpfs none /dev
t remount-rw mount -o remount,rw /dev
t python-shm python3 -c 'import _posixshmem; _posixshmem.shm_open("/eg", 0o102, 0o600)'
true`

// TestAttackSharedDev: the /dev that runs without a TTY share is out of
// reach of every run, as the sandbox uid and as uid 0 without
// capabilities: each attempt to change it is refused, and a later run
// (another user's) sees exactly the /dev the first one saw.
func TestAttackSharedDev(t *testing.T) {
	s := suite(t)
	before := s.sh(t, runOpts{user: "devbob"}, devSnapshot)
	if before.err != nil || !strings.Contains(before.stdout, "/dev/null character special file 666 0:0 1:3") {
		t.Fatalf("snapshot of /dev: %v", before)
	}
	for _, uid := range []uint32{attackUID, 0} {
		o := runOpts{user: fmt.Sprintf("dev%d", uid), profile: func(p *policy.Profile) { p.UID, p.GID = uid, uid }}
		out := s.sh(t, o, devTamper)
		got := lines(out.stdout)
		if len(got) != 11 {
			t.Fatalf("uid %d: got %d outcome lines, want 11: %v", uid, len(got), out)
		}
		for _, l := range got {
			if strings.HasSuffix(l, ": DONE") {
				t.Errorf("uid %d: %s: a run changed the shared /dev", uid, l)
			}
		}
	}
	after := s.sh(t, runOpts{user: "devbob"}, devSnapshot)
	if after.stdout != before.stdout {
		t.Errorf("/dev changed between runs:\nbefore:\n%s\nafter:\n%s", before.stdout, after.stdout)
	}
}

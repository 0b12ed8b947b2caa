package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// hostMountsUnderRoot returns the host's mounts below (and at) dir.
func hostMountsUnderRoot(t *testing.T, dir string) map[string]*mountinfo.Info {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*mountinfo.Info{}
	for _, i := range infos {
		if _, dup := out[i.Mountpoint]; dup {
			t.Errorf("%s is mounted twice", i.Mountpoint)
		}
		out[i.Mountpoint] = i
	}
	return out
}

// TestSkeletonStaticBinds checks the skeleton's static binds on the host:
// each one is mounted once under the root bind, from its host source,
// read-only, nosuid, nodev (the /etc files noexec too) and private (no
// peer group, no master), and nothing else is mounted there.
func TestSkeletonStaticBinds(t *testing.T) {
	m := newTestManager(t)
	mounts := hostMountsUnderRoot(t, m.skel.root)
	binds := m.skel.staticBinds()
	if len(mounts) != len(binds)+2 {
		t.Errorf("got %d mounts under %s, want the root bind, %d static binds and PID 1's binary", len(mounts), m.skel.root, len(binds))
	}
	check := func(point, source string, want []string) {
		i := mounts[point]
		if i == nil {
			t.Errorf("%s: not mounted", point)
			return
		}
		opts := strings.Split(i.Options, ",")
		for _, w := range want {
			if !slices.Contains(opts, w) {
				t.Errorf("%s: got options %s, want %s", point, i.Options, w)
			}
		}
		if i.Optional != "" {
			t.Errorf("%s: got propagation %q, want private (none)", point, i.Optional)
		}
		if i.Root != source {
			t.Errorf("%s: got source root %s, want %s", point, i.Root, source)
		}
	}
	check(m.skel.root, m.skel.dir, []string{"ro", "nosuid", "nodev"})
	sawUsr, sawEtc := false, false
	for _, b := range binds {
		want := []string{"ro", "nosuid", "nodev"}
		if strings.HasPrefix(b.dst, "/etc/") {
			want = append(want, "noexec")
			sawEtc = true
		}
		sawUsr = sawUsr || b.dst == "/usr"
		// The source root of a bind of the host's / file system is the path.
		check(filepath.Join(m.skel.root, b.dst), b.src, want)
	}
	if !sawUsr || !sawEtc {
		t.Errorf("static binds %+v: want /usr and /etc files", binds)
	}
}

// TestSkeletonNoPropagation mounts a tmpfs below the host's /usr while a
// Manager holds its static /usr bind: it must appear neither under the
// skeleton on the host nor inside a sandbox.
func TestSkeletonNoPropagation(t *testing.T) {
	m := newTestManager(t)
	dir, err := os.MkdirTemp("/usr/local", ".execgate-prop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := hostMountsUnderRoot(t, filepath.Join(m.skel.root, dir)); len(got) != 0 {
		t.Errorf("a host mount below /usr propagated into the skeleton: %v", got)
	}
	spec := Spec{Argv: []string{"/bin/sh", "-c", fmt.Sprintf("ls -A %s; grep -c ' %s ' /proc/self/mountinfo", dir, dir)}, Profile: testProfile()}
	out := runSpec(t, m, spec)
	if got := strings.TrimSpace(out.Stdout); got != "0" {
		t.Errorf("inside the sandbox: got %q (stderr %q), want an empty directory and no mount (0)", got, out.Stderr)
	}
}

// TestSweepStaticBinds leaves a Manager's skeleton mounted as a crashed
// process would (no Close) and checks that the next Manager of the
// instance sweeps it, builds its own, runs, and leaves nothing at Close.
func TestSweepStaticBinds(t *testing.T) {
	needSandbox(t)
	cfg := testConfig(t)
	crashed, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// What dies with the process: its threads and its locks.
	crashed.warm.stop()
	crashed.starters.close()
	crashed.releaseLocks()
	if got := hostMountsUnderRoot(t, crashed.skel.root); len(got) < 2 {
		t.Fatalf("got %d mounts under the crashed skeleton, want the root bind and its static binds", len(got))
	}
	m2, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New over a crashed skeleton: %v", err)
	}
	if got := hostMountsUnderRoot(t, m2.skel.root); len(got) != len(m2.skel.staticBinds())+2 {
		t.Errorf("got %d mounts under the new skeleton, want %d (stacked on leftovers?)", len(got), len(m2.skel.staticBinds())+2)
	}
	out := runSpec(t, m2, Spec{Argv: []string{"/bin/true"}, Profile: testProfile()})
	if out.ExitCode != 0 {
		t.Errorf("run after the sweep: exit %d, stderr %q", out.ExitCode, out.Stderr)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if left := leftoversOf(m2.cfg); len(left) > 0 {
		t.Errorf("after Close: %v", left)
	}
	removeCgroupParents(m2.cfg.CgroupParent)
}

// TestSharedDev checks the shared /dev on the host: a private tmpfs,
// read-only (mount and superblock), nosuid, noexec, holding exactly the
// sandbox's device nodes (character devices, 0666, root) and libcontainer's
// links.
func TestSharedDev(t *testing.T) {
	m := newTestManager(t)
	i := hostMountsUnderRoot(t, m.skel.dev)[m.skel.dev]
	if i == nil {
		t.Fatalf("%s: not mounted", m.skel.dev)
	}
	opts, super := strings.Split(i.Options, ","), strings.Split(i.VFSOptions, ",")
	for _, w := range []string{"ro", "nosuid", "noexec"} {
		if !slices.Contains(opts, w) {
			t.Errorf("got options %s, want %s", i.Options, w)
		}
	}
	if i.FSType != "tmpfs" || !slices.Contains(super, "ro") || i.Optional != "" {
		t.Errorf("got %s super %s propagation %q, want tmpfs, super ro, private", i.FSType, i.VFSOptions, i.Optional)
	}
	ents, err := os.ReadDir(m.skel.dev)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"fd", "full", "null", "ptmx", "random", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		want = append(want, "core")
		slices.Sort(want)
	}
	if !slices.Equal(names, want) {
		t.Errorf("got entries %v, want %v", names, want)
	}
	for _, d := range sandboxDevices {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(m.skel.dev, filepath.Base(d.Path)), &st); err != nil {
			t.Errorf("%s: %v", d.Path, err)
			continue
		}
		if st.Mode != unix.S_IFCHR|0o666 || st.Uid != 0 || st.Gid != 0 ||
			unix.Major(st.Rdev) != uint32(d.Major) || unix.Minor(st.Rdev) != uint32(d.Minor) {
			t.Errorf("%s: got mode %o uid %d gid %d dev %d:%d, want char 0666 root %d:%d", d.Path, st.Mode, st.Uid, st.Gid,
				unix.Major(st.Rdev), unix.Minor(st.Rdev), d.Major, d.Minor)
		}
	}
	if err := os.WriteFile(filepath.Join(m.skel.dev, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("creating a file in the shared /dev as host root: got %v, want EROFS", err)
	}
}

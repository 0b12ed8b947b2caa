package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestValidateCgroupParent(t *testing.T) {
	tests := []struct {
		parent string
		want   string // substring of the error; "" for valid
	}{
		{"/execgate/default", ""},
		{"/system.slice/execgate.service/sandboxes", ""},
		{"/a_b-c.d/x", ""},
		{"", "empty"},
		{"/", "must not be the root cgroup"},
		{"execgate/default", "absolute"},
		{"/execgate/../system.slice", "no . or .. component"},
		{"/execgate/./x", "no . or .. component"},
		{"/..", "no . or .. component"},
		{"/execgate//x", "empty component"},
		{"/execgate/", "empty component"},
		{"/execgate/eg-1", "may not start with eg-"},
		{"/eg-x/y", "may not start with eg-"},
		{"/exec gate", "printable ASCII"},
		{"/exec\ngate", "printable ASCII"},
		{"/execgate/\u00e9", "printable ASCII"},
		{"/" + strings.Repeat("a", 600), "longer than 512"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%q", tt.parent)
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(name, func(t *testing.T) {
			err := ValidateCgroupParent(tt.parent)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			// The Manager's configuration refuses the same values.
			cfg := Config{Instance: "x", CgroupParent: tt.parent, StateRoot: "/run/execgate/x", CgroupVersion: 1, InitPath: "/usr/bin/execgate"}
			if tt.parent == "" {
				return // withDefaults fills it
			}
			if _, err := cfg.withDefaults(); (err == nil) != (tt.want == "") {
				t.Errorf("withDefaults: got %v, want ok=%v", err, tt.want == "")
			}
		})
	}
}

// TestRunCustomCgroupParent: a run's cgroup is created under the
// configured parent (nested three deep, as on cgroup v2 inside a service's
// delegated subtree) in every hierarchy, holds the run's processes, and
// is gone after the run; Close removes the parent itself.
func TestRunCustomCgroupParent(t *testing.T) {
	needSandbox(t)
	top := fmt.Sprintf("/execgate-cgp-%d", os.Getpid())
	parent := top + "/delegated/sandboxes"
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, mnt := range mounts {
			_ = unix.Rmdir(filepath.Join(mnt, parent))
			_ = unix.Rmdir(filepath.Join(mnt, top, "delegated"))
			_ = unix.Rmdir(filepath.Join(mnt, top))
		}
	})
	m := newTestManagerWith(t, func(c *Config) { c.CgroupParent = parent })
	if got := m.Config().CgroupParent; got != parent {
		t.Fatalf("Config().CgroupParent: got %q, want %q", got, parent)
	}
	// Watch the pids and memory hierarchies while the command sleeps.
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	seen := map[string]bool{} // "<controller> <dir>" with a process in it
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, c := range []string{"pids", "memory"} {
				ents, _ := os.ReadDir(filepath.Join(cgroupMountRoot, c, parent))
				for _, e := range ents {
					if !e.IsDir() || !strings.HasPrefix(e.Name(), containerPrefix) {
						continue
					}
					procs, err := os.ReadFile(filepath.Join(cgroupMountRoot, c, parent, e.Name(), "cgroup.procs"))
					if err == nil && len(strings.Fields(string(procs))) > 0 {
						mu.Lock()
						seen[c+" "+e.Name()] = true
						mu.Unlock()
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	out := runSpec(t, m, Spec{Argv: []string{"/bin/sleep", "0.5"}})
	cancel()
	wg.Wait()
	if out.ExitCode != 0 {
		t.Fatalf("sleep: exit %d: %s", out.ExitCode, out.Stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	var pids, mem int
	for k := range seen {
		switch {
		case strings.HasPrefix(k, "pids "):
			pids++
		case strings.HasPrefix(k, "memory "):
			mem++
		}
	}
	if pids != 1 || mem != 1 {
		t.Errorf("got run cgroups with processes under %s: %v, want one eg-* in pids and in memory", parent, seen)
	}
	// Nothing of the run under the default parent.
	if ents, _ := os.ReadDir(filepath.Join(cgroupMountRoot, "pids", DefaultCgroupParentBase, m.Config().Instance)); len(ents) > 0 {
		t.Errorf("default parent holds %d entries", len(ents))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, mnt := range mounts {
		if _, err := os.Stat(filepath.Join(mnt, parent)); !os.IsNotExist(err) {
			t.Errorf("%s: parent still there after Close (%v)", filepath.Join(mnt, parent), err)
		}
	}
}

// fillTmpfs mounts a tmpfs of size bytes on a new directory and fills it
// to less than leave bytes free; remove deletes the filler.
func fillTmpfs(t *testing.T, size, leave int64) (dir string, remove func()) {
	t.Helper()
	dir = t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if int64(st.Bavail)*st.Bsize < leave {
			break
		}
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	f.Close()
	return dir, func() { _ = os.Remove(filler) }
}

// TestReserveDirDiskFull: a run is refused with ErrDiskFull, before
// anything of it is created, while a ReserveDirs file system (here a
// filled 8 MiB tmpfs standing for the audit log's) has less than
// MinFreeBytes free, and runs again once space is freed.
func TestReserveDirDiskFull(t *testing.T) {
	needSandbox(t)
	const minFree = 2 << 20
	audit, free := fillTmpfs(t, 8<<20, minFree)
	m := newTestManagerWith(t, func(c *Config) {
		c.MinFreeBytes = minFree
		c.ReserveDirs = []string{audit}
	})
	_, err := m.Run(t.Context(), Spec{Argv: []string{"/bin/true"}, Profile: testProfile(), Stdout: &strings.Builder{}, Stderr: &strings.Builder{}})
	var de *DiskFullError
	if !errors.Is(err, ErrDiskFull) || !errors.As(err, &de) {
		t.Fatalf("run with the reserve dir full: got %v, want ErrDiskFull", err)
	}
	if de.Path != audit || de.MinBytes != minFree || de.FreeBytes >= minFree {
		t.Errorf("got %+v, want path %s, min %d, free below it", de, audit, minFree)
	}
	if left := runLeftovers(m); len(left) > 0 {
		t.Errorf("a refused run left %v", left)
	}
	free()
	if out := runSpec(t, m, Spec{Argv: []string{"/bin/true"}}); out.ExitCode != 0 {
		t.Errorf("after freeing space: exit %d", out.ExitCode)
	}
}

// TestReserveDirsConfig: reserve dirs must be clean absolute paths that
// exist when the Manager starts.
func TestReserveDirsConfig(t *testing.T) {
	needSandbox(t)
	for _, tt := range []struct {
		dir, want string
	}{
		{"relative/dir", "want a clean absolute path"},
		{"/var/log/../tmp", "want a clean absolute path"},
		{"/nonexistent/execgate-reserve", "reserve dir /nonexistent/execgate-reserve"},
	} {
		cfg := testConfig(t)
		cfg.ReserveDirs = []string{tt.dir}
		m, err := New(t.Context(), cfg, testLogger(t))
		if err == nil {
			m.Close()
			t.Errorf("%q: got a Manager, want an error with %q", tt.dir, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.dir, err, tt.want)
		}
	}
}

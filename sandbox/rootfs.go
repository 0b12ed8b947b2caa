package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The shared root skeleton. It is built once per Manager in <StateRoot>/skel
// (empty mount points, the usr-merge symlinks, a generated passwd and
// group) and bind-mounted on the host, read-only, nosuid, nodev and
// private, at <StateRoot>/rootfs, which is the root of every container.
// libcontainer's bind of the root inherits those flags, so the container's
// / is ro,nosuid,nodev without a per-run remount (its own read-only remount
// would drop nosuid and nodev). The static read-only binds (/usr, the /etc
// files) are mounted once onto that bind (skelmounts.go) and arrive with
// libcontainer's recursive bind of the root. Per run, libcontainer only
// mounts onto it inside the container's own mount namespace: nothing is
// created or removed per run. New mount points and users are added through
// skel.

// usrMergeNames are the top-level names Debian's usr-merge turns into
// symlinks into /usr (trap 11). A host where one is a real directory gets a
// read-only bind of it instead.
var usrMergeNames = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// etcBinds are the host /etc entries a program needs, bind-mounted
// read-only when the host has them: the dynamic loader's cache, the
// alternatives links /usr/bin points into, CA certificates, hosts and the
// name service switch configuration.
var etcBinds = []string{"/etc/ld.so.cache", "/etc/alternatives", "/etc/ssl/certs", "/etc/hosts", "/etc/nsswitch.conf"}

// reservedTargets may not be used as mount targets of a Spec: they are
// the sandbox's own mounts.
var reservedTargets = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/dev", "/sys", "/tmp"}

// skeleton is the shared read-only root.
type skeleton struct {
	dir      string   // writable skeleton (host only)
	root     string   // its read-only bind: the containers' root
	dev      string   // the shared read-only /dev (skeldev.go)
	hostDirs []string // usr-merge names that are real directories on the host: bound read-only
	etc      []string // etcBinds present on the host

	mu      sync.Mutex
	targets map[string]bool
	users   map[[2]uint32]bool
}

// buildSkeleton creates the skeleton in dir, its read-only bind at root and
// the shared /dev at dev, replacing earlier ones (the caller has swept
// mounts under the state root).
func buildSkeleton(dir, root, dev string) (_ *skeleton, err error) {
	for _, d := range []string{dir, root, dev} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("remove old root skeleton %s: %w", d, err)
		}
	}
	s := &skeleton{dir: dir, root: root, dev: dev, targets: map[string]bool{}, users: map[[2]uint32]bool{}}
	for _, d := range []string{"", "usr", "etc", "tmp", "proc", "dev"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("root skeleton: %w", err)
		}
	}
	for _, name := range usrMergeNames {
		if err := s.addUsrMerge(name); err != nil {
			return nil, err
		}
	}
	for _, p := range etcBinds {
		if err := s.addEtc(p); err != nil {
			return nil, err
		}
	}
	if err := s.ensureUser(DefaultSandboxUID, DefaultSandboxGID); err != nil {
		return nil, err
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, fmt.Errorf("root skeleton: %w", err)
	}
	if err := bindReadOnly(dir, root); err != nil {
		return nil, err
	}
	if err := s.mountStatic(); err != nil {
		return nil, errors.Join(err, unmountRetry(root))
	}
	if err := buildDev(dev); err != nil {
		return nil, errors.Join(err, unmountUnder(root, true))
	}
	return s, nil
}

// bindReadOnly bind-mounts dir at root read-only, nosuid, nodev, private.
func bindReadOnly(dir, root string) error {
	if err := unix.Mount(dir, root, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind root skeleton: %w", err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	if err := unix.Mount("", root, "", flags, ""); err != nil {
		_ = unix.Unmount(root, unix.MNT_DETACH)
		return fmt.Errorf("remount root skeleton read-only: %w", err)
	}
	if err := unix.Mount("", root, "", unix.MS_PRIVATE, ""); err != nil {
		_ = unix.Unmount(root, unix.MNT_DETACH)
		return fmt.Errorf("make root skeleton private: %w", err)
	}
	return nil
}

// remove unmounts the static binds, the read-only bind and the shared
// /dev and removes the three trees.
func (s *skeleton) remove() error {
	if err := unmountUnder(s.root, true); err != nil {
		return err
	}
	if err := unmountUnder(s.dev, true); err != nil {
		return err
	}
	if err := os.RemoveAll(s.dev); err != nil {
		return fmt.Errorf("remove %s: %w", s.dev, err)
	}
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("remove %s: %w", s.root, err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.dir, err)
	}
	return nil
}

func (s *skeleton) addUsrMerge(name string) error {
	host := "/" + name
	fi, err := os.Lstat(host)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("root skeleton: %w", err)
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(host)
		if err != nil {
			return fmt.Errorf("root skeleton: %w", err)
		}
		if !strings.HasPrefix(strings.TrimPrefix(target, "/"), "usr/") {
			return fmt.Errorf("root skeleton: %s points to %s, outside /usr", host, target)
		}
		return os.Symlink(target, filepath.Join(s.dir, name))
	case fi.IsDir():
		s.hostDirs = append(s.hostDirs, host)
		return os.Mkdir(filepath.Join(s.dir, name), 0o755)
	}
	return nil
}

func (s *skeleton) addEtc(p string) error {
	fi, err := os.Stat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("root skeleton: %w", err)
	}
	dst := filepath.Join(s.dir, p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("root skeleton: %w", err)
	}
	if fi.IsDir() {
		err = os.Mkdir(dst, 0o755)
	} else {
		err = os.WriteFile(dst, nil, 0o644)
	}
	if err != nil {
		return fmt.Errorf("root skeleton: %w", err)
	}
	s.etc = append(s.etc, p)
	return nil
}

// ensureTarget creates the mount point target (absolute, clean) in the
// skeleton once.
func (s *skeleton) ensureTarget(target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.targets[target] {
		return nil
	}
	if err := checkTarget(target); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.dir, target), 0o755); err != nil {
		return fmt.Errorf("mount point %s: %w", target, err)
	}
	s.targets[target] = true
	return nil
}

// checkTarget refuses relative, unclean, root and reserved targets.
func checkTarget(target string) error {
	if !filepath.IsAbs(target) || filepath.Clean(target) != target || target == "/" {
		return &SpecError{Field: "mount target", Reason: fmt.Sprintf("%q: want a clean absolute path other than /", target)}
	}
	for _, r := range reservedTargets {
		if isUnder(target, r) {
			return &SpecError{Field: "mount target", Reason: fmt.Sprintf("%q is inside the sandbox's own %s", target, r)}
		}
	}
	return nil
}

// ensureUser makes sure passwd and group name uid and gid, rewriting them
// atomically when a new pair appears.
func (s *skeleton) ensureUser(uid, gid uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]uint32{uid, gid}
	if s.users[key] {
		return nil
	}
	s.users[key] = true
	var keys [][2]uint32
	for k := range s.users {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	passwd := "root:x:0:0:root:/root:/usr/sbin/nologin\n"
	group := "root:x:0:\n"
	seenUID, seenGID := map[uint32]bool{0: true}, map[uint32]bool{0: true}
	for _, k := range keys {
		if !seenUID[k[0]] {
			seenUID[k[0]] = true
			passwd += fmt.Sprintf("%s:x:%d:%d:execgate sandbox:/tmp:/usr/sbin/nologin\n", userName(k[0]), k[0], k[1])
		}
		if !seenGID[k[1]] {
			seenGID[k[1]] = true
			group += fmt.Sprintf("%s:x:%d:\n", userName(k[1]), k[1])
		}
	}
	if err := writeAtomic(filepath.Join(s.dir, "etc/passwd"), passwd); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, "etc/group"), group)
}

func userName(id uint32) string {
	if id == DefaultSandboxUID {
		return "sandbox"
	}
	return fmt.Sprintf("sandbox%d", id)
}

func writeAtomic(path, content string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

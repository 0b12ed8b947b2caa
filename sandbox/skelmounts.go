package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The static binds of the root skeleton. /usr, the usr-merge names that
// are real directories and the /etc files are the same for every run, so
// they are bind-mounted once per Manager onto the skeleton's read-only
// host bind (<StateRoot>/rootfs), each with its own read-only remount,
// rather than listed in every container's configuration: libcontainer's
// recursive bind of the root brings them into the container's mount
// namespace with their flags (a bind keeps each mount's ro, nosuid, nodev
// and noexec), and the init skips its path checks for each of them
// (~0.4 ms a bind).
//
// Each one is a non-recursive bind (as libcontainer's own bind was: a
// mount below the host's /usr does not come along), remounted read-only
// with its flags, then made private, so that it leaves the host's peer
// group of its source: nothing mounted on the host later under /usr
// propagates into it or through it. The skeleton's root bind is private
// too, so these mounts never propagate back to the host.

// staticBind is one read-only bind of a host path into every container.
type staticBind struct {
	src, dst string // host path; path inside the container (the same here)
	flags    uintptr
}

// staticBinds lists the skeleton's static binds, in mount order: /usr, the
// usr-merge directories, the /etc files (noexec).
func (s *skeleton) staticBinds() []staticBind {
	out := []staticBind{{src: "/usr", dst: "/usr", flags: roBind}}
	for _, d := range s.hostDirs {
		out = append(out, staticBind{src: d, dst: d, flags: roBind})
	}
	for _, e := range s.etc {
		out = append(out, staticBind{src: e, dst: e, flags: roBind | unix.MS_NOEXEC})
	}
	return out
}

// mountStatic mounts every static bind under the skeleton's root bind. On
// failure it unmounts what it mounted.
func (s *skeleton) mountStatic() error {
	for _, b := range s.staticBinds() {
		if err := mountStaticBind(b, filepath.Join(s.root, b.dst)); err != nil {
			return errors.Join(err, unmountUnder(s.root, false))
		}
	}
	return nil
}

// mountStaticBind binds b.src at target (non-recursive), remounts it with
// b.flags and makes it private.
func mountStaticBind(b staticBind, target string) error {
	if err := unix.Mount(b.src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("root skeleton: bind %s: %w", b.src, err)
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|b.flags, ""); err != nil {
		return fmt.Errorf("root skeleton: remount %s read-only: %w", b.dst, err)
	}
	if err := unix.Mount("", target, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("root skeleton: make %s private: %w", b.dst, err)
	}
	return nil
}

// unmountUnder unmounts every mount strictly below dir (and dir itself
// when self is set), deepest first, and fails if one stays mounted.
func unmountUnder(dir string, self bool) error {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	var targets []string
	for _, i := range infos {
		if i.Mountpoint != dir || self {
			targets = append(targets, i.Mountpoint)
		}
	}
	// Deepest first; a path stacked twice appears twice and is unmounted
	// twice.
	sort.SliceStable(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	var errs []error
	for _, t := range targets {
		if err := unmountRetry(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Two instances must never sweep (or kill) each other's containers. Each
// Manager therefore holds two exclusive flocks for its whole life: one in
// its state root, and one named after its cgroup parent in a host-wide
// directory, since two state roots could be configured with one cgroup
// parent (whose sweep would kill the other's running containers).

// cgroupLockDir holds the cgroup parent locks of every instance on the
// host. Its name is not a valid instance name, so no state root is there.
const cgroupLockDir = DefaultStateRootBase + "/.cgroup-locks"

// stateRootEntries is everything a state root may hold.
var stateRootEntries = map[string]bool{"lock": true, "skel": true, "rootfs": true, "dev": true, "containers": true, "images": true}

// lockInstance prepares the state root and takes both locks.
func lockInstance(cfg Config) ([]*os.File, []byte, error) {
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state root %s: %w", cfg.StateRoot, err)
	}
	if err := os.Chmod(cfg.StateRoot, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state root %s: %w", cfg.StateRoot, err)
	}
	if err := checkStateRoot(cfg); err != nil {
		return nil, nil, err
	}
	stateLock, _, err := flockFile(cfg.lockPath(), "")
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cgroupLockDir, 0o700); err != nil {
		stateLock.Close()
		return nil, nil, fmt.Errorf("cgroup lock dir: %w", err)
	}
	sum := sha256.Sum256([]byte(cfg.CgroupParent))
	cgLock, prev, err := flockFile(filepath.Join(cgroupLockDir, hex.EncodeToString(sum[:12])+".lock"), cfg.CgroupParent+"\n")
	if err != nil {
		stateLock.Close()
		var le *LockedError
		if errors.As(err, &le) {
			le.What = "cgroup parent " + cfg.CgroupParent
		}
		return nil, nil, err
	}
	return []*os.File{stateLock, cgLock}, prev, nil
}

// checkStateRoot refuses a state root holding anything but the sandbox's
// own layout: the sweep removes what it finds there, so a misconfigured
// state root (say /var/lib) must never be swept.
func checkStateRoot(cfg Config) error {
	entries, err := os.ReadDir(cfg.StateRoot)
	if err != nil {
		return fmt.Errorf("state root %s: %w", cfg.StateRoot, err)
	}
	for _, e := range entries {
		if !stateRootEntries[e.Name()] {
			return fmt.Errorf("state root %s holds %q, which is not the sandbox's: refusing to use (and sweep) it", cfg.StateRoot, e.Name())
		}
	}
	return nil
}

// flockFile takes an exclusive, non-blocking flock on path, writing note
// into it (for a human looking at the lock directory, and for the cgroup
// parent's record, cgparent.go). It returns what the file held before
// (up to 64 KiB; what a crashed holder left).
func flockFile(path, note string) (*os.File, []byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, &LockedError{Path: path}
		}
		return nil, nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The holder before us may have unlinked the file after we opened it
	// (releaseLocks removes cgroup locks): then our lock guards nothing.
	var held, named unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(path, &named) != nil || held.Ino != named.Ino || held.Dev != named.Dev {
		f.Close()
		return nil, nil, &LockedError{Path: path}
	}
	prev := make([]byte, 64<<10)
	n, _ := f.ReadAt(prev, 0)
	if note != "" {
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(note), 0)
	}
	return f, prev[:n], nil
}

// releaseLocks closes (and so unlocks) the Manager's lock files. The
// cgroup parent's lock file is removed first, while still held, so the
// lock directory does not fill up; flockFile detects the race.
func (m *Manager) releaseLocks() {
	for i, f := range m.locks {
		if i == 1 {
			_ = os.Remove(f.Name())
		}
		f.Close()
	}
	m.locks = nil
}

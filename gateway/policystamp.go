package gateway

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/execgate/execgate/policy"
)

// What the policy poller watches, and how (docs/policy.md, "Reloading"):
//
//   - cfg.Policy and, for a directory, every *.yaml / *.yml in it, plus the
//     serving set's own files: stat(2), following symbolic links as the
//     loader does;
//   - every custom seccomp file the serving set's profiles name, and every
//     one the last rejected load reported a bad_seccomp error for (a file
//     that did not exist, was refused or failed the check), with the
//     directory holding each: lstat(2), as policy.ReadSeccompFile follows
//     no symbolic link. A directory is stamped by its identity, owner and
//     mode only (what the loader checks of it), not by its times.
//
// A file's stamp is its device, inode, mode, owner, group, size, mtime and
// ctime, so a same-size edit, a replacement that keeps the old mtime (cp
// -p, rsync -t, a rename over the file) and a chmod or chown are all seen:
// ctime cannot be set from user space. A poll costs one stat per watched
// file; a file is read only while it is racy (below).
//
// Not watched: command binaries (their sha256 pins) and secrets files;
// after changing those, reload with SIGHUP.

// racyWindow: a file whose ctime is within this of the moment it was
// stamped (or later) may change again without any stat field changing,
// since timestamps have a granularity (a kernel tick on ext4, xfs, btrfs
// and tmpfs; up to a second or two on some file systems). Such a file's
// content digest is stamped too and compared at the following polls until
// its ctime is older than this.
const racyWindow = 2 * time.Second

// maxStampRead bounds what the poller reads of a racy file (a policy file
// is at most 4 MiB, a seccomp file 64 KiB): a longer file is digested up
// to the bound, and its size is in the stamp anyway.
const maxStampRead = 8 << 20

// watchKey is one watched path; nofollow stamps it with lstat.
type watchKey struct {
	name     string
	nofollow bool
}

func (a watchKey) compare(b watchKey) int {
	if c := cmp.Compare(a.name, b.name); c != 0 {
		return c
	}
	switch {
	case a.nofollow == b.nofollow:
		return 0
	case a.nofollow:
		return 1
	}
	return -1
}

// fileStamp is what the poller compares of one file.
type fileStamp struct {
	key          watchKey
	err          string // stat failed (e.g. "no such file or directory")
	dev, ino     uint64
	mode         uint32
	uid, gid     uint32
	size         int64
	mtime, ctime int64 // Unix nanoseconds
	// sum is the content digest of a racy regular file (hasSum).
	sum    [sha256.Size]byte
	hasSum bool
	// stale marks a file stamped after the load that read it and changed
	// since the load began (or may have): it never compares equal, so the
	// next poll reloads once.
	stale bool
}

// policyStamp is the stamp of every watched file, sorted by key.
type policyStamp struct {
	at    time.Time
	files []fileStamp
}

// sameStat reports whether two stamps of one key show the same file.
func (a *fileStamp) sameStat(b *fileStamp) bool {
	return a.key == b.key && a.err == b.err && a.dev == b.dev && a.ino == b.ino &&
		a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.size == b.size &&
		a.mtime == b.mtime && a.ctime == b.ctime
}

// regular reports whether the stamp is of an existing regular file.
func (a *fileStamp) regular() bool { return a.err == "" && a.mode&syscall.S_IFMT == syscall.S_IFREG }

// racy reports whether the file may still change without a stat field
// changing, seen from a stamp taken at at.
func (a *fileStamp) racy(at time.Time) bool {
	return a.err == "" && a.ctime >= at.Add(-racyWindow).UnixNano()
}

// statFile stamps one file (no digest).
func statFile(k watchKey) fileStamp {
	var st syscall.Stat_t
	var err error
	if k.nofollow {
		err = syscall.Lstat(k.name, &st)
	} else {
		err = syscall.Stat(k.name, &st)
	}
	if err != nil {
		return fileStamp{key: k, err: err.Error()}
	}
	f := fileStamp{key: k, dev: st.Dev, ino: st.Ino, mode: st.Mode, uid: st.Uid, gid: st.Gid}
	if k.nofollow && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		// A seccomp file's directory: what the loader checks is its
		// owner and mode (and that it is this directory); the file has
		// its own stamp, so other files coming and going there do not
		// reload.
		return f
	}
	f.size, f.mtime, f.ctime = st.Size, st.Mtim.Nano(), st.Ctim.Nano()
	return f
}

// digest reads a regular file's content digest; a file that cannot be read
// gets the digest of nothing.
func digest(k watchKey) [sha256.Size]byte {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
	if k.nofollow {
		flags |= syscall.O_NOFOLLOW
	}
	h := sha256.New()
	if f, err := os.OpenFile(k.name, flags, 0); err == nil {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			_, _ = io.Copy(h, io.LimitReader(f, maxStampRead))
		}
		f.Close()
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// find returns the stamp of a key, or nil.
func (p *policyStamp) find(k watchKey) *fileStamp {
	if p == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(p.files, k, func(f fileStamp, k watchKey) int { return f.key.compare(k) })
	if !ok {
		return nil
	}
	return &p.files[i]
}

// equal reports whether nothing watched changed between p and q.
func (p *policyStamp) equal(q *policyStamp) bool {
	if p == nil || q == nil || len(p.files) != len(q.files) {
		return p == nil && q == nil
	}
	for i := range p.files {
		a, b := &p.files[i], &q.files[i]
		if a.stale || b.stale || !a.sameStat(b) || (a.hasSum && b.hasSum && a.sum != b.sum) {
			return false
		}
	}
	return true
}

// trim drops the digests of the files no longer racy.
func (p *policyStamp) trim() *policyStamp {
	for i := range p.files {
		if f := &p.files[i]; f.hasSum && !f.racy(p.at) {
			f.hasSum, f.sum = false, [sha256.Size]byte{}
		}
	}
	return p
}

// watchList is every path the poller watches now: the policy files, the
// serving set's and the last rejected load's seccomp files and their
// directories (see the top of this file).
func (s *Server) watchList() []watchKey {
	if s.embeddedPolicy() {
		return nil
	}
	keys := []watchKey{{name: s.cfg.Policy}}
	if st, err := os.Stat(s.cfg.Policy); err == nil && st.IsDir() {
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(s.cfg.Policy, pat))
			for _, n := range m {
				keys = append(keys, watchKey{name: n})
			}
		}
	}
	seccomp := s.rejectedSeccomp
	if set := s.currentPolicy(); set != nil {
		for _, n := range set.Files() {
			keys = append(keys, watchKey{name: n})
		}
		seccomp = append(slices.Clip(seccomp), set.SeccompFiles()...)
	}
	for _, n := range seccomp {
		keys = append(keys, watchKey{name: n, nofollow: true}, watchKey{name: filepath.Dir(n), nofollow: true})
	}
	slices.SortFunc(keys, watchKey.compare)
	return slices.Compact(keys)
}

// stampPolicy stamps every watched file. A racy file's content is
// digested too, and so is a file prev holds a digest of (to compare it).
func (s *Server) stampPolicy(prev *policyStamp) *policyStamp {
	keys := s.watchList()
	out := &policyStamp{at: time.Now(), files: make([]fileStamp, 0, len(keys))}
	for _, k := range keys {
		f := statFile(k)
		if f.regular() {
			if old := prev.find(k); f.racy(out.at) || (old != nil && old.hasSum) {
				f.sum, f.hasSum = digest(k), true
			}
		}
		out.files = append(out.files, f)
	}
	return out
}

// stampAfterLoad is the stamp that stands after a load: pre, taken before
// the load began, for every file it holds, so an edit made while the load
// read the files shows at the next poll. A file the load made watched
// (a seccomp file a new profile names, a file of a rejected load's
// bad_seccomp error) is stamped now: a seccomp file of set whose content
// is still what set carries gets its digest; any other such file changed
// since the load began (ctime within racyWindow of it) is stale, so the
// next poll reloads once more (the directory of a carried file is not:
// the file's digest vouches for the content).
func (s *Server) stampAfterLoad(pre *policyStamp, set *policy.Set) *policyStamp {
	carried, carriedDirs := map[string][]byte{}, map[string]bool{}
	if set != nil {
		for _, p := range set.Profiles() {
			if p.SeccompFile != "" {
				carried[p.SeccompFile] = p.SeccompData
				carriedDirs[filepath.Dir(p.SeccompFile)] = true
			}
		}
	}
	keys := s.watchList()
	out := &policyStamp{at: pre.at, files: make([]fileStamp, 0, len(keys))}
	for _, k := range keys {
		if f := pre.find(k); f != nil {
			out.files = append(out.files, *f)
			continue
		}
		f := statFile(k)
		data, ok := carried[k.name]
		switch {
		case ok && k.nofollow:
			if !f.regular() {
				f.stale = true
			} else if sum := digest(k); bytes.Equal(sum[:], sha256Of(data)) {
				f.sum, f.hasSum = sum, true
			} else {
				f.stale = true
			}
		case k.nofollow && carriedDirs[k.name]:
			// The file's digest vouches for what the set carries; a
			// later change of the directory shows at the next poll.
		case f.racy(pre.at):
			f.stale = true
		}
		out.files = append(out.files, f)
	}
	return out.trim()
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

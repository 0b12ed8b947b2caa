package policy

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// A path argument is checked in two steps. Lexically, inside the sandbox
// view: it is joined to the working directory, must start (by components)
// with the target of one of the allowed roots, and no ".." may climb above
// that root. Then on the host: the rest is opened beneath the root's host
// directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so the
// kernel resolves every symlink and ".." and refuses (EXDEV) any that leave
// the root, relative or absolute. An escape is path_outside_root, never
// clamped. The check is advisory: the sandbox mounts are the boundary.

// splitComps splits a slash path into components, dropping "" and ".".
func splitComps(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// locate finds the root (among names) that holds p (relative to cwd) and
// the components below its target; ".." may not climb above the target.
func (d *decider) locate(p string, names []string) (*Root, []string, bool) {
	var comps []string
	if !strings.HasPrefix(p, "/") {
		comps = splitComps(d.cwd)
	}
	comps = append(comps, splitComps(p)...)
	for _, n := range names {
		r := d.s.roots[n]
		if r == nil {
			continue
		}
		tc := splitComps(r.Target)
		if len(comps) < len(tc) || !equalComps(comps[:len(tc)], tc) {
			continue
		}
		rel := comps[len(tc):]
		depth := 0
		for _, c := range rel {
			if c == ".." {
				depth--
			} else {
				depth++
			}
			if depth < 0 {
				return r, nil, false
			}
		}
		return r, rel, true
	}
	return nil, nil, false
}

func equalComps(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hostDir is a root's host directory for this decision's subject.
func (d *decider) hostDir(r *Root) string {
	if r.Workspace {
		return strings.Replace(r.Host, subPlaceholder, d.subject, 1)
	}
	return r.Host
}

// checkPath validates a path against roots; wantDir requires a directory.
func (d *decider) checkPath(p string, roots []string, mustExist, wantDir bool) (ReasonCode, string) {
	if p == "" {
		return ReasonBadArgument, "empty path"
	}
	r, rel, ok := d.locate(p, roots)
	if !ok {
		return ReasonPathOutsideRoot, "path is not inside an allowed root"
	}
	if namesGitDir(rel) {
		return ReasonBadArgument, "path names a .git directory or file"
	}
	rfd, err := d.rootFD(d.hostDir(r))
	if err != nil {
		return missingRoot(r, rel, mustExist, err)
	}
	return hostCheck(rfd, rel, mustExist, wantDir)
}

// namesGitDir reports whether any component of a path below its root is
// ".git" (in any letter case). A file tool that may write there (or create
// a ".git" file pointing elsewhere) can give a repository a configuration
// that makes git run programs (diff.external, textconv and filter drivers,
// gpg.program...), and one that may read there can copy git's own files
// (COMMIT_EDITMSG holds whatever a commit message said) to where they become
// one. git finds its directory itself; no path argument needs to name it.
func namesGitDir(rel []string) bool {
	for _, c := range rel {
		if len(c) == 4 && strings.EqualFold(c, ".git") {
			return true
		}
	}
	return false
}

// missingRoot decides a path under a root whose host directory cannot be
// opened. A subject's workspace does not exist before its first run (the
// sandbox creates it): it is then empty, so a new entry directly in it may
// be named, and nothing else exists.
func missingRoot(r *Root, rel []string, mustExist bool, err error) (ReasonCode, string) {
	if r.Workspace && errors.Is(err, unix.ENOENT) && !mustExist && len(rel) == 1 && rel[0] != ".." {
		return "", ""
	}
	return ReasonPathNotFound, "root directory is missing"
}

// rootFD opens a root's host directory once per decision (O_PATH); the
// decider closes every one when the decision is made.
func (d *decider) rootFD(host string) (int, error) {
	for _, o := range d.openRoots {
		if o.host == host {
			return o.fd, nil
		}
	}
	fd, err := unix.Open(host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	d.openRoots = append(d.openRoots, openRoot{host: host, fd: fd})
	return fd, nil
}

type openRoot struct {
	host string
	fd   int
}

func (d *decider) closeRoots() {
	for _, o := range d.openRoots {
		unix.Close(o.fd)
	}
	d.openRoots = nil
}

// hostCheck opens rel beneath the root directory rfd on the host.
func hostCheck(rfd int, rel []string, mustExist, wantDir bool) (ReasonCode, string) {
	err := openBeneath(rfd, rel, wantDir)
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return ReasonPathOutsideRoot, "path resolves outside its root"
	case (errors.Is(err, unix.ENOENT)) && !mustExist && len(rel) > 0:
		if perr := openBeneath(rfd, rel[:len(rel)-1], true); perr != nil {
			if errors.Is(perr, unix.EXDEV) || errors.Is(perr, unix.ELOOP) {
				return ReasonPathOutsideRoot, "path resolves outside its root"
			}
			return ReasonPathNotFound, "parent directory does not exist"
		}
		return "", ""
	case errors.Is(err, unix.ENOTDIR) && wantDir:
		return ReasonPathNotFound, "not a directory"
	}
	return ReasonPathNotFound, "path does not exist"
}

func openBeneath(rfd int, rel []string, wantDir bool) error {
	p := strings.Join(rel, "/")
	if p == "" {
		p = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	if wantDir {
		how.Flags |= unix.O_DIRECTORY
	}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(rfd, p, &how)
		if err == nil {
			unix.Close(fd)
			return nil
		}
		if !errors.Is(err, unix.EAGAIN) || try >= 3 {
			return err
		}
	}
}

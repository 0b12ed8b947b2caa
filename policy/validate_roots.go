package policy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
)

// subPlaceholder is the subject placeholder of a workspace template.
const subPlaceholder = "{sub}"

// statePlaceholder, as the leading component of a root's host path, stands
// for LoadOptions.StateDir.
const statePlaceholder = "{state}"

// expandStateDirs replaces a leading {state} in every root's host path.
func (l *loader) expandStateDirs() {
	for _, name := range sortedKeys(l.roots) {
		d := l.roots[name]
		h := d.v.Host
		if h != statePlaceholder && !strings.HasPrefix(h, statePlaceholder+"/") {
			continue
		}
		sd := l.opts.StateDir
		if sd == "" || !isAbsClean(sd) {
			l.errAt(d.pf, d.path+".host", CodeBadRoot, "%s needs an absolute, clean state directory (LoadOptions.StateDir)", statePlaceholder)
			continue
		}
		d.v.Host = sd + strings.TrimPrefix(h, statePlaceholder)
	}
}

// sensitiveHostDirs may neither be a root nor lie inside one, nor contain
// one. /run (and /var/run) hold the sockets of docker, containerd, D-Bus and
// systemd, which a read-only mount does not protect: connect() works
// through it. The container runtimes' state holds other containers' files.
var sensitiveHostDirs = []string{"/etc", "/root", "/proc", "/sys", "/dev", "/boot",
	"/run", "/var/run", "/var/lib/docker", "/var/lib/containerd"}

// reservedTargets are sandbox paths a root target may not cover or shadow.
var reservedTargets = []string{"/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/tmp", "/run"}

// workspaceParent returns the directory holding every workspace: the
// template's components before {sub}.
func workspaceParent(tmpl string) string {
	i := strings.Index(tmpl, "/"+subPlaceholder)
	if i <= 0 {
		return "/"
	}
	return tmpl[:i]
}

// checkRoots: paths are absolute and clean, the workspace template is sound,
// no root covers a sensitive host path, targets do not collide.
func (l *loader) checkRoots() {
	l.expandStateDirs()
	var wsParent string
	var wsCount int
	for _, name := range sortedKeys(l.roots) {
		d := l.roots[name]
		if d.v.Workspace {
			wsCount++
			if wsCount > 1 {
				l.errAt(d.pf, d.path+".workspace", CodeBadRoot, "only one root may be the workspace")
			}
			if l.checkWorkspaceTemplate(d) {
				wsParent = workspaceParent(d.v.Host)
			}
		}
	}
	for _, name := range sortedKeys(l.roots) {
		d := l.roots[name]
		if !d.v.Workspace {
			l.checkSharedRoot(d, wsParent)
		}
		l.checkTarget(d)
	}
}

func (l *loader) checkWorkspaceTemplate(d *decl[*FileRoot]) bool {
	h := d.v.Host
	parts := strings.Split(h, "/")
	n := 0
	for _, p := range parts {
		if p == subPlaceholder {
			n++
		} else if strings.Contains(p, "{") || strings.Contains(p, "}") {
			n = 99
		}
	}
	if n != 1 || !isAbsClean(h) {
		l.errAt(d.pf, d.path+".host", CodeBadRoot, "workspace host %q must be an absolute clean path with %s as exactly one whole component", h, subPlaceholder)
		return false
	}
	if d.v.ReadOnly != nil && *d.v.ReadOnly {
		l.errAt(d.pf, d.path+".readonly", CodeBadRoot, "the workspace is always writable")
	}
	parent := workspaceParent(h)
	if parent == "/" {
		l.errAt(d.pf, d.path+".host", CodeSensitiveRoot, "workspaces may not live directly under /")
		return false
	}
	l.checkSensitive(d, parent, "the workspace parent")
	return true
}

func (l *loader) checkSharedRoot(d *decl[*FileRoot], wsParent string) {
	h := d.v.Host
	if !isAbsClean(h) || strings.Contains(h, "{") || strings.Contains(h, "}") {
		l.errAt(d.pf, d.path+".host", CodeBadRoot, "host %q must be an absolute clean path without placeholders", h)
		return
	}
	if h == "/" {
		l.errAt(d.pf, d.path+".host", CodeSensitiveRoot, "a root may not be /")
		return
	}
	l.checkSensitive(d, h, "root")
	if wsParent != "" && anyOverlap(hostForms(h), hostForms(wsParent)) {
		l.errAt(d.pf, d.path+".host", CodeSensitiveRoot, "root %q overlaps the workspaces directory %s", h, wsParent)
	}
	if st, err := os.Stat(h); err == nil && !st.IsDir() {
		l.errAt(d.pf, d.path+".host", CodeBadRoot, "root host %q is not a directory", h)
	}
}

func (l *loader) checkSensitive(d *decl[*FileRoot], h, what string) {
	forms := hostForms(h)
	for _, f := range forms {
		for _, s := range sensitiveHostDirs {
			if overlaps(f, s) {
				l.errAt(d.pf, d.path+".host", CodeSensitiveRoot, "%s %q overlaps the sensitive host path %s%s", what, h, s, resolvedNote(h, f))
				return
			}
		}
	}
	sd := l.opts.StateDir
	if sd == "" {
		return
	}
	for _, f := range forms {
		for _, sf := range hostForms(path.Clean(sd)) {
			if within(sf, f) {
				l.errAt(d.pf, d.path+".host", CodeSensitiveRoot, "%s %q contains the gateway state directory %s%s", what, h, sd, resolvedNote(h, f))
				return
			}
		}
	}
}

func (l *loader) checkTarget(d *decl[*FileRoot]) {
	t := d.v.Target
	if !isAbsClean(t) || t == "/" {
		l.errAt(d.pf, d.path+".target", CodeBadRoot, "target %q must be an absolute clean path other than /", t)
		return
	}
	for _, r := range reservedTargets {
		if overlaps(t, r) {
			l.errAt(d.pf, d.path+".target", CodeBadRoot, "target %q overlaps the sandbox system path %s", t, r)
			return
		}
	}
	for _, other := range sortedKeys(l.roots) {
		o := l.roots[other]
		if other < d.name && isAbsClean(o.v.Target) && overlaps(t, o.v.Target) {
			l.errAt(d.pf, d.path+".target", CodeBadRoot, "target %q overlaps the target of root %q", t, other)
		}
	}
}

// checkProfiles: inherits chains resolve without cycles, enums and mounts
// are valid.
func (l *loader) checkProfiles() {
	for _, name := range sortedKeys(l.profiles) {
		d := l.profiles[name]
		p := d.v
		if p.Inherits != "" {
			if _, ok := l.profiles[p.Inherits]; !ok {
				l.errAt(d.pf, d.path+".inherits", CodeUndefinedProfile, "profile %q inherits undeclared profile %q", name, p.Inherits)
			} else if l.profileCycle(name) {
				l.errAt(d.pf, d.path+".inherits", CodeProfileCycle, "profile %q inherits itself", name)
			}
		}
		if p.Network != nil && *p.Network != string(NetworkNone) && *p.Network != string(NetworkLoopback) {
			l.errAt(d.pf, d.path+".network", CodeBadValue, "network must be none or loopback, got %q", *p.Network)
		}
		if p.Seccomp != nil {
			l.checkSeccomp(d, *p.Seccomp)
		}
		l.checkProfileNumbers(d)
		for i, m := range p.Mounts {
			if _, ok := l.roots[m]; !ok {
				l.errAt(d.pf, fmt.Sprintf("%s.mounts[%d]", d.path, i), CodeUndefinedRoot, "root %q is not declared", m)
			}
		}
	}
}

func (l *loader) profileCycle(name string) bool {
	seen := map[string]bool{}
	for cur := name; cur != ""; {
		if seen[cur] {
			return true
		}
		seen[cur] = true
		d, ok := l.profiles[cur]
		if !ok {
			return false
		}
		cur = d.v.Inherits
	}
	return false
}

func (l *loader) checkSeccomp(d *decl[*FileProfile], s string) {
	if s == "default" || s == "strict" {
		return
	}
	if !isAbsClean(s) {
		l.errAt(d.pf, d.path+".seccomp", CodeBadSeccomp, "seccomp must be default, strict or an absolute file path, got %q", s)
		return
	}
	sf := l.seccompFile(s)
	n := len(l.errs)
	switch {
	case errors.Is(sf.readErr, ErrSeccompFileNotFound):
		l.errAt(d.pf, d.path+".seccomp", CodeBadSeccomp, "seccomp profile file %q does not exist", s)
	case sf.readErr != nil:
		l.errAt(d.pf, d.path+".seccomp", CodeBadSeccomp, "seccomp profile file %q: %s", s, oneLine(sf.readErr))
	case sf.checkErr != nil:
		l.errAt(d.pf, d.path+".seccomp", CodeBadSeccomp, "seccomp profile file %q: %s", s, oneLine(sf.checkErr))
	}
	for _, e := range l.errs[n:] {
		e.SeccompFile = s
	}
}

// seccompFileData is one custom seccomp file as the loader read it.
type seccompFileData struct {
	data     []byte
	readErr  error // ReadSeccompFile
	checkErr error // LoadOptions.CheckSeccompFile
}

// seccompFile reads (ReadSeccompFile) and checks (LoadOptions.
// CheckSeccompFile) a custom seccomp file once per load: every profile
// naming it gets the same bytes, the ones the set carries to the sandbox.
func (l *loader) seccompFile(name string) *seccompFileData {
	if sf, ok := l.seccompFiles[name]; ok {
		return sf
	}
	sf := &seccompFileData{}
	sf.data, sf.readErr = ReadSeccompFile(name)
	if sf.readErr == nil && l.opts.CheckSeccompFile != nil {
		sf.checkErr = l.opts.CheckSeccompFile(sf.data)
	}
	if l.seccompFiles == nil {
		l.seccompFiles = map[string]*seccompFileData{}
	}
	l.seccompFiles[name] = sf
	return sf
}

// oneLine joins the lines of an error (a joined error lists each problem
// on its own line) with "; ".
func oneLine(err error) string {
	return strings.Join(strings.Split(strings.TrimSpace(err.Error()), "\n"), "; ")
}

func (l *loader) checkProfileNumbers(d *decl[*FileProfile]) {
	p := d.v
	bad := func(key, msg string) { l.errAt(d.pf, d.path+"."+key, CodeBadValue, "%s", msg) }
	if p.Timeout != nil && *p.Timeout <= 0 {
		bad("timeout", "timeout must be positive")
	}
	if p.Memory != nil && *p.Memory < 4<<20 {
		bad("memory", "memory must be at least 4MiB")
	}
	if p.Pids != nil && *p.Pids < 1 {
		bad("pids", "pids must be at least 1")
	}
	if p.CPUShares != nil && (*p.CPUShares < 2 || *p.CPUShares > 262144) {
		bad("cpu_shares", "cpu_shares must be between 2 and 262144")
	}
	if p.CPUQuota != nil && (*p.CPUQuota < 0.01 || *p.CPUQuota > 1024) {
		bad("cpu_quota", "cpu_quota must be between 0.01 and 1024")
	}
	if p.CPUSeconds != nil && *p.CPUSeconds < 1 {
		bad("cpu_seconds", "cpu_seconds must be at least 1")
	}
	if p.OpenFiles != nil && *p.OpenFiles < 8 {
		bad("open_files", "open_files must be at least 8")
	}
	if p.MaxOutput != nil && *p.MaxOutput < 1 {
		bad("max_output", "max_output must be at least 1 byte")
	}
	if p.Tmpfs != nil && *p.Tmpfs < 1 {
		bad("tmpfs", "tmpfs must be at least 1 byte")
	}
	if p.FileSize != nil && *p.FileSize < 1 {
		bad("file_size", "file_size must be at least 1 byte")
	}
}

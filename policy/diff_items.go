package policy

import (
	"bytes"
	"strings"
)

// This file holds the value, profile, root and role comparisons of Diff.

// value compares two value types of the same flag or positional.
func (d *differ) value(id, what string, o, n Value) {
	if o.Type != n.Type {
		k := Changed
		switch {
		case n.Type == TypeText:
			k = Loosened
		case o.Type == TypeText:
			k = Tightened
		}
		d.add(k, id, "%s %s -> %s", what, describeValue(o), describeValue(n))
		return
	}
	switch n.Type {
	case TypeInt:
		d.intBound(id, what+" min", o.Min, n.Min, true)
		d.intBound(id, what+" max", o.Max, n.Max, false)
	case TypeEnum:
		d.members(id, what+" enum value", o.Values, n.Values, Loosened)
	case TypeRegex:
		if o.Pattern != n.Pattern {
			d.add(Changed, id, "%s pattern %q -> %q", what, o.Pattern, n.Pattern)
		}
	case TypePath:
		d.members(id, what+" root", o.Roots, n.Roots, Loosened)
		if o.MustExist != n.MustExist {
			if n.MustExist {
				d.add(Tightened, id, "%s must now exist", what)
			} else {
				d.add(Loosened, id, "%s no longer needs to exist", what)
			}
		}
	case TypeText:
		d.num(id, what+" max_len", int64(o.MaxLen), int64(n.MaxLen), false, intText)
		if o.Multiline != n.Multiline {
			if n.Multiline {
				d.add(Loosened, id, "%s may now span lines", what)
			} else {
				d.add(Tightened, id, "%s may no longer span lines", what)
			}
		}
	}
}

func (d *differ) profiles() {
	for _, op := range d.old.Profiles() {
		if _, ok := d.new.Profile(op.Name); !ok {
			d.add(Changed, "profiles."+op.Name, "profile removed")
		}
	}
	for _, np := range d.new.Profiles() {
		id := "profiles." + np.Name
		op, ok := d.old.Profile(np.Name)
		if !ok {
			d.add(Changed, id, "new profile")
			continue
		}
		d.profileFields(id, op, np)
		d.members(id, "mount", d.old.ProfileMounts(np.Name), d.new.ProfileMounts(np.Name), Loosened)
	}
}

// profileFields compares every limit of two profiles.
func (d *differ) profileFields(id string, o, n Profile) {
	dur := func(v int64) string { return Duration(v).String() }
	d.num(id, "timeout", int64(o.Timeout), int64(n.Timeout), false, dur)
	d.num(id, "kill_grace", int64(o.KillGrace), int64(n.KillGrace), false, dur)
	d.num(id, "memory", o.MemoryBytes, n.MemoryBytes, false, sizeText)
	d.num(id, "pids", o.Pids, n.Pids, false, intText)
	d.num(id, "cpu_shares", int64(o.CPUShares), int64(n.CPUShares), false, intText)
	if o.CPUQuota != n.CPUQuota {
		k := Tightened
		if n.CPUQuota > o.CPUQuota {
			k = Loosened
		}
		d.add(k, id, "cpu_quota %g -> %g", o.CPUQuota, n.CPUQuota)
	}
	d.num(id, "cpu_seconds", int64(o.CPUSeconds), int64(n.CPUSeconds), false, intText)
	d.num(id, "open_files", int64(o.OpenFiles), int64(n.OpenFiles), false, intText)
	d.num(id, "file_size", int64(min(o.FileSizeBytes, 1<<62)), int64(min(n.FileSizeBytes, 1<<62)), false, sizeText)
	d.num(id, "tmpfs", o.TmpfsBytes, n.TmpfsBytes, false, sizeText)
	d.num(id, "max_output", o.MaxOutputBytes, n.MaxOutputBytes, false, sizeText)
	d.num(id, "output_rate", o.OutputRate, n.OutputRate, true, sizeText)
	d.num(id, "workspace_size", o.WorkspaceBytes, n.WorkspaceBytes, true, sizeText)
	d.profileSwitches(id, o, n)
}

func (d *differ) profileSwitches(id string, o, n Profile) {
	if o.Network != n.Network {
		k := Changed
		switch {
		case o.Network == NetworkNone:
			k = Loosened
		case n.Network == NetworkNone:
			k = Tightened
		}
		d.add(k, id, "network %s -> %s", o.Network, n.Network)
	}
	d.flagBool(id, "terminal (tty)", o.TTY, n.TTY)
	d.flagBool(id, "keep running past the output cap", o.KeepOnOutputCap, n.KeepOnOutputCap)
	d.flagBool(id, "noexec on writable mounts", !o.NoExecWork, !n.NoExecWork) // enabling exec loosens
	if o.Untrusted != n.Untrusted {
		d.add(Changed, id, "untrusted %t -> %t (strict lints allow interpreters only in untrusted profiles)", o.Untrusted, n.Untrusted)
	}
	if o.Umask != n.Umask {
		dropped, added := o.Umask&^n.Umask, n.Umask&^o.Umask
		k := Changed
		switch {
		case dropped != 0 && added == 0:
			k = Loosened
		case added != 0 && dropped == 0:
			k = Tightened
		}
		d.add(k, id, "umask %s -> %s", Umask(o.Umask), Umask(n.Umask))
	}
	if o.Seccomp != n.Seccomp || o.SeccompFile != n.SeccompFile {
		k := Changed
		switch {
		case o.Seccomp == "strict" && n.Seccomp == "default":
			k = Loosened
		case o.Seccomp == "default" && n.Seccomp == "strict":
			k = Tightened
		}
		d.add(k, id, "seccomp %s -> %s", seccompText(o), seccompText(n))
	} else if o.SeccompFile != "" && !bytes.Equal(o.SeccompData, n.SeccompData) {
		// The same file, edited: the allowlist changed.
		d.add(Changed, id, "seccomp file %s content changed (sha256 %s -> %s)", o.SeccompFile, shortSHA(o.SeccompData), shortSHA(n.SeccompData))
	}
	d.ids(id, "uid", o.UID, n.UID)
	d.ids(id, "gid", o.GID, n.GID)
}

func (d *differ) roots() {
	oldRoots, newRoots := map[string]*Root{}, map[string]*Root{}
	for _, r := range d.old.Roots() {
		oldRoots[r.Name] = r
	}
	for _, r := range d.new.Roots() {
		newRoots[r.Name] = r
	}
	for _, or := range d.old.Roots() {
		if newRoots[or.Name] == nil {
			d.add(Tightened, "roots."+or.Name, "root removed (%s)", or.Host)
		}
	}
	for _, nr := range d.new.Roots() {
		id := "roots." + nr.Name
		or := oldRoots[nr.Name]
		if or == nil {
			d.add(Loosened, id, "new root %s at %s (%s)", nr.Host, nr.Target, rootMode(nr))
			continue
		}
		if or.Host != nr.Host {
			d.add(Changed, id, "host %s -> %s", or.Host, nr.Host)
		}
		if or.Target != nr.Target {
			d.add(Changed, id, "target %s -> %s", or.Target, nr.Target)
		}
		if or.Workspace != nr.Workspace {
			d.add(Changed, id, "workspace %t -> %t", or.Workspace, nr.Workspace)
		}
		d.flagBool(id, "writable", !or.ReadOnly, !nr.ReadOnly)
	}
}

func (d *differ) roles() {
	for _, or := range d.old.Roles() {
		if !hasRole(d.new, or.Name) {
			d.add(Changed, "roles."+or.Name, "role removed")
		}
	}
	for _, nr := range d.new.Roles() {
		id := "roles." + nr.Name
		var or *Role
		for _, r := range d.old.Roles() {
			if r.Name == nr.Name {
				or = r
			}
		}
		if or == nil {
			d.add(Changed, id, "new role (includes [%s], permissions [%s])", strings.Join(nr.Includes, ", "), strings.Join(nr.Permissions, ", "))
			for _, p := range nr.Permissions {
				d.add(Loosened, id, "permission %s granted", p)
			}
			continue
		}
		d.members(id, "included role", or.Closure, nr.Closure, Loosened)
		d.members(id, "permission", or.Permissions, nr.Permissions, Loosened)
	}
}

package policy

import "time"

// Every default of the policy model is set here and only here. Each states
// its value and its security effect.
const (
	// DefaultMaxArgBytes bounds one argument (4 KiB): long enough for real
	// paths and patterns, short enough to stop buffer-abuse payloads.
	DefaultMaxArgBytes = 4 << 10
	// DefaultMaxArgs bounds the argument count (64): stops argv flooding.
	DefaultMaxArgs = 64
	// DefaultMaxTotalBytes bounds all arguments together (64 KiB).
	DefaultMaxTotalBytes = 64 << 10
	// DefaultEndOfOptions: no marker is inserted unless the policy asks,
	// so a positional starting with "-" is rejected (it could act as a flag).
	DefaultEndOfOptions = ""
	// DefaultOrder puts flags before positionals (GNU getopt order).
	DefaultOrder = OrderFlagsFirst
	// DefaultPathMustExist: path arguments must exist unless the policy
	// says otherwise (fewer surprises, earlier path_not_found).
	DefaultPathMustExist = true
	// DefaultSubjectPattern is the only subject form accepted in a
	// workspace template; anything else is bad_subject.
	DefaultSubjectPattern = `^[A-Za-z0-9._-]{1,64}$`
	// DefaultSharedRootReadOnly: a root other than the workspace is
	// mounted read-only unless the policy says readonly: false (a strict
	// lint warns about that).
	DefaultSharedRootReadOnly = true
	// DefaultFlagType: a flag without a type takes no value, so a value
	// can never sneak in through "--flag=value".
	DefaultFlagType = TypeNone
	// DefaultBundle and DefaultPrefixMatch: off, so only exact spellings
	// pass unless the policy models the program's getopt behaviour.
	DefaultBundle      = false
	DefaultPrefixMatch = false
)

// defaultForms are the value forms a flag accepts when it lists none:
// every form its names can take (-fv for a one-letter name, --f=v for a
// long name, and the separate form). The final argv always uses one
// canonical form, so accepting every spelling widens nothing.
func defaultForms(names []string) []string {
	var short, long bool
	for _, n := range names {
		short = short || len(n) == 2 && n[0] == '-' && n[1] != '-'
		long = long || len(n) > 2 && n[:2] == "--"
	}
	forms := make([]string, 0, 3)
	if short {
		forms = append(forms, FormAttached)
	}
	if long {
		forms = append(forms, FormEquals)
	}
	return append(forms, FormSeparate)
}

// Other derived defaults, applied in compile.go: a text value's max_len
// is the argument limit; positionals default to min 0 and max len(items),
// or the argument-count limit when rest is set; a command without cwd has
// "/" as working directory (relative paths then lie in no root).

// defaultProfile is the base every profile starts from. Conservative: a
// profile that sets nothing gets a small, networkless, TTY-less sandbox.
func defaultProfile() Profile {
	return Profile{
		Timeout:         30 * time.Second, // a run ends after 30s (TERM)
		KillGrace:       2 * time.Second,  // then KILL 2s later
		MemoryBytes:     256 << 20,        // 256 MiB, no swap: caps memory abuse
		Pids:            64,               // stops fork bombs
		CPUShares:       1024,             // equal weight with other runs
		CPUQuota:        1.0,              // at most one core
		CPUSeconds:      60,               // RLIMIT_CPU: bounds CPU burn
		OpenFiles:       256,              // RLIMIT_NOFILE
		FileSizeBytes:   64 << 20,         // RLIMIT_FSIZE: no file over 64 MiB
		TmpfsBytes:      64 << 20,         // /tmp is a 64 MiB tmpfs
		Umask:           0o077,            // files private to the sandbox user
		MaxOutputBytes:  1 << 20,          // 1 MiB of output, then the run is killed
		OutputRate:      0,                // no rate limit beyond the cap
		KeepOnOutputCap: false,            // kill at the cap (no silent truncation)
		Network:         NetworkNone,      // no network at all
		TTY:             false,            // no terminal unless a profile allows it
		NoExecWork:      true,             // nothing written can be executed
		WorkspaceBytes:  0,                // no workspace size cap by default
		Seccomp:         "default",        // the default seccomp filter
		UID:             65534,            // nobody
		GID:             65534,            // nogroup
	}
}

// defaultLimits are the global sanitization bounds.
func defaultLimits() Limits {
	return Limits{MaxArgBytes: DefaultMaxArgBytes, MaxArgs: DefaultMaxArgs, MaxTotalBytes: DefaultMaxTotalBytes}
}

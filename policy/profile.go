package policy

import "time"

// Network says what network a sandbox gets.
type Network string

const (
	// NetworkNone gives the sandbox a network namespace whose only
	// interface, loopback, is down.
	NetworkNone Network = "none"
	// NetworkLoopback gives the sandbox a network namespace with loopback
	// up and nothing else.
	NetworkLoopback Network = "loopback"
)

// Profile is a compiled sandbox profile: every limit a run is held to. The
// sandbox package consumes it as is. All fields are set (defaults are applied
// in one place by the loader); zero values never mean "unlimited".
type Profile struct {
	// Name is the profile's name in the policy.
	Name string `json:"name"`
	// Untrusted marks a profile meant for running untrusted code
	// (interpreters, shells); the strict linter allows such commands only here.
	Untrusted bool `json:"untrusted"`

	Timeout   time.Duration `json:"timeout"`    // wall clock, then TERM
	KillGrace time.Duration `json:"kill_grace"` // between TERM and KILL

	MemoryBytes   int64   `json:"memory_bytes"`    // cgroup memory limit, no swap
	Pids          int64   `json:"pids"`            // cgroup pids limit
	CPUShares     uint64  `json:"cpu_shares"`      // relative weight (v1 shares; mapped to v2 weight)
	CPUQuota      float64 `json:"cpu_quota"`       // CPUs, e.g. 0.5 = half a core (CFS quota)
	CPUSeconds    uint64  `json:"cpu_seconds"`     // RLIMIT_CPU
	OpenFiles     uint64  `json:"open_files"`      // RLIMIT_NOFILE
	FileSizeBytes uint64  `json:"file_size_bytes"` // RLIMIT_FSIZE
	TmpfsBytes    int64   `json:"tmpfs_bytes"`     // size of /tmp
	Umask         uint32  `json:"umask"`

	MaxOutputBytes  int64 `json:"max_output_bytes"`   // stdout+stderr cap
	OutputRate      int64 `json:"output_rate"`        // bytes per second, 0 = unlimited rate
	KeepOnOutputCap bool  `json:"keep_on_output_cap"` // discard past the cap instead of killing

	Network    Network `json:"network"`
	TTY        bool    `json:"tty"`         // whether a terminal may be requested
	NoExecWork bool    `json:"noexec_work"` // writable mounts (workspace, /tmp) are noexec

	WorkspaceBytes int64  `json:"workspace_bytes"`        // per-user workspace size cap, 0 = none
	Seccomp        string `json:"seccomp"`                // seccomp profile name: "default", "strict" or a custom one
	SeccompFile    string `json:"seccomp_file,omitempty"` // absolute path of a custom profile file
	// SeccompData is the content of SeccompFile as the loader read and
	// validated it (ReadSeccompFile, LoadOptions.CheckSeccompFile): the
	// sandbox compiles these bytes, never the file. It is part of Set.Hash
	// (as its SHA-256) but never encoded: not on the executor's wire, not
	// in a decision, not in the audit log. Do not modify it.
	SeccompData []byte `json:"-"`

	// UID and GID the command runs as inside the sandbox (65534 by default).
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

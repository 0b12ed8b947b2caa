package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/opencontainers/runc/libcontainer/configs"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// Names of the built-in seccomp profiles.
const (
	SeccompDefault = "default"
	SeccompStrict  = "strict"
)

// forbiddenSyscalls are never allowed, by any profile, custom ones
// included: namespace creation and entry, the mount family, tracing,
// eBPF, keyrings, userfaultfd, io_uring (its operations bypass seccomp),
// perf, kernel modules, kexec, reboot, swap, clock setting, raw port I/O,
// handle-based opens and quotas. They get the default action (EPERM).
var forbiddenSyscalls = []string{
	"unshare", "setns",
	"mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount",
	"move_mount", "open_tree", "fsconfig", "fspick", "mount_setattr",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"bpf", "keyctl", "add_key", "request_key", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"perf_event_open", "fanotify_init", "lookup_dcookie",
	"init_module", "finit_module", "delete_module", "create_module",
	"kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
	"acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
	"stime", "iopl", "ioperm", "open_by_handle_at", "name_to_handle_at",
	"quotactl", "quotactl_fd", "nfsservctl", "syslog", "sysfs", "uselib",
	"ustat", "vhangup", "vm86", "vm86old", "sethostname", "setdomainname",
	"_sysctl", "get_kernel_syms", "query_module", "personality32",
	"set_mempolicy", "mbind", "migrate_pages", "move_pages",
	"get_mempolicy", "set_mempolicy_home_node",
}

// Argument filters (see compileSeccomp).
const (
	// cloneNamespaceFlags is CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|
	// NEWNET|NEWCGROUP: clone is allowed only when none of them is set.
	cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	low32 = 0xFFFFFFFF
)

// allowedSocketFamilies may be passed to socket(2). AF_VSOCK, AF_ALG,
// AF_PACKET and all the others are refused. The compare is on the low 32
// bits (the kernel's int), so high bits cannot smuggle another family.
var allowedSocketFamilies = []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// allowedPersonalities are the personality(2) values Docker allows:
// PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE combinations, and the query.
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// deniedIoctls are refused with a masked 32-bit compare, so setting high
// bits in the (unsigned int) request does not get them through.
var deniedIoctls = []uint64{unix.TIOCSTI, unix.TIOCLINUX}

// SeccompFile is a custom seccomp profile file: a JSON object
//
//	{"allow": ["read", "write", ...]}
//
// listing the syscalls allowed; everything else fails with EPERM. The
// argument filters of the built-in profiles (clone, socket, socketpair,
// ioctl, personality) apply to those names here too, and the forbidden
// syscalls (mount, unshare, ptrace, bpf, ...) are refused.
type SeccompFile struct {
	Description string   `json:"description,omitempty"`
	Allow       []string `json:"allow"`
}

// ParseSeccompFile decodes and validates a custom profile. Its errors never
// quote the data, except a syscall name (escaped and shortened, see
// quoteName): a JSON error gives the byte offset only.
func ParseSeccompFile(data []byte) (*SeccompFile, error) {
	if len(data) > policy.MaxSeccompFileBytes {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrSeccompProfile, policy.MaxSeccompFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f SeccompFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrSeccompProfile, jsonErrorText(err, dec.InputOffset()))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrSeccompProfile)
	}
	if len(f.Allow) == 0 {
		return nil, fmt.Errorf("%w: \"allow\" is empty", ErrSeccompProfile)
	}
	if err := ValidateSyscallNames(f.Allow); err != nil {
		return nil, err
	}
	return &f, nil
}

// jsonErrorText describes a decode error by position and kind only:
// encoding/json's own text can quote the input (the offending character,
// an unknown key).
func jsonErrorText(err error, offset int64) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON (syntax error at byte %d); want {\"allow\": [\"read\", ...]}", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("a JSON value of the wrong type at byte %d; want {\"allow\": [\"read\", ...]}", typ.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON (unexpected end of the data)"
	}
	// DisallowUnknownFields' error names the key; the offset is just past it.
	return fmt.Sprintf("not a profile object (an unknown key before byte %d?); want only \"description\" and \"allow\"", offset)
}

// CheckSeccompProfile validates the content of a custom profile file as a
// run would: what ParseSeccompFile checks, and that the list lets the
// container's PID 1 run and supervise the command. The policy loader calls
// it through policy.LoadOptions.CheckSeccompFile (execgate policy check,
// serve's load and reload, execgate run) on the bytes it read with
// policy.ReadSeccompFile, the bytes the compiled profile carries to the
// Manager (policy.Profile.SeccompData), so a bad file is refused when the
// policy is loaded, not on every run.
func CheckSeccompProfile(data []byte) error {
	f, err := ParseSeccompFile(data)
	if err != nil {
		return err
	}
	return checkPID1Syscalls(f.Allow)
}

// maxNameErrors bounds the problems ValidateSyscallNames lists.
const maxNameErrors = 16

// quoteName quotes a name from a profile file for an error: %q-escaped,
// at most 64 bytes of it.
func quoteName(n string) string {
	const maxLen = 64
	if len(n) > maxLen {
		return fmt.Sprintf("%q...", n[:maxLen])
	}
	return fmt.Sprintf("%q", n)
}

// ValidateSyscallNames checks names against libseccomp's syscall table for
// the native architecture and against the forbidden list; duplicates are
// errors too. The error lists every bad name.
func ValidateSyscallNames(names []string) error {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return fmt.Errorf("%w: native architecture: %v", ErrSeccompProfile, err)
	}
	forbidden := make(map[string]bool, len(forbiddenSyscalls))
	for _, f := range forbiddenSyscalls {
		forbidden[f] = true
	}
	seen := make(map[string]bool, len(names))
	var errs []error
	bad := 0
	for _, n := range names {
		var err error
		switch {
		case seen[n]:
			err = fmt.Errorf("%s listed twice", quoteName(n))
		case forbidden[n]:
			err = fmt.Errorf("%s is never allowed", quoteName(n))
		default:
			// A negative number is one of libseccomp's pseudo-syscalls: a
			// name it knows for another architecture (socketcall, ipc, ...),
			// which no rule can match here.
			if nr, lerr := libseccomp.GetSyscallFromNameByArch(n, arch); lerr != nil || nr < 0 {
				hint := ""
				if len(n) <= 64 {
					hint = didYouMean(n, forbidden)
				}
				err = fmt.Errorf("%s is not a syscall known to libseccomp for %s%s", quoteName(n), arch, hint)
			}
		}
		seen[n] = true
		if err != nil {
			if bad++; bad <= maxNameErrors {
				errs = append(errs, err)
			}
		}
	}
	if bad > maxNameErrors {
		errs = append(errs, fmt.Errorf("and %d more bad names", bad-maxNameErrors))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrSeccompProfile, errors.Join(errs...))
	}
	return nil
}

// compileSeccomp turns an allowlist into its rules (in libcontainer's
// configs.Seccomp type; seccomp_bpf.go compiles them to the program the
// containers' PID 1 loads):
// default action EPERM, native architecture only (other architectures are
// killed by libseccomp's bad-arch action), argument filters on clone,
// socket, socketpair, ioctl and personality, and clone3 -> ENOSYS so glibc
// falls back to the filtered clone. Names unknown on this architecture and
// forbidden ones are dropped.
func compileSeccomp(allow []string) (*configs.Seccomp, error) {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	forbidden := make(map[string]bool, len(forbiddenSyscalls))
	for _, f := range forbiddenSyscalls {
		forbidden[f] = true
	}
	eperm := uint(unix.EPERM)
	sc := &configs.Seccomp{DefaultAction: configs.Errno, DefaultErrnoRet: &eperm}
	names := append([]string(nil), allow...)
	sort.Strings(names)
	for _, n := range names {
		if forbidden[n] {
			continue
		}
		if nr, err := libseccomp.GetSyscallFromNameByArch(n, arch); err != nil || nr < 0 {
			continue
		}
		sc.Syscalls = append(sc.Syscalls, syscallRules(n)...)
	}
	return sc, nil
}

// syscallRules returns the rules that allow one syscall.
func syscallRules(name string) []*configs.Syscall {
	switch name {
	case "clone3":
		enosys := uint(unix.ENOSYS)
		return []*configs.Syscall{{Name: name, Action: configs.Errno, ErrnoRet: &enosys}}
	case "clone":
		return []*configs.Syscall{{Name: name, Action: configs.Allow, Args: []*configs.Arg{
			{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: configs.MaskEqualTo},
		}}}
	case "socket":
		return maskedEqualRules(name, 0, allowedSocketFamilies)
	case "socketpair":
		return maskedEqualRules(name, 0, []uint64{unix.AF_UNIX})
	case "personality":
		return maskedEqualRules(name, 0, allowedPersonalities)
	case "ioctl":
		var rules []*configs.Syscall
		for _, mv := range complement32(deniedIoctls) {
			rules = append(rules, &configs.Syscall{Name: name, Action: configs.Allow, Args: []*configs.Arg{
				{Index: 1, Value: mv.mask, ValueTwo: mv.value, Op: configs.MaskEqualTo},
			}})
		}
		return rules
	}
	return []*configs.Syscall{{Name: name, Action: configs.Allow}}
}

// maskedEqualRules allows name when the low 32 bits of argument index equal
// one of values.
func maskedEqualRules(name string, index uint, values []uint64) []*configs.Syscall {
	rules := make([]*configs.Syscall, 0, len(values))
	for _, v := range values {
		rules = append(rules, &configs.Syscall{Name: name, Action: configs.Allow, Args: []*configs.Arg{
			{Index: index, Value: low32, ValueTwo: v, Op: configs.MaskEqualTo},
		}})
	}
	return rules
}

// maskValue is one masked compare: (arg & mask) == value.
type maskValue struct{ mask, value uint64 }

// complement32 returns masked compares on the low 32 bits whose union is
// every 32-bit value except those in excluded. libseccomp cannot combine an
// unconditional allow with a conditional deny (the allow wins, and a rule
// with the default action is dropped), so a deny of a few values is written
// as an allow of their complement: walk the binary trie of the excluded
// values and allow every subtree that holds none of them.
func complement32(excluded []uint64) []maskValue {
	var out []maskValue
	var walk func(depth uint, prefix uint64, set []uint64)
	walk = func(depth uint, prefix uint64, set []uint64) {
		if len(set) == 0 {
			var mask uint64
			if depth > 0 {
				mask = (low32 << (32 - depth)) & low32
			}
			out = append(out, maskValue{mask: mask, value: prefix})
			return
		}
		if depth == 32 {
			return // this exact value is excluded
		}
		bit := uint64(1) << (31 - depth)
		var zero, one []uint64
		for _, v := range set {
			if v&bit != 0 {
				one = append(one, v)
			} else {
				zero = append(zero, v)
			}
		}
		walk(depth+1, prefix, zero)
		walk(depth+1, prefix|bit, one)
	}
	low := make([]uint64, 0, len(excluded))
	for _, v := range excluded {
		low = append(low, v&low32)
	}
	walk(0, 0, low)
	return out
}

// nativeSyscallNames is every name in libseccomp's table for the native
// architecture (numbers 0-1023), for spelling hints.
var nativeSyscallNames = sync.OnceValue(func() []string {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil
	}
	var out []string
	for nr := range 1024 {
		if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil && n != "" {
			out = append(out, n)
		}
	}
	return out
})

// didYouMean returns ` (did you mean "x"?)` for the known syscall name
// closest to an unknown one (edit distance at most 2; never a forbidden
// name), else "".
func didYouMean(name string, forbidden map[string]bool) string {
	if name == "" {
		return ""
	}
	best, bestD := "", 3
	for _, n := range nativeSyscallNames() {
		if forbidden[n] {
			continue
		}
		// Ties go to the name that sorts first.
		if d := policy.EditDistance(name, n, bestD+1); d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

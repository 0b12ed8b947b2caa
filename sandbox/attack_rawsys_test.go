package sandbox

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/execgate/execgate/policy"
)

// attackExpect is the expected outcome of one "probe attacks" case:
// filter is the TRACE-probe answer, real the answer of the real call
// ("" = not checked).
type attackExpect struct{ filter, real string }

var (
	eperm  = attackExpect{"err:1", "err:1"}
	enosys = attackExpect{"err:38", "err:38"}
	allow  = attackExpect{"err:38", ""}
)

// attackCases are the expected outcomes of testdata/probe/attacks.h.
var attackCases = map[string]attackExpect{
	"unshare_newuser": eperm, "unshare_newns": eperm, "unshare_newnet": eperm,
	"unshare_newpid": eperm, "unshare_newcgroup": eperm, "unshare_newtime": eperm,
	"setns_uts":     eperm,
	"clone_newuser": eperm, "clone_newns": eperm, "clone_newnet": eperm, "clone_newpid": eperm,
	"clone3_plain": enosys, "clone3_newuser": enosys,
	"mount_tmpfs": eperm, "mount_remount_rw": eperm, "umount2_proc": eperm, "pivot_root": eperm,
	"chroot": eperm, "fsopen": eperm, "open_tree": eperm, "move_mount": eperm, "mount_setattr": eperm,
	"ptrace_traceme": eperm, "ptrace_seize_parent": eperm, "bpf_map_create": eperm,
	"keyctl_session": eperm, "add_key": eperm, "request_key": eperm, "userfaultfd": eperm,
	"io_uring_setup": eperm, "io_uring_enter": eperm, "io_uring_register": eperm,
	"perf_event_open": eperm, "socket_vsock": eperm, "socket_alg": eperm,
	"open_by_handle_at": eperm, "kexec_load": eperm, "init_module": eperm, "finit_module": eperm,
	"reboot": eperm, "iopl": eperm, "personality_read_implies_exec": eperm,
	"ioctl_tiocsti": eperm, "ioctl_tiocsti_hi": eperm, "ioctl_tiocsti_bit32": eperm,
	"ioctl_tioclinux": eperm, "ioctl_tioclinux_hi": eperm,
	"control_getpid": allow, "control_clone_plain": allow, "control_socket_unix": allow,
	"control_ioctl_fionread": allow,
}

// TestAttackRawSyscalls makes each hostile call with the arguments a real
// attacker would use (namespace flags, AF_VSOCK, TIOCSTI with high bits
// set, ...). The mount CLI is not used: it refuses before making the call
// (trap 13). Each case is a subtest; the whole set runs once without and
// once with a terminal (then fd 0 is a real pty, where TIOCSTI would
// inject input).
func TestAttackRawSyscalls(t *testing.T) {
	s := suite(t)
	for _, tty := range []bool{false, true} {
		t.Run(map[bool]string{false: "pipes", true: "tty"}[tty], func(t *testing.T) {
			o := runOpts{tty: tty, profile: func(p *policy.Profile) { p.TTY = tty }}
			out := s.run(t, o, s.probePath, "attacks")
			if out.err != nil || out.res.ExitCode != 0 {
				t.Fatalf("probe run failed: %v", out)
			}
			checkAttackCases(t, parseProbe(t, out.stdout))
		})
	}
}

func checkAttackCases(t *testing.T, got map[string]probeLine) {
	names := make([]string, 0, len(attackCases))
	for n := range attackCases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		want := attackCases[name]
		t.Run(name, func(t *testing.T) {
			l, ok := got[name]
			if !ok {
				t.Fatalf("probe did not report %s", name)
			}
			if l.filter != want.filter {
				t.Errorf("seccomp decision: got %s, want %s", l.filter, want.filter)
			}
			if want.real != "" && l.real != want.real {
				t.Errorf("real call: got %s, want %s", l.real, want.real)
			}
		})
	}
	for name := range got {
		if _, ok := attackCases[name]; !ok {
			t.Errorf("probe case %s has no expectation in attackCases", name)
		}
	}
}

// TestAttackForeignABI calls getpid through the i386 (int 0x80) and x32
// entry points: a native-only filter must kill the process (SIGSYS).
func TestAttackForeignABI(t *testing.T) {
	s := suite(t)
	out := s.run(t, runOpts{}, s.probePath, "abi")
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("probe run failed: %v", out)
	}
	got := parseProbe(t, out.stdout)
	want := "sig:" + strconv.Itoa(int(syscall.SIGSYS))
	for _, name := range []string{"int80_getpid", "x32_getpid"} {
		t.Run(name, func(t *testing.T) {
			if l := got[name]; l.real != want {
				t.Errorf("got %q, want %s (killed by SIGSYS)", l.real, want)
			}
		})
	}
}

// TestAttackCustomSeccomp checks the custom profile path: a file that
// allows a forbidden syscall is refused at Run, and a file listing the
// default profile's names gets the same argument filters and blocks (the
// hostile calls all fail as with "default").
func TestAttackCustomSeccomp(t *testing.T) {
	s := suite(t)
	// The content a policy's profile would carry (policy.Profile.SeccompData).
	write := func(name string, allow []string) []byte {
		b, err := json.Marshal(map[string]any{"allow": allow})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, forbidden := range []string{"mount", "unshare", "ptrace", "bpf", "io_uring_setup", "keyctl"} {
		t.Run("refuse "+forbidden, func(t *testing.T) {
			file := write(forbidden+".json", append(slices.Clone(defaultAllow), forbidden))
			o := runOpts{profile: func(p *policy.Profile) {
				p.Seccomp, p.SeccompFile, p.SeccompData = "custom-"+forbidden, "/etc/"+forbidden+".json", file
			}}
			out := s.run(t, o, "/bin/true")
			if out.err == nil || !errors.Is(out.err, ErrSeccompProfile) {
				t.Errorf("custom profile allowing %s: got %v, want ErrSeccompProfile", forbidden, out)
			}
		})
	}
	t.Run("same filters as default", func(t *testing.T) {
		file := write("like-default.json", defaultAllow)
		o := runOpts{profile: func(p *policy.Profile) {
			p.Seccomp, p.SeccompFile, p.SeccompData = "like-default", "/etc/like-default.json", file
		}}
		out := s.run(t, o, s.probePath, "attacks")
		if out.err != nil || out.res.ExitCode != 0 {
			t.Fatalf("probe run failed: %v", out)
		}
		checkAttackCases(t, parseProbe(t, out.stdout))
	})
}

package sandbox

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// syscallScript calls raw amd64 syscalls through ctypes and prints
// "name errno" (0 = allowed).
const syscallScript = `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(64)
def sc(nr, *a):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(x) for x in a])
    return 0 if r >= 0 else ctypes.get_errno()
p = ctypes.addressof(buf)
checks = [
    ("unshare_user", 272, 0x10000000),
    ("setns", 308, 0, 0),
    ("clone_newuser", 56, 0x10000000 | 17, 0, 0, 0, 0),
    ("clone3", 435, p, 88),
    ("mount", 165, 0, 0, 0, 0, 0),
    ("ptrace", 101, 0, 0, 0, 0),
    ("bpf", 321, 0, p, 0),
    ("keyctl", 250, 0, 0),
    ("userfaultfd", 323, 0),
    ("io_uring_setup", 425, 1, p),
    ("perf_event_open", 298, p, 0, -1 & 0xffffffff, -1 & 0xffffffff, 0),
    ("socket_vsock", 41, 40, 1, 0),
    ("socket_vsock_high", 41, (1 << 32) | 40, 1, 0),
    ("socket_alg", 41, 38, 5, 0),
    ("socket_unix", 41, 1, 1, 0),
    ("ioctl_tiocsti", 16, 0, 0x5412, p),
    ("ioctl_tiocsti_high", 16, 0, (1 << 32) | 0x5412, p),
    ("ioctl_tioclinux_high", 16, 0, (0xffff << 48) | 0x541C, p),
    ("ioctl_tcgets", 16, 0, 0x5401, p),
]
for c in checks:
    print(c[0], sc(*c[1:]))
`

// syscallResults runs the probe under a built-in profile or, with data, a
// custom one (the bytes the policy loader would carry).
func syscallResults(t *testing.T, m *Manager, seccomp string, data []byte) map[string]string {
	t.Helper()
	p := testProfile()
	p.Seccomp = seccomp
	if data != nil {
		p.SeccompFile, p.SeccompData = "/etc/execgate/"+seccomp+".json", data
	}
	return syscallResultsFor(t, m, p)
}

// syscallResultsFor runs the probe under profile p.
func syscallResultsFor(t *testing.T, m *Manager, p policy.Profile) map[string]string {
	t.Helper()
	got := runSpec(t, m, Spec{Argv: []string{"/usr/bin/python3", "-c", syscallScript}, Profile: p})
	if got.ExitCode != 0 {
		t.Fatalf("probe script: exit %d, stderr %q", got.ExitCode, got.Stderr)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(got.Stdout), "\n") {
		if name, errno, ok := strings.Cut(line, " "); ok {
			if _, dup := out[name]; dup {
				t.Errorf("%s reported twice: a blocked clone ran?", name)
			}
			out[name] = errno
		}
	}
	return out
}

func TestSeccompInSandbox(t *testing.T) {
	if runtime.GOARCH != "amd64" && os.Getenv("CI") == "" {
		t.Skip("syscall numbers in the script are amd64's")
	}
	m := newTestManager(t)
	const eperm, enosys, enotty, ok = "1", "38", "25", "0"
	want := map[string]string{
		"unshare_user": eperm, "setns": eperm, "clone_newuser": eperm, "clone3": enosys,
		"mount": eperm, "ptrace": eperm, "bpf": eperm, "keyctl": eperm, "userfaultfd": eperm,
		"io_uring_setup": eperm, "perf_event_open": eperm,
		"socket_vsock": eperm, "socket_vsock_high": eperm, "socket_alg": eperm, "socket_unix": ok,
		"ioctl_tiocsti": eperm, "ioctl_tiocsti_high": eperm, "ioctl_tioclinux_high": eperm,
		"ioctl_tcgets": enotty, // allowed: stdin is /dev/null, not a terminal
	}
	t.Run("default", func(t *testing.T) {
		got := syscallResults(t, m, SeccompDefault, nil)
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s: got errno %q, want %q", name, got[name], w)
			}
		}
	})
	t.Run("strict", func(t *testing.T) {
		got := syscallResults(t, m, SeccompStrict, nil)
		if got["socket_unix"] != eperm || got["clone3"] != enosys || got["ioctl_tiocsti_high"] != eperm {
			t.Errorf("strict: got socket_unix %q clone3 %q tiocsti %q, want EPERM, ENOSYS, EPERM", got["socket_unix"], got["clone3"], got["ioctl_tiocsti_high"])
		}
	})
	t.Run("custom file", func(t *testing.T) {
		allow := subtract(defaultAllowKnown(), []string{"socket"})
		data, _ := json.Marshal(SeccompFile{Description: "default without socket", Allow: allow})
		got := syscallResults(t, m, "nosocket", data)
		if got["socket_unix"] != eperm || got["ioctl_tcgets"] != enotty || got["mount"] != eperm {
			t.Errorf("custom: got socket_unix %q tcgets %q mount %q, want EPERM, ENOTTY, EPERM", got["socket_unix"], got["ioctl_tcgets"], got["mount"])
		}
	})
}

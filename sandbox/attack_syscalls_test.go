package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

// sweepMax is the highest syscall number the probe tries: past the end of
// both libseccomp 2.5.4's table (456) and the running kernel's (~470), so
// numbers libseccomp cannot name are covered too.
const sweepMax = 499

// probeLine is one line of the probe's output: the filter decision and the
// real result (see testdata/probe/probe.c).
type probeLine struct{ key, filter, real string }

func parseProbe(t *testing.T, out string) map[string]probeLine {
	t.Helper()
	m := map[string]probeLine{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("probe output line %q: want 3 fields", l)
		}
		if strings.HasPrefix(f[1], "nofilter:") {
			t.Fatalf("probe could not stack its own seccomp filter (%s): the decision of the sandbox filter cannot be read", l)
		}
		m[f[0]] = probeLine{key: f[0], filter: f[1], real: f[2]}
	}
	return m
}

// decision turns a probe line into the outcome recorded in the golden
// file: "allow", an errno name the filter answered with, "signal NAME", or
// "nosys". A TRACE-probe answer of ENOSYS means "allowed" unless the real
// call answers ENOSYS too; then host, the same call made outside any
// sandbox, decides: if the kernel answers ENOSYS there as well, the call
// does nothing on this kernel with these arguments whether allowed or not
// ("nosys"); otherwise the filter itself answered ENOSYS (clone3, and
// runc's stub for numbers past the profile's highest).
func decision(l probeLine, host string) string {
	enosys := "err:" + strconv.Itoa(int(syscall.ENOSYS))
	switch {
	case l.filter == enosys && l.real == enosys && host == enosys:
		return "nosys"
	case l.filter == enosys && l.real == enosys:
		return "ENOSYS"
	case l.filter == enosys:
		return "allow"
	case strings.HasPrefix(l.filter, "err:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(l.filter, "err:"))
		return unix.ErrnoName(syscall.Errno(n))
	case strings.HasPrefix(l.filter, "sig:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(l.filter, "sig:"))
		return "signal " + unix.SignalName(syscall.Signal(n))
	}
	return l.filter
}

// hostBaseline runs the probe's sweep on the host, outside any sandbox, as
// uid/gid 65534 with no capabilities (harmless arguments, as inside), and
// returns each number's real result.
func hostBaseline(t *testing.T, probe string) map[string]string {
	t.Helper()
	cmd := exec.Command(probe, "syscalls", strconv.Itoa(sweepMax))
	cmd.Dir = "/"
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: attackUID, Gid: attackUID, Groups: []uint32{}},
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("host baseline sweep: %v", err)
	}
	m := map[string]string{}
	for k, l := range parseProbe(t, string(out)) {
		m[k] = l.real
	}
	return m
}

// stubThreshold is the highest syscall number named in the compiled
// profile: the program's stub (seccomp_bpf.go) answers ENOSYS above it.
func stubThreshold(t *testing.T, allow []string) int {
	t.Helper()
	sc, err := compileSeccomp(allow)
	if err != nil {
		t.Fatalf("compile default profile: %v", err)
	}
	top := 0
	for _, r := range sc.Syscalls {
		if nr, err := seccomp.GetSyscallFromName(r.Name); err == nil {
			top = max(top, int(nr))
		}
	}
	return top
}

// syscallNames maps every number 0..sweepMax to libseccomp's name for the
// native architecture, or "" where libseccomp has none.
func syscallNames(t *testing.T) []string {
	t.Helper()
	arch, err := seccomp.GetNativeArch()
	if err != nil {
		t.Fatalf("libseccomp native arch: %v", err)
	}
	if arch != seccomp.ArchAMD64 {
		t.Fatalf("the probe is x86_64 only; native arch is %s", arch)
	}
	names := make([]string, sweepMax+1)
	for nr := range names {
		if n, err := seccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil {
			names[nr] = n
		}
	}
	return names
}

// mustBlock are syscalls the issue names as blocked regardless of Docker.
var mustBlock = []string{
	"unshare", "setns", "mount", "umount2", "mount_setattr", "move_mount", "open_tree",
	"fsopen", "fsconfig", "fsmount", "fspick", "pivot_root", "chroot", "ptrace", "bpf",
	"keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "perf_event_open", "process_vm_readv", "process_vm_writev",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
	"open_by_handle_at", "iopl", "ioperm", "syslog", "lookup_dcookie", "quotactl",
}

// TestAttackSyscallTable runs every syscall number through the seccomp
// filter of each built-in profile and checks the outcome against Docker's
// default profile for a process without capabilities, the issue's own
// block list, the expected errno of each blocked call, and the golden
// files testdata/syscalls.golden (default) and syscalls-strict.golden
// (go test -run TestAttackSyscallTable -update). strict must allow nothing
// that default does not.
func TestAttackSyscallTable(t *testing.T) {
	s := suite(t)
	names := syscallNames(t)
	probe, err := probeProgram.build()
	if err != nil {
		t.Fatal(err)
	}
	host := hostBaseline(t, probe)
	profiles := []struct {
		name, golden string
		allow        []string
	}{
		{SeccompDefault, "syscalls.golden", defaultAllow},
		{SeccompStrict, "syscalls-strict.golden", strictAllow},
	}
	decided := map[string][]string{}
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			decided[p.name] = checkSyscallTable(t, s, names, host, p.name, p.allow, p.golden)
		})
	}
	def, strict := decided[SeccompDefault], decided[SeccompStrict]
	for nr := range min(len(def), len(strict)) {
		if strict[nr] == "allow" && def[nr] != "allow" {
			t.Errorf("%s (%d) is allowed by strict but not by default", names[nr], nr)
		}
	}
}

// checkSyscallTable sweeps one profile and returns its decisions.
func checkSyscallTable(t *testing.T, s *attackSuite, names []string, host map[string]string, profile string, allow []string, golden string) []string {
	// ~3 s on an idle machine; a make test run beside other builds once
	// took more than the suite's 15 s.
	o := runOpts{profile: func(p *policy.Profile) { p.Seccomp, p.Timeout = profile, time.Minute }}
	out := s.run(t, o, s.probePath, "syscalls", strconv.Itoa(sweepMax))
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("probe run failed: %v", out)
	}
	got := parseProbe(t, out.stdout)
	if len(got) != sweepMax+1 {
		t.Fatalf("probe reported %d syscalls, want %d:\n%s", len(got), sweepMax+1, out)
	}
	decisions := make([]string, sweepMax+1)
	for nr := range decisions {
		l, ok := got[strconv.Itoa(nr)]
		if !ok {
			t.Fatalf("probe output lacks syscall %d", nr)
		}
		decisions[nr] = decision(l, host[strconv.Itoa(nr)])
	}
	// The compiled program starts with a stub answering ENOSYS for
	// numbers above the highest syscall the profile names (as runc's
	// did), so that glibc falls back from syscalls newer than the profile.
	stub := stubThreshold(t, allow)
	t.Logf("ENOSYS stub starts after syscall %d (%s)", stub, names[stub])
	for nr, d := range decisions {
		checkDecision(t, names, stub, nr, d)
	}
	for _, name := range mustBlock {
		nr, err := seccomp.GetSyscallFromName(name)
		if err != nil || int(nr) > sweepMax {
			continue
		}
		switch decisions[nr] {
		case "allow":
			t.Errorf("%s must be blocked, got allow", name)
		case "nosys":
			t.Logf("%s: this kernel answers ENOSYS to it even outside the sandbox", name)
		}
	}
	// Sanity: the probe must see ordinary syscalls as allowed, or the
	// method is broken and every check above is vacuous.
	for _, name := range []string{"read", "write", "openat", "execve", "exit_group", "wait4", "mmap", "getpid"} {
		nr, _ := seccomp.GetSyscallFromName(name)
		if decisions[nr] != "allow" {
			t.Errorf("control %s (%d): got %s, want allow", name, nr, decisions[nr])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Outcome of every x86_64 syscall number inside a sandbox with the %q seccomp profile (testdata/probe).\n", profile)
	b.WriteString("# nr name decision    (decision: allow | errno returned by the filter | signal |\n")
	b.WriteString("#                      nosys = ENOSYS from the kernel outside the sandbox too)\n")
	for nr, d := range decisions {
		name := names[nr]
		if name == "" {
			name = kernelPassthrough[nr]
		}
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(&b, "%d %s %s\n", nr, name, d)
	}
	compareGolden(t, golden, b.String())
	return decisions
}

// checkDecision checks one syscall number's outcome.
func checkDecision(t *testing.T, names []string, stub, nr int, d string) {
	t.Helper()
	name := names[nr]
	label := name
	if label == "" {
		label = "#" + strconv.Itoa(nr)
	}
	switch {
	case kernelPassthrough[nr] != "":
		// Exempt from seccomp by the kernel; from outside the uprobe
		// trampoline they do nothing.
		if want := map[int]string{335: "signal SIGILL", 336: "ENXIO"}[nr]; d != want {
			t.Errorf("%s (%d, kernel passthrough): got %s, want %s", kernelPassthrough[nr], nr, d, want)
		}
	case d == "allow" && name == "":
		t.Errorf("syscall %d is allowed but libseccomp has no name for it: an allowlist cannot mean it", nr)
	case d == "allow" && !dockerNoCapsAllowed[name]:
		t.Errorf("%s (%d) is allowed; Docker's default profile does not allow it without capabilities", name, nr)
	case d == "allow" && slices.Contains(mustBlock, name):
		t.Errorf("%s (%d) is allowed; the issue requires it blocked", name, nr)
	case d == "allow", d == "nosys":
	case name == "clone3":
		if d != "ENOSYS" {
			t.Errorf("clone3 (%d): got %s, want ENOSYS (glibc falls back to clone only on ENOSYS)", nr, d)
		}
	case nr > stub:
		if d != "ENOSYS" {
			t.Errorf("%s (%d) above runc's stub threshold %d: got %s, want ENOSYS", label, nr, stub, d)
		}
	case d != "EPERM":
		t.Errorf("%s (%d) blocked: got %s, want EPERM", label, nr, d)
	}
}

// compareGolden compares got with testdata/name, or rewrites it with -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s (create it with -update): %v", path, err)
	}
	if got != string(want) {
		t.Errorf("%s differs (rerun with -update after review):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

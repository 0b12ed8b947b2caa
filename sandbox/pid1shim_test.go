package sandbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/sandbox/pid1"
)

func TestCommandEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		uid  uint32
		want []string
	}{
		{"HOME added", []string{"A=1", "PATH=/usr/bin"}, 65534, []string{"A=1", "PATH=/usr/bin", "HOME=/tmp"}},
		{"root's HOME", nil, 0, []string{"HOME=/root"}},
		{"HOME kept", []string{"HOME=/work", "A=1"}, 65534, []string{"HOME=/work", "A=1"}},
		{"empty HOME replaced", []string{"HOME=", "A=1"}, 65534, []string{"A=1", "HOME=/tmp"}},
		{"last value wins, in its place", []string{"A=1", "B=2", "A=3"}, 65534, []string{"B=2", "A=3", "HOME=/tmp"}},
		{"value with =", []string{"A=b=c"}, 65534, []string{"A=b=c", "HOME=/tmp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commandEnv(tt.env, tt.uid); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInitOutcome(t *testing.T) {
	exit3 := syscall.WaitStatus(3 << 8)
	killed := syscall.WaitStatus(syscall.SIGKILL)
	execErr := &pid1.Error{Stage: pid1.StageExec, Errno: syscall.ENOENT}
	tests := []struct {
		name    string
		status  syscall.WaitStatus
		serr    error
		shim    syscall.WaitStatus // PID 1's own wait status
		noShim  bool
		want    syscall.WaitStatus
		wantErr bool
	}{
		{"record wins", exit3, nil, 0, false, exit3, false},
		{"record wins over a late kill", exit3, nil, killed, false, exit3, false},
		{"killed before the command ended", 0, pid1.ErrNoStatus, killed, false, killed, false},
		{"pid 1 failed", 0, execErr, syscall.WaitStatus((pid1.ExitBase + int(pid1.StageExec)) << 8), false, 0, true},
		{"no record, clean exit", 0, pid1.ErrNoStatus, 0, false, 0, true},
		{"malformed record", 0, pid1.ErrBadStatus, 0, false, 0, true},
		{"no record, no state", 0, pid1.ErrNoStatus, 0, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st *os.ProcessState
			if !tt.noShim {
				st = processState(t, tt.shim)
			}
			got, err := initOutcome(tt.status, tt.serr, st)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("got %#x, %v; want %#x (error %v)", uint32(got), err, uint32(tt.want), tt.wantErr)
			}
			if tt.serr == execErr && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("got %v, want the errno kept", err)
			}
		})
	}
}

// processState makes a real *os.ProcessState with wait status ws (a
// process that exits with the code, or kills itself with the signal).
func processState(t *testing.T, ws syscall.WaitStatus) *os.ProcessState {
	t.Helper()
	script := "exit " + strconv.Itoa(ws.ExitStatus())
	if ws.Signaled() {
		script = "kill -" + strconv.Itoa(int(ws.Signal())) + " $$"
	}
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", script}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || st.Sys().(syscall.WaitStatus) != ws {
		t.Fatalf("helper process: %v, %v, want %#x", st, err, uint32(ws))
	}
	return st
}

func TestCheckPID1Syscalls(t *testing.T) {
	for name, allow := range map[string][]string{"default": defaultAllow, "strict": strictAllow} {
		if err := checkPID1Syscalls(allow); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	err := checkPID1Syscalls(subtract(defaultAllow, []string{"wait4", "kill"}))
	if !errors.Is(err, ErrSeccompProfile) || !strings.Contains(err.Error(), "wait4, kill") {
		t.Errorf("got %v, want ErrSeccompProfile naming wait4 and kill", err)
	}
}

func TestCheckShimFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		ok         bool
		detail     string
	}{
		{"world-executable", write("ok", 0o755), true, "mounted read-only at " + pid1.Path},
		{"owner only", write("private", 0o700), false, "chmod o+x"},
		{"directory", dir, false, "not a regular file"},
		{"missing", filepath.Join(dir, "nope"), false, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := checkShimFile(tt.path, tt.path)
			if c.OK != tt.ok || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("got %+v, want ok %v and %q in the detail", c, tt.ok, tt.detail)
			}
		})
	}
	if c := checkShimBinary(); !c.OK {
		t.Errorf("this test binary: %+v", c)
	}
}

// TestSeccompProgram checks the compiled program's shape: the ENOSYS stub
// (jumps that land on the filter, the profile's highest syscall), then
// libseccomp's export of the same rules, in a sealed memfd. What the
// program decides is checked against the kernel by the attack suite's
// syscall probe (testdata/syscalls*.golden).
func TestSeccompProgram(t *testing.T) {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auditArches[arch]; !ok {
		t.Skipf("native architecture %v not supported", arch)
	}
	sc, err := compileSeccomp(defaultAllow)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := exportSeccomp(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.file.Close()
	if prog.rules != sc {
		t.Error("the program does not keep the rules it was compiled from")
	}
	st, err := prog.file.Stat()
	if err != nil || st.Size() != int64(prog.insns*sockFilterSize) || prog.insns > maxSeccompInsns {
		t.Fatalf("program file: %v, size %d for %d instructions", err, st.Size(), prog.insns)
	}
	if _, err := prog.file.WriteAt([]byte{0}, 0); err == nil {
		t.Error("the sealed program could be written")
	}
	data := make([]byte, st.Size())
	if _, err := prog.file.ReadAt(data, 0); err != nil {
		t.Fatal(err)
	}
	insns := decodeBPF(data)
	x32 := arch == libseccomp.ArchAMD64
	n := 6
	if x32 {
		n = 7
	}
	top, _ := highestSyscall(sc, arch)
	clone3, _ := libseccomp.GetSyscallFromNameByArch("clone3", arch)
	if top < uint32(clone3) {
		t.Errorf("highest syscall %d below clone3 (%d)", top, clone3)
	}
	for i, in := range insns[:n] {
		if in.code&0x07 == unix.BPF_JMP {
			if in.code == unix.BPF_JMP|unix.BPF_JA {
				if i+1+int(in.k) != n {
					t.Errorf("stub %d: ja lands on %d, want the filter at %d", i, i+1+int(in.k), n)
				}
				continue
			}
			for _, off := range []uint8{in.jt, in.jf} {
				if dst := i + 1 + int(off); dst > n || dst <= i {
					t.Errorf("stub %d: jump to %d outside the stub and the filter start %d", i, dst, n)
				}
			}
		}
	}
	if last := insns[n-1]; last.code != unix.BPF_RET|unix.BPF_K || last.k != unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS) {
		t.Errorf("stub ends with %+v, want ret ERRNO(ENOSYS)", last)
	}
	if gt := insns[n-3]; gt.code != unix.BPF_JMP|unix.BPF_JGT|unix.BPF_K || gt.k != top {
		t.Errorf("stub compares with %+v, want jgt %d", gt, top)
	}
	filter, err := libseccompFilter(sc, arch)
	if err != nil {
		t.Fatal(err)
	}
	defer filter.Release()
	body, err := exportBPF(filter)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[n*sockFilterSize:], body) {
		t.Error("the program after the stub is not libseccomp's export of the rules")
	}
	// The strict profile compiles too.
	strict, err := compileSeccomp(strictAllow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seccompBPF(strict); err != nil {
		t.Errorf("strict: %v", err)
	}
}

type bpfInsn struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

func decodeBPF(b []byte) []bpfInsn {
	var out []bpfInsn
	for len(b) >= sockFilterSize {
		out = append(out, bpfInsn{
			code: binary.NativeEndian.Uint16(b), jt: b[2], jf: b[3], k: binary.NativeEndian.Uint32(b[4:]),
		})
		b = b[sockFilterSize:]
	}
	return out
}

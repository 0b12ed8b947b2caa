package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// A profile's rules (compileSeccomp) are compiled to a classic BPF program
// once per Manager, here, and the sandbox's PID 1 (package pid1) loads that
// program in every container. libcontainer used to get the rule list in
// its config and compile it with libseccomp inside each container's init
// (~3 ms per run, and ~1 ms to decode the JSON rule list).
//
// The program is libseccomp's export of the same rules libcontainer built
// (default action EPERM, native architecture only, the same conditional
// rules), with two differences from libcontainer's: a foreign architecture
// kills the whole process (libcontainer: libseccomp's default, the
// thread), and our own stub in front answers ENOSYS to syscall numbers
// above the highest one the profile names, as libcontainer's does, so that
// programs take their fallback paths for syscalls newer than the profile.
// The syscall probe golden files (testdata) hold the proof that the
// outcome of every syscall is unchanged.

// seccompProgram is one profile's compiled filter.
type seccompProgram struct {
	// file is a sealed memfd holding the program (struct sock_filter[]),
	// passed to PID 1 as pid1.FilterFD; every run shares it (PID 1 reads it
	// with pread).
	file  *os.File
	insns int
	// rules are what the program was compiled from.
	rules *configs.Seccomp

	// The Manager's cache (seccompFor), under its seccompMu: runs holding
	// the program, whether it is a custom profile (evictable), whether it
	// was evicted (the last release closes file), when it was last used.
	refs    int
	custom  bool
	evicted bool
	lastUse uint64
}

// maxSeccompInsns is the kernel's limit for a classic seccomp program.
const maxSeccompInsns = 4096

// sockFilterSize is sizeof(struct sock_filter).
const sockFilterSize = 8

// exportSeccomp compiles sc to a program in a sealed memfd.
func exportSeccomp(sc *configs.Seccomp) (*seccompProgram, error) {
	prog, err := seccompBPF(sc)
	if err != nil {
		return nil, err
	}
	f, err := sealedMemfd("execgate-seccomp", prog)
	if err != nil {
		return nil, err
	}
	return &seccompProgram{file: f, insns: len(prog) / sockFilterSize, rules: sc}, nil
}

// seccompBPF returns the program for sc: the ENOSYS stub, then libseccomp's
// filter.
func seccompBPF(sc *configs.Seccomp) ([]byte, error) {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	audit, ok := auditArches[arch]
	if !ok {
		return nil, fmt.Errorf("seccomp: native architecture %v is not supported", arch)
	}
	filter, err := libseccompFilter(sc, arch)
	if err != nil {
		return nil, err
	}
	defer filter.Release()
	body, err := exportBPF(filter)
	if err != nil {
		return nil, err
	}
	top, err := highestSyscall(sc, arch)
	if err != nil {
		return nil, err
	}
	prog := append(enosysStub(audit, top, arch == libseccomp.ArchAMD64), body...)
	if n := len(prog) / sockFilterSize; n > maxSeccompInsns {
		return nil, fmt.Errorf("seccomp: program of %d instructions exceeds the kernel's %d", n, maxSeccompInsns)
	}
	return prog, nil
}

// auditArches maps the architectures this package supports natively to
// the AUDIT_ARCH value the kernel puts in seccomp_data.arch.
var auditArches = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchAMD64: unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchARM64: unix.AUDIT_ARCH_AARCH64,
}

// libseccompFilter builds the libseccomp filter of sc for arch: the same
// translation libcontainer applied to its config.
func libseccompFilter(sc *configs.Seccomp, arch libseccomp.ScmpArch) (*libseccomp.ScmpFilter, error) {
	if sc.DefaultAction != configs.Errno || sc.DefaultErrnoRet == nil {
		return nil, errors.New("seccomp: the default action must be an errno")
	}
	def := libseccomp.ActErrno.SetReturnCode(int16(*sc.DefaultErrnoRet))
	filter, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			filter.Release()
		}
	}()
	if err := filter.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("seccomp bad-arch action: %w", err)
	}
	// libseccomp's binary tree for long rule sets, as libcontainer (only
	// the shape of the program changes, not what it decides).
	if len(sc.Syscalls) > 32 {
		if err := filter.SetOptimize(2); err != nil {
			return nil, fmt.Errorf("seccomp optimize: %w", err)
		}
	}
	for _, r := range sc.Syscalls {
		if err := addSeccompRule(filter, r, arch, def); err != nil {
			return nil, err
		}
	}
	ok = true
	return filter, nil
}

// addSeccompRule adds one rule (at most one condition per argument, which
// is all compileSeccomp produces).
func addSeccompRule(filter *libseccomp.ScmpFilter, r *configs.Syscall, arch libseccomp.ScmpArch, def libseccomp.ScmpAction) error {
	nr, err := libseccomp.GetSyscallFromNameByArch(r.Name, arch)
	if err != nil {
		return nil // unknown on this architecture: compileSeccomp dropped it already
	}
	var action libseccomp.ScmpAction
	switch {
	case r.Action == configs.Allow:
		action = libseccomp.ActAllow
	case r.Action == configs.Errno && r.ErrnoRet != nil:
		action = libseccomp.ActErrno.SetReturnCode(int16(*r.ErrnoRet))
	default:
		return fmt.Errorf("seccomp rule %s: action %v not supported", r.Name, r.Action)
	}
	if action == def {
		return nil // the default already
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(r.Args))
	for _, a := range r.Args {
		if a.Op != configs.MaskEqualTo {
			return fmt.Errorf("seccomp rule %s: operator %v not supported", r.Name, a.Op)
		}
		c, err := libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("seccomp rule %s: %w", r.Name, err)
		}
		conds = append(conds, c)
	}
	if len(conds) == 0 {
		err = filter.AddRule(nr, action)
	} else {
		err = filter.AddRuleConditional(nr, action, conds)
	}
	if err != nil {
		return fmt.Errorf("seccomp rule %s: %w", r.Name, err)
	}
	return nil
}

// exportBPF returns libseccomp's program for filter.
func exportBPF(filter *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("execgate-seccomp-export", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp export: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "execgate-seccomp-export")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	if len(b) == 0 || len(b)%sockFilterSize != 0 {
		return nil, fmt.Errorf("seccomp export: %d bytes is not a program", len(b))
	}
	return b, nil
}

// highestSyscall is the highest syscall number sc names on arch.
func highestSyscall(sc *configs.Seccomp, arch libseccomp.ScmpArch) (uint32, error) {
	var top libseccomp.ScmpSyscall
	for _, r := range sc.Syscalls {
		if nr, err := libseccomp.GetSyscallFromNameByArch(r.Name, arch); err == nil && nr > top {
			top = nr
		}
	}
	if top <= 0 {
		return 0, errors.New("seccomp: the profile names no syscall of this architecture")
	}
	return uint32(top), nil
}

// x32SyscallBit marks a syscall made through the x32 ABI on x86_64.
const x32SyscallBit = 0x40000000

// enosysStub returns the instructions put in front of libseccomp's filter:
//
//	ld   [arch]
//	jne  audit     -> filter        (foreign arch: the filter kills)
//	ld   [nr]
//	jset x32 bit   -> filter        (x86_64 only: the filter kills x32)
//	jgt  top       -> ENOSYS
//	ja             -> filter
//	ret  ERRNO(ENOSYS)
//
// libseccomp's filter starts by loading the arch itself, so it does not
// depend on the accumulator left here.
func enosysStub(audit, top uint32, x32 bool) []byte {
	type insn struct {
		code   uint16
		jt, jf uint8
		k      uint32
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		jgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		ja    = unix.BPF_JMP | unix.BPF_JA
		ret   = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
	)
	// Jump offsets count from the next instruction; the filter starts
	// right after the last one (n).
	n := 6
	if x32 {
		n = 7
	}
	var p []insn
	p = append(p, insn{code: ldAbs, k: offArch})
	p = append(p, insn{code: jeq, jt: 0, jf: uint8(n - 2), k: audit})
	p = append(p, insn{code: ldAbs, k: offNr})
	if x32 {
		p = append(p, insn{code: jset, jt: uint8(n - 4), jf: 0, k: x32SyscallBit})
	}
	p = append(p, insn{code: jgt, jt: 1, jf: 0, k: top})
	p = append(p, insn{code: ja, k: 1})
	p = append(p, insn{code: ret, k: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	out := make([]byte, 0, len(p)*sockFilterSize)
	for _, i := range p {
		out = binary.NativeEndian.AppendUint16(out, i.code)
		out = append(out, i.jt, i.jf)
		out = binary.NativeEndian.AppendUint32(out, i.k)
	}
	return out
}

// sealedMemfd returns a read-only memfd holding data, sealed against any
// change (write, grow, shrink, new seals).
func sealedMemfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd %s: %w", name, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd %s: %w", name, err)
	}
	return f, nil
}

package pid1

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// BenchmarkShimTrue starts /bin/true through PID 1 in a fresh PID
// namespace; BenchmarkDirectTrue starts it directly as the namespace's
// init. The difference is what PID 1 costs a run (one execve of this
// binary, a fork, the filter loaded twice), with cpu-ms/op counted over
// the children.
func BenchmarkShimTrue(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	filter := testFilterB(b)
	env, err := EnvFile([]string{"PATH=/usr/bin:/bin"})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	benchStart(b, func() *exec.Cmd {
		return &exec.Cmd{Path: self, Args: []string{Path, "pipe", "--", "/bin/true"}, Env: []string{},
			ExtraFiles: []*os.File{nullFile(b), filter, env}}
	})
}

func BenchmarkDirectTrue(b *testing.B) {
	benchStart(b, func() *exec.Cmd { return &exec.Cmd{Path: "/bin/true", Args: []string{"/bin/true"}, Env: []string{}} })
}

func benchStart(b *testing.B, mk func() *exec.Cmd) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for a PID namespace")
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru0)
	n := 0
	for b.Loop() {
		cmd := mk()
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu)/float64(n)/1e6, "cpu-ms/op")
}

func nullFile(b *testing.B) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// testFilterB is testFilter for benchmarks.
func testFilterB(b *testing.B) *os.File {
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Release()
	fd, err := unix.MemfdCreate("pid1-bench", unix.MFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	mf := os.NewFile(uintptr(fd), "pid1-bench")
	b.Cleanup(func() { mf.Close() })
	if err := f.ExportBPF(mf); err != nil {
		b.Fatal(err)
	}
	return mf
}

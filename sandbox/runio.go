package sandbox

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/runc/libcontainer/utils"
	"golang.org/x/sys/unix"
)

// runIO holds a run's pipes. The container gets our own os.Pipe ends as
// its stdio (trap 7: anything else makes os/exec add copy goroutines that
// wait forever when the init fails early); the parent's copies of the
// child ends are closed right after the start.
type runIO struct {
	stdinR, stdinW   *os.File // stdinW nil when Stdin is nil (stdinR is /dev/null)
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File

	consoleParent, consoleChild *os.File // TTY only
	master                      *os.File

	statusR, statusW *os.File // PID 1's status record (pid1.StatusFD)
	env              *os.File // the command's environment (pid1.EnvFD)

	stdinOnce sync.Once
	over      chan struct{} // closed when the command has ended
	overOnce  sync.Once
}

func newRunIO(spec *Spec) (_ *runIO, err error) {
	x := &runIO{over: make(chan struct{})}
	defer func() {
		if err != nil {
			x.closeAll()
		}
	}()
	if x.statusR, x.statusW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("status pipe: %w", err)
	}
	if x.env, err = initEnv(spec); err != nil {
		return nil, err
	}
	if spec.TTY {
		if x.consoleParent, x.consoleChild, err = utils.NewSockPair("console"); err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		return x, nil
	}
	if spec.Stdin != nil {
		if x.stdinR, x.stdinW, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
	} else if x.stdinR, err = os.Open(os.DevNull); err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	if x.stdoutR, x.stdoutW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	if x.stderrR, x.stderrW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	return x, nil
}

// afterStart closes the parent's copies of the child's ends.
func (x *runIO) afterStart() {
	closeFiles(&x.stdinR, &x.stdoutW, &x.stderrW, &x.consoleChild, &x.statusW, &x.env)
}

// receiveConsole takes the pty master the init sends over the console
// socket.
func (x *runIO) receiveConsole() error {
	f, err := recvFile(x.consoleParent)
	if err != nil {
		return fmt.Errorf("receive console: %w", err)
	}
	x.master = f
	closeFiles(&x.consoleParent)
	return nil
}

// endRun is called when the command has ended: it stops the resize
// goroutine and closes stdin.
func (x *runIO) endRun() {
	x.overOnce.Do(func() { close(x.over) })
	x.closeStdin()
}

// closeStdin closes the stdin pipe so a blocked stdin copy ends.
func (x *runIO) closeStdin() {
	x.stdinOnce.Do(func() { closeFiles(&x.stdinW) })
}

func (x *runIO) closeAll() {
	x.endRun()
	closeFiles(&x.stdinR, &x.stdoutR, &x.stdoutW, &x.stderrR, &x.stderrW,
		&x.consoleParent, &x.consoleChild, &x.master, &x.statusR, &x.statusW, &x.env)
}

func closeFiles(fs ...**os.File) {
	for _, f := range fs {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// copiers are a run's output goroutines.
type copiers struct {
	wg  sync.WaitGroup
	out [2]streamStats
}

func (c *copiers) wait() [2]streamStats {
	c.wg.Wait()
	return c.out
}

// startCopiers starts the output copies (owned by the run, which waits for
// them) and the stdin copy (owned by the Manager through bg: it may stay
// blocked in the caller's Read after the run).
func (x *runIO) startCopiers(spec *Spec, g *outputGate, bg *sync.WaitGroup) *copiers {
	c := &copiers{}
	stdout, stderr := orDiscard(spec.Stdout), orDiscard(spec.Stderr)
	if spec.TTY {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.out[0] = copyStream(x.master, stdout, g) }()
		if spec.Stdin != nil {
			x.startStdin(spec.Stdin, x.master, bg, false)
		}
		if spec.Resize != nil {
			x.startResize(spec.Resize, x.over, &c.wg)
		}
		return c
	}
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.out[0] = copyStream(x.stdoutR, stdout, g) }()
	go func() { defer c.wg.Done(); c.out[1] = copyStream(x.stderrR, stderr, g) }()
	if spec.Stdin != nil {
		x.startStdin(spec.Stdin, x.stdinW, bg, true)
	}
	return c
}

// startStdin copies the caller's Stdin into the command. For a pipe, EOF
// closes the pipe (the command sees EOF); for a TTY it sends nothing more.
func (x *runIO) startStdin(src io.Reader, dst *os.File, bg *sync.WaitGroup, closeAtEOF bool) {
	bg.Add(1)
	go func() {
		defer bg.Done()
		_, _ = x.copyIn(dst, src)
		if closeAtEOF {
			x.closeStdin()
		}
	}()
}

func (x *runIO) copyIn(dst *os.File, src io.Reader) (int64, error) {
	return io.Copy(dst, src)
}

// startResize applies window size changes to the pty master until the
// channel closes or the command has ended (done). The run waits for it
// before closing the master.
func (x *runIO) startResize(ch <-chan WindowSize, done <-chan struct{}, wg *sync.WaitGroup) {
	master := x.master
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case ws, ok := <-ch:
				if !ok {
					return
				}
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
			}
		}
	}()
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// recvFile receives one file descriptor (SCM_RIGHTS) from a unix socket:
// the pty master libcontainer's init sends over the console socket.
func recvFile(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	conn, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	if err := conn.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("recvmsg: %w", rerr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: want one control message, got %d (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket: want one fd, got %d (%v)", len(fds), err)
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

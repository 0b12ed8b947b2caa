package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execgate/execgate/sandbox"
)

// newRealSandbox starts a sandbox.Manager with its own state root and
// cgroup parent; Cleanup closes it and checks that nothing is left.
func newRealSandbox(t *testing.T) *sandbox.Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the end-to-end tests need root for the sandbox and CI is set")
		}
		t.Skip("the end-to-end tests need root for the sandbox (with CI set: fails)")
	}
	base, err := os.MkdirTemp("", "execgate-exec-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{
		Instance:     fmt.Sprintf("exe2e%d", os.Getpid()%100000),
		StateRoot:    filepath.Join(base, "state"),
		CgroupParent: fmt.Sprintf("/execgate-exec-e2e-%d", os.Getpid()),
	}
	m, err := sandbox.New(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("sandbox Close: %v", err)
		}
		if left := containerLeftovers(m.Config()); len(left) > 0 {
			t.Errorf("leftovers after Close: %v", left)
		}
		_ = os.RemoveAll(base)
	})
	return m
}

// containerLeftovers lists container state directories and container
// cgroups that still exist.
func containerLeftovers(cfg sandbox.Config) []string {
	var left []string
	if ents, err := os.ReadDir(filepath.Join(cfg.StateRoot, "containers")); err == nil {
		for _, e := range ents {
			left = append(left, "state "+e.Name())
		}
	}
	for _, ctrl := range []string{"pids", "memory", "cpu,cpuacct", "unified"} {
		dir := filepath.Join("/sys/fs/cgroup", ctrl, cfg.CgroupParent)
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != dir {
				left = append(left, "cgroup "+p)
			}
			return nil
		})
	}
	return left
}

func waitJobs(t *testing.T, l *Local, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); len(l.List()) != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("got %d running jobs, want %d", len(l.List()), n)
		}
	}
}

func TestE2E(t *testing.T) {
	m := newRealSandbox(t)

	t.Run("echo", func(t *testing.T) {
		c := newHarnessWith(t, m, me()).client(t)
		var out bytes.Buffer
		d, res, err := c.Run(context.Background(), Job{ID: "e2e-echo", Request: req("echo", "hello", "sandbox"), Stdout: &out})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if out.String() != "hello sandbox\n" || res.ExitCode != 0 || res.EndedBy != sandbox.EndedExit || !d.Allowed {
			t.Errorf("got %q exit %d ended by %q, want %q exit 0 by exit", out.String(), res.ExitCode, res.EndedBy, "hello sandbox\n")
		}
	})

	t.Run("stdin to cat", func(t *testing.T) {
		c := newHarnessWith(t, m, me()).client(t)
		in := strings.Repeat("through the sandbox and back\n", 40000) // > 1 MiB
		var out bytes.Buffer
		_, res, err := c.Run(context.Background(), Job{ID: "e2e-cat", Request: req("cat"), Stdin: strings.NewReader(in), Stdout: &out})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if out.String() != in || res.ExitCode != 0 {
			t.Errorf("got %d bytes exit %d, want the %d bytes back and exit 0", out.Len(), res.ExitCode, len(in))
		}
	})

	t.Run("denied on the wire", func(t *testing.T) {
		h := newHarnessWith(t, m, me())
		r := newRawFront(t, h.conn)
		r.handshake()
		r.start(1, startMsg{ID: "e2e-lie", Request: wireRequest{Subject: "alice", Roles: []string{"admin", "operator"}, Command: "touch", Args: []string{"/etc/passwd"}}})
		f, err := r.next()
		if err != nil || f.Type != frameError {
			t.Fatalf("got %v %v, want an error frame", f.Type, err)
		}
		var em errorMsg
		if err := decodeStrict(f.Payload, &em); err != nil || em.Code != codeDenied {
			t.Errorf("got %+v %v, want denied", em, err)
		}
	})

	t.Run("client limits are clamped", func(t *testing.T) {
		c := newHarnessWith(t, m, me()).client(t)
		_, res, err := c.Run(context.Background(), Job{ID: "e2e-timeout", Request: req("sleep", "30"), Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.EndedBy != sandbox.EndedTimeout {
			t.Errorf("ended by: got %q, want timeout (the client asked for 300ms)", res.EndedBy)
		}
	})

	t.Run("kill", func(t *testing.T) {
		h := newHarnessWith(t, m, me())
		c := h.client(t)
		done := make(chan error, 1)
		var res sandbox.Result
		go func() {
			var err error
			_, res, err = c.Run(context.Background(), Job{ID: "e2e-kill", Request: req("sleep", "30")})
			done <- err
		}()
		waitJobs(t, h.local, 1)
		if err := c.Kill("e2e-kill"); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.EndedBy != sandbox.EndedKilled {
			t.Errorf("ended by: got %q, want killed", res.EndedBy)
		}
	})

	t.Run("closing the connection kills the sandboxes", func(t *testing.T) {
		h := newHarnessWith(t, m, me())
		c := h.client(t)
		done := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, _, err := c.Run(context.Background(), Job{ID: fmt.Sprintf("e2e-orphan-%d", i), Request: req("sleep", "30")})
				done <- err
			}()
		}
		waitJobs(t, h.local, 3)
		// The jobs are registered before their containers exist: wait
		// until the leftover check sees them (or it would miss leftovers).
		for deadline := time.Now().Add(20 * time.Second); len(containerLeftovers(m.Config())) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the leftover check never saw the running containers")
			}
		}
		_ = c.Close()
		for range 3 {
			if err := <-done; !errors.Is(err, ErrClosed) {
				t.Errorf("Run: got %v, want ErrClosed", err)
			}
		}
		if err := h.waitServed(t); err != nil {
			t.Errorf("ServeConn: %v", err)
		}
		if n := len(h.local.List()); n != 0 {
			t.Errorf("got %d jobs after the connection closed, want 0", n)
		}
		if left := containerLeftovers(m.Config()); len(left) > 0 {
			t.Errorf("containers left after the connection closed: %v", left)
		}
	})
}

// TestE2ESplit runs the whole split with the real sandbox: an unprivileged
// front (this test binary, re-executed) runs echo through the executor,
// then a front that dies with a job running leaves no container behind.
func TestE2ESplit(t *testing.T) {
	m := newRealSandbox(t)
	fu, err := LookupFrontUser(DefaultFrontUser, true)
	if err != nil {
		t.Fatal(err)
	}
	code, out := splitFrontWith(t, m, "echo")
	if want := fmt.Sprintf("uid=%d exit=0 out=from front\n", fu.UID); code != 0 || out != want {
		t.Errorf("echo through the split: got code %d output %q, want 0 and %q", code, out, want)
	}
	code, out = splitFrontWith(t, m, "die")
	if code != 7 {
		t.Errorf("dying front: got code %d (output %q), want 7", code, out)
	}
	if left := containerLeftovers(m.Config()); len(left) > 0 {
		t.Errorf("containers left after the front died: %v", left)
	}
}

// TestE2EStalledFrontCannotHoldSandbox: a front that stops reading output
// blocks the command (backpressure) only until the job's timeout, kill
// grace and drain grace: then the executor ends the job and frees it.
func TestE2EStalledFrontCannotHoldSandbox(t *testing.T) {
	m := newRealSandbox(t)
	h := newHarnessWith(t, m, me(), func(c *ServerConfig) { c.OutputDrainGrace = 300 * time.Millisecond })
	c := h.client(t)
	w := newStallWriter()
	done := make(chan error, 1)
	var res sandbox.Result
	go func() {
		var err error
		_, res, err = c.Run(context.Background(), Job{ID: "e2e-stall", Request: req("yes"), Stdout: w, Timeout: 200 * time.Millisecond})
		done <- err
	}()
	<-w.stalled
	waitJobs(t, h.local, 0) // the executor let go while the front is still stalled
	if left := containerLeftovers(m.Config()); len(left) > 0 {
		t.Errorf("containers left while the front is stalled: %v", left)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.EndedBy != sandbox.EndedTimeout {
		t.Errorf("ended by: got %q, want timeout", res.EndedBy)
	}
}

// TestE2ETerminal runs a command on a terminal through the socket: input
// goes through the line discipline (echoed), ^D ends it, and the output of
// a terminal arrives on stdout only.
func TestE2ETerminal(t *testing.T) {
	m := newRealSandbox(t)
	c := newHarnessWith(t, m, me()).client(t)
	r := req("cattty")
	r.TTY = true
	resize := make(chan sandbox.WindowSize, 1)
	resize <- sandbox.WindowSize{Rows: 40, Cols: 100}
	var out, errb bytes.Buffer
	_, res, err := c.Run(context.Background(), Job{ID: "e2e-tty", Request: r, Stdin: strings.NewReader("hello\n\x04"), Stdout: &out, Stderr: &errb, Resize: resize})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExitCode != 0 || !strings.Contains(out.String(), "hello\r\nhello\r\n") || errb.Len() != 0 {
		t.Errorf("got exit %d stdout %q stderr %q, want 0, the echoed and the copied line, no stderr", res.ExitCode, out.String(), errb.String())
	}
}

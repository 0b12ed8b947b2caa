package sandbox

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRunTTY(t *testing.T) {
	m := newTestManager(t)
	p := testProfile()
	p.TTY = true
	t.Run("terminal", func(t *testing.T) {
		got := runSpec(t, m, Spec{Argv: []string{"/bin/sh", "-c", "tty; stty size"}, Profile: p, TTY: true})
		if got.ExitCode != 0 || got.Stdout != "/dev/pts/0\r\n24 80\r\n" {
			t.Errorf("got exit %d output %q, want /dev/pts/0 and 24 80", got.ExitCode, got.Stdout)
		}
	})
	t.Run("resize and input", func(t *testing.T) {
		resize := make(chan WindowSize, 1)
		resize <- WindowSize{Rows: 50, Cols: 132}
		pr, pw := io.Pipe()
		go func() {
			time.Sleep(300 * time.Millisecond)
			pw.Write([]byte("hello\n"))
			pw.Close()
		}()
		var out strings.Builder
		res, err := m.Run(context.Background(), Spec{
			Argv: []string{"/bin/sh", "-c", "read line; stty size; echo got:$line"}, Profile: p, TTY: true,
			Resize: resize, Stdin: pr, Stdout: &out,
		})
		pr.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 || !strings.Contains(out.String(), "50 132\r\n") || !strings.Contains(out.String(), "got:hello\r\n") {
			t.Errorf("got exit %d output %q, want the new size and the input echoed", res.ExitCode, out.String())
		}
	})
}

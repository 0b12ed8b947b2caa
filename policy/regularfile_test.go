package policy

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loadWithin runs Load and fails the test when it has not returned within
// 10 s: a hang is the failure these tests look for.
func loadWithin(t *testing.T, paths []string) (*Set, error) {
	t.Helper()
	type result struct {
		s   *Set
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Load(context.Background(), paths, LoadOptions{})
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%v) has not returned after 10 s: it hangs", paths)
		return nil, nil
	}
}

// TestLoadRefusesSpecialFiles: a policy path (or an entry of a policy
// directory) that is a FIFO, a device or a socket is refused at once with
// ErrNotRegular naming its type; before, opening a FIFO waited for a writer
// forever (policy check, serve's start and every reload hung).
func TestLoadRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoDir := filepath.Join(dir, "withfifo")
	if err := os.Mkdir(fifoDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(fifoDir, "a.yaml"), minimalPolicy, 0o600)
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "b.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.yaml")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	linkToFIFO := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(fifo, linkToFIFO); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, kind string
	}{
		{"fifo", fifo, "named pipe"},
		{"fifo in a policy directory", fifoDir, "named pipe"},
		{"character device", "/dev/zero", "character device"},
		{"socket", sock, "socket"},
		{"symlink to a fifo", linkToFIFO, "named pipe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWithin(t, []string{tc.path})
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("got %v, want ErrNotRegular", err)
			}
			if !strings.Contains(err.Error(), tc.kind) {
				t.Errorf("got %q, want it to name a %s", err, tc.kind)
			}
		})
	}
}

// TestLoadFollowsSymlinkToRegular: a policy file reached through a
// symbolic link (a ConfigMap's layout) still loads.
func TestLoadFollowsSymlinkToRegular(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	writeFile(t, real, minimalPolicy, 0o600)
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := loadWithin(t, []string{link}); err != nil {
		t.Fatalf("got %v, want the linked policy to load", err)
	}
}

// TestSecretsFileSpecial: a secrets file that is a FIFO or a symbolic link
// is refused at once (secrets_file error), never opened and waited on.
func TestSecretsFileSpecial(t *testing.T) {
	needRoot(t) // a secrets file is judged only once root owns it
	dir := t.TempDir()
	fifo := filepath.Join(dir, "secrets.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "secrets")
	writeFile(t, real, "API=x\n", 0o600)
	link := filepath.Join(dir, "secrets.link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, path, kind string }{
		{"fifo", fifo, "named pipe"},
		{"symlink", link, "symbolic link"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "p.yaml")
			src := "secrets_file: " + tc.path + "\n" + strings.Replace(minimalPolicy, "roles: [viewer]}", "roles: [viewer], env: {secrets: {API_KEY: API}}}", 1)
			writeFile(t, p, src, 0o600)
			_, err := loadWithin(t, []string{p})
			var el ErrorList
			if !errors.As(err, &el) || !hasCode(el, CodeSecretsFile, tc.kind) {
				t.Errorf("got %v, want a %s error naming a %s", err, CodeSecretsFile, tc.kind)
			}
		})
	}
}

// TestOpenRegularDescriptor: what OpenRegular returns is a plain blocking
// read descriptor of the file that was checked (no O_NONBLOCK left from a
// probe: a lease or oplock must make a read wait, not fail).
func TestOpenRegularDescriptor(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	writeFile(t, p, minimalPolicy, 0o600)
	f, err := OpenRegular(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 || fl&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("flags %#x: want O_RDONLY without O_NONBLOCK", fl)
	}
	data := make([]byte, len(minimalPolicy)+1)
	if n, _ := f.Read(data); string(data[:n]) != minimalPolicy {
		t.Errorf("read %q, want the file's content", data[:n])
	}
}

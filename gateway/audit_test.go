package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func newTestAuditor(t *testing.T, path string) *Auditor {
	t.Helper()
	a, err := NewAuditor(AuditConfig{Path: path})
	if err != nil {
		t.Fatalf("NewAuditor(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// readLines parses every line of path as an Event, failing on invalid JSON.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s:%d: invalid JSON %q: %v", path, n, sc.Text(), err)
		}
		out = append(out, m)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s does not end with a newline", path)
	}
	return out
}

func TestAuditRecordConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	const workers, each = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := Event{Type: EventDecision, RequestID: fmt.Sprintf("r-%d-%d", w, i), Allowed: AuditBool(i%2 == 0)}
				if err := a.Record(context.Background(), ev); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Record: %v", err)
	}
	st := a.Stats()
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	seen := map[string]int{}
	for _, m := range readLines(t, path) {
		seen[m["request_id"].(string)]++
	}
	for w := range workers {
		for i := range each {
			id := fmt.Sprintf("r-%d-%d", w, i)
			if seen[id] != 1 {
				t.Errorf("line %s present %d times, want 1", id, seen[id])
			}
		}
	}
	if len(seen) != workers*each {
		t.Errorf("got %d distinct lines, want %d", len(seen), workers*each)
	}
	if st.Lines != workers*each {
		t.Errorf("Stats.Lines = %d, want %d", st.Lines, workers*each)
	}
	if st.Syncs >= st.Lines {
		t.Errorf("fsyncs = %d for %d lines: no group commit", st.Syncs, st.Lines)
	}
	t.Logf("%d lines, %d fsyncs (%.1f lines per fsync)", st.Lines, st.Syncs, float64(st.Lines)/float64(st.Syncs))
}

func TestAuditLineGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	at := time.Date(2026, 11, 23, 18, 0, 0, 123456000, time.FixedZone("CET", 3600))
	events := []Event{
		{Time: at, Type: EventAuthSuccess, RequestID: "req-1", Subject: "alice", Roles: []string{"operator"},
			RemoteIP: "192.0.2.7", UserAgent: "curl/8.5.0", AuthMethod: "jwt", KeyID: "k1"},
		{Time: at, Type: EventDecision, RequestID: "req-1", DecisionID: "dec-1", Subject: "alice",
			Roles: []string{"operator"}, RemoteIP: "192.0.2.7", PolicyHash: "sha256:abc", Command: "git",
			Args: []string{"log", "-n", "5", "/home/alice/repo"}, EnvKeys: []string{"GIT_PAGER"},
			Allowed: AuditBool(false), Reason: "flag_not_allowed", Message: "flag -p is not allowed",
			Rule:  &policy.RuleRef{ID: "commands.git.subcommands.log", File: "default.yaml", Line: 12, Col: 5},
			Trace: []policy.TraceStep{{Rule: policy.RuleRef{ID: "commands.git"}, Outcome: "match", Detail: "command git"}}},
		{Time: at, Type: EventExecEnd, RequestID: "req-2", DecisionID: "dec-2", SessionID: "run-2", Subject: "alice",
			Command: "true", ExitCode: AuditInt(0), DurationMS: 41, StartLatencyMS: 30, StdoutBytes: 0,
			StderrBytes: 12, StderrTruncated: true, EndedBy: "exit"},
		{Time: at, Type: EventPolicyReload, PolicyHash: "sha256:abc", Result: "failure",
			PolicyErrors: []string{"policies/x.yaml:3:1: unknown key \"comands\""}, Error: "1 error"},
	}
	for _, ev := range events {
		if err := a.Record(context.Background(), ev); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "audit_lines.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("audit lines differ from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestAuditReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a := newTestAuditor(t, path)
	ctx := context.Background()
	if err := a.Record(ctx, Event{Type: EventServerStart, RequestID: "before"}); err != nil {
		t.Fatal(err)
	}
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if err := a.Record(ctx, Event{Type: EventServerStop, RequestID: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ids := func(p string) []string {
		var out []string
		for _, m := range readLines(t, p) {
			out = append(out, m["request_id"].(string))
		}
		return out
	}
	if got, want := strings.Join(ids(rotated), ","), "before"; got != want {
		t.Errorf("rotated file holds %q, want %q", got, want)
	}
	if got, want := strings.Join(ids(path), ","), "after"; got != want {
		t.Errorf("new file holds %q, want %q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("new audit file mode = %o, want 600", perm)
	}
}

// TestAuditFollowsPath: when the file is renamed or deleted without a
// SIGUSR1, the next line goes to a new file at the configured path, not to
// a file nobody looks at.
func TestAuditFollowsPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	ctx := context.Background()
	record := func(id string) {
		t.Helper()
		if err := a.Record(ctx, Event{Type: EventDecision, RequestID: id}); err != nil {
			t.Fatalf("Record %s: %v", id, err)
		}
	}
	record("first")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	record("after-rename")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	record("after-delete")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{{path + ".1", "first"}, {path, "after-delete"}} {
		lines := readLines(t, tt.file)
		if len(lines) != 1 || lines[0]["request_id"] != tt.want {
			t.Errorf("%s holds %v, want just %s", tt.file, lines, tt.want)
		}
	}
}

// TestAuditRotateUnderLoad rotates (rename + Reopen) while many goroutines
// record: every acknowledged line is in exactly one of the files, once.
func TestAuditRotateUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a := newTestAuditor(t, path)
	const workers, each, rotations = 16, 60, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := a.Record(context.Background(), Event{Type: EventDecision, RequestID: fmt.Sprintf("%d-%d", w, i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	for r := range rotations {
		time.Sleep(2 * time.Millisecond)
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		if err := a.Reopen(); err != nil {
			t.Fatalf("Reopen: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Record: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	seen, files := rotatedLines(t, path, func(m map[string]any) string { return m["request_id"].(string) })
	for w := range workers {
		for i := range each {
			if id := fmt.Sprintf("%d-%d", w, i); seen[id] != 1 {
				t.Errorf("line %s found %d times across %d files, want 1", id, seen[id], files)
			}
		}
	}
}

// rotatedLines counts the lines of path and of its rotated copies
// (path.*) by key(line); it also returns how many files it read.
func rotatedLines(t *testing.T, path string, key func(map[string]any) string) (map[string]int, int) {
	t.Helper()
	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range files {
		for _, m := range readLines(t, f) {
			seen[key(m)]++
		}
	}
	return seen, len(files)
}

func TestAuditDevFullFails(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no /dev/full: %v (with CI set: fails)", err)
		}
		t.Fatalf("no /dev/full under CI: %v", err)
	}
	a, err := NewAuditor(AuditConfig{Path: "/dev/full"})
	if err != nil {
		t.Fatalf("NewAuditor(/dev/full): %v", err)
	}
	defer func() { _ = a.Close() }()
	err = a.Record(context.Background(), Event{Type: EventDecision, RequestID: "r"})
	if !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("Record on /dev/full: got %v, want ErrAuditUnavailable", err)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Record on /dev/full: got %v, want ENOSPC inside", err)
	}
	var ae *AuditError
	if !errors.As(err, &ae) || ae.Op != "write" {
		t.Errorf("got %#v, want *AuditError with Op write", err)
	}
	if err := a.Writable(); !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("Writable after failure: got %v, want ErrAuditUnavailable", err)
	}
}

func TestAuditFileReplacedByDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	ctx := context.Background()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("Reopen onto a directory: got %v, want ErrAuditUnavailable wrapping EISDIR", err)
	}
	if err := a.Writable(); !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("Writable: got %v, want ErrAuditUnavailable", err)
	}
	if err := a.Record(ctx, Event{Type: EventDecision, RequestID: "lost"}); !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("Record: got %v, want ErrAuditUnavailable", err)
	}
	// The operator fixes it: the next write reopens and succeeds.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := a.Writable(); err != nil {
		t.Errorf("Writable after repair: %v", err)
	}
	if err := a.Record(ctx, Event{Type: EventDecision, RequestID: "kept"}); err != nil {
		t.Errorf("Record after repair: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 1 || lines[0]["request_id"] != "kept" {
		t.Errorf("got lines %v, want just request_id kept", lines)
	}
}

func TestAuditOpenRefusals(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.log")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
	}{
		{"symlink", link},
		{"directory", dir},
		{"missing parent", filepath.Join(dir, "no", "such", "audit.log")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAuditor(AuditConfig{Path: tt.path})
			if err == nil {
				_ = a.Close()
				t.Fatalf("NewAuditor(%s): got nil error, want ErrAuditUnavailable", tt.path)
			}
			if !errors.Is(err, ErrAuditUnavailable) {
				t.Errorf("got %v, want ErrAuditUnavailable", err)
			}
		})
	}
}

// TestAuditDiskFull fills a small real tmpfs: the failing write is refused,
// its partial line removed, and writing resumes once space is freed.
func TestAuditDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=64k"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("mount tmpfs (needs root): %v (with CI set: fails)", err)
		}
		t.Fatalf("mount tmpfs under CI: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "audit.log")
	a := newTestAuditor(t, path)
	ctx := context.Background()
	big := strings.Repeat("x", 3000)
	var okIDs []string
	var failed error
	for i := 0; i < 100 && failed == nil; i++ {
		id := fmt.Sprintf("r%d", i)
		if err := a.Record(ctx, Event{Type: EventDecision, RequestID: id, Message: big}); err != nil {
			failed = err
			break
		}
		okIDs = append(okIDs, id)
	}
	if !errors.Is(failed, ErrAuditUnavailable) || !errors.Is(failed, syscall.ENOSPC) {
		t.Fatalf("filling a 64k tmpfs: got %v, want ErrAuditUnavailable wrapping ENOSPC", failed)
	}
	// Free space (as log rotation would) and carry on.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path+".1", 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if err := a.Writable(); err != nil {
		t.Errorf("Writable after freeing space: %v", err)
	}
	if err := a.Record(ctx, Event{Type: EventDecision, RequestID: "after"}); err != nil {
		t.Fatalf("Record after freeing space: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path); len(got) != 1 || got[0]["request_id"] != "after" {
		t.Errorf("got %v, want one line request_id after", got)
	}
	if len(okIDs) == 0 {
		t.Errorf("no line fit before the disk filled")
	}
}

// TestAuditPartialWriteRemoved checks that a write cut short by a full disk
// leaves no broken line behind in the same file.
func TestAuditPartialWriteRemoved(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=16k"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("mount tmpfs (needs root): %v (with CI set: fails)", err)
		}
		t.Fatalf("mount tmpfs under CI: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "audit.log")
	a := newTestAuditor(t, path)
	ctx := context.Background()
	// 5000-byte lines: the fourth cannot fit in 16k and is written partially.
	msg := strings.Repeat("y", 5000)
	var ok int
	for i := range 10 {
		if err := a.Record(ctx, Event{Type: EventDecision, RequestID: fmt.Sprint(i), Message: msg}); err != nil {
			break
		}
		ok++
	}
	if err := a.Close(); err != nil && !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("Close: %v", err)
	}
	if got := len(readLines(t, path)); got != ok {
		t.Errorf("file holds %d valid lines, want the %d that were acknowledged", got, ok)
	}
}

func TestAuditCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := NewAuditor(AuditConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d-%d", w, i)
				err := a.Record(context.Background(), Event{Type: EventExecEnd, RequestID: id})
				if errors.Is(err, ErrAuditClosed) {
					return
				}
				if err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let the writers get going
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := a.Record(context.Background(), Event{Type: EventDecision}); !errors.Is(err, ErrAuditClosed) {
		t.Errorf("Record after Close: got %v, want ErrAuditClosed", err)
	}
	if err := a.Writable(); !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("Writable after Close: got %v, want ErrAuditUnavailable", err)
	}
	lines := readLines(t, path)
	inFile := map[string]bool{}
	for _, m := range lines {
		inFile[m["request_id"].(string)] = true
	}
	for id := range acked {
		if !inFile[id] {
			t.Errorf("acknowledged line %s missing from the file", id)
		}
	}
	if len(acked) == 0 {
		t.Errorf("no line acknowledged before Close")
	}
}

func TestAuditRecordCancelled(t *testing.T) {
	a := newTestAuditor(t, filepath.Join(t.TempDir(), "audit.log"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either outcome is allowed for a cancelled context, but never a hang or
	// an error other than ctx.Err().
	if err := a.Record(ctx, Event{Type: EventDecision}); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want nil or context.Canceled", err)
	}
}

func TestAuditRejectsTypelessEvent(t *testing.T) {
	a := newTestAuditor(t, filepath.Join(t.TempDir(), "audit.log"))
	if err := a.Record(context.Background(), Event{RequestID: "x"}); !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("got %v, want ErrAuditUnavailable for an event without a type", err)
	}
}

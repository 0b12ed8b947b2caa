package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// TestAuditMixedUnderRotation: Record and RecordAllWritten from many
// goroutines (each committing itself when the writer is idle, or queued),
// while the log is rotated with Reopen and renamed behind the Auditor's
// back: every call that succeeded has its lines exactly once across the
// files, and no call fails.
func TestAuditMixedUnderRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a := newTestAuditor(t, path)
	const workers, each, rotations = 12, 60, 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("%d-%d", w, i)
				if (w+i)%2 == 0 {
					if err := a.Record(context.Background(), Event{Type: EventDecision, RequestID: id}); err != nil {
						errs <- fmt.Errorf("Record %s: %w", id, err)
					}
					continue
				}
				commit, err := a.RecordAllWritten(context.Background(),
					Event{Type: EventDecision, RequestID: id}, Event{Type: EventExecStart, RequestID: id})
				if err != nil {
					errs <- fmt.Errorf("RecordAllWritten %s: %w", id, err)
					continue
				}
				if err := commit(context.Background()); err != nil {
					errs <- fmt.Errorf("commit %s: %w", id, err)
				}
			}
		})
	}
	for r := range rotations {
		// After a silent rename the file comes back with the next commit.
		for i := 0; i < 2000 && !exists(path); i++ {
			time.Sleep(time.Millisecond)
		}
		if !exists(path) {
			break // the workers are done
		}
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		if r%2 == 0 { // a rotation that says so; the others are found by the path check
			if err := a.Reopen(); err != nil {
				t.Fatalf("Reopen: %v", err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	seen, files := rotatedLines(t, path, func(m map[string]any) string { return fmt.Sprint(m["type"], " ", m["request_id"]) })
	for w := range workers {
		for i := range each {
			id := fmt.Sprintf("%d-%d", w, i)
			want := map[string]int{"decision " + id: 1, "exec_start " + id: (w + i) % 2}
			for k, n := range want {
				if seen[k] != n {
					t.Errorf("line %q found %d times across %d files, want %d", k, seen[k], files, n)
				}
			}
		}
	}
}

// TestAuditReqResult: a line is durable when the fsync that covered it
// succeeded; a line RecordAllWritten wrote to a file that was closed before
// the writer synced it is judged by that file's final fsync, not by the
// fsync of the file that replaced it.
func TestAuditReqResult(t *testing.T) {
	syncFailed := &AuditError{Op: "sync", Path: "old", Err: syscall.EIO}
	batchFailed := &AuditError{Op: "sync", Path: "new", Err: syscall.ENOSPC}
	open := &auditFile{}
	closedOK := &auditFile{closed: true}
	closedBad := &auditFile{closed: true, syncErr: syncFailed}
	cases := []struct {
		name     string
		file     *auditFile
		batchErr error
		want     error
	}{
		{"queued line, batch synced", nil, nil, nil},
		{"queued line, batch failed", nil, batchFailed, batchFailed},
		{"written to the open file, synced", open, nil, nil},
		{"written to the open file, sync failed", open, batchFailed, batchFailed},
		{"written to a closed file whose final sync succeeded, new file failed", closedOK, batchFailed, nil},
		{"written to a closed file whose final sync failed, new file synced", closedBad, nil, syncFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &auditReq{file: tc.file, wrote: tc.file != nil}
			if got := r.result(tc.batchErr); !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAuditCloseFileRecordsSync: closing the log (a rotation, Close)
// records on the file how its final fsync went.
func TestAuditCloseFileRecordsSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	a.wmu.Lock()
	f := a.f
	err := a.closeFile()
	a.wmu.Unlock()
	if err != nil {
		t.Fatalf("closeFile: %v", err)
	}
	if !f.closed || f.syncErr != nil {
		t.Errorf("after closeFile: closed %v, syncErr %v; want true, nil", f.closed, f.syncErr)
	}
	if err := a.Record(context.Background(), Event{Type: EventDecision, RequestID: "after"}); err != nil {
		t.Fatalf("Record after the file was closed: %v (the next commit must reopen it)", err)
	}
	if lines := readLines(t, path); len(lines) != 1 || lines[0]["request_id"] != "after" {
		t.Errorf("lines: got %v, want the one line", lines)
	}
}

// TestAuditNoBlankLineAfterPartial: after a failed write whose partial
// line could not be cut off (needNL), the next lines start on a new line
// once, and no later write adds an empty line, whoever writes them.
func TestAuditNoBlankLineAfterPartial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	a.wmu.Lock()
	_, _ = a.f.WriteString(`{"partial":`)
	a.needNL = true // as dropPartial leaves it when the truncate fails
	a.wmu.Unlock()
	for i := range 3 {
		id := fmt.Sprint("r", i)
		commit, err := a.RecordAllWritten(context.Background(), Event{Type: EventDecision, RequestID: id}, Event{Type: EventExecStart, RequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.Record(context.Background(), Event{Type: EventExecEnd, RequestID: id}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 10 || lines[0] != `{"partial":` {
		t.Fatalf("got %d lines %q, want the partial line and 9 more", len(lines), lines)
	}
	for i, l := range lines[1:] {
		if l == "" {
			t.Errorf("line %d is empty:\n%s", i+2, data)
		}
	}
}

// TestAuditStalledFIFOKeepsCtx: the audit log is a FIFO whose reader has
// stopped (its pipe is full), so every write blocks. A Record still ends
// with its ctx (nobody commits by itself to a non-regular file), and once
// Close began a Record fails at once with ErrAuditClosed.
func TestAuditStalledFIFOKeepsCtx(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // the stalled reader
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, err := NewAuditor(AuditConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	// Fill the pipe with raw non-blocking writes (an *os.File would wait
	// in the poller instead of failing with EAGAIN).
	fill, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := syscall.Write(fill, make([]byte, 4096)); err != nil {
			break
		}
	}
	syscall.Close(fill)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Record(ctx, Event{Type: EventDecision, RequestID: "stalled"}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Record on a stalled FIFO: got %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Record on a stalled FIFO did not end with its ctx")
	}
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }() // waits for the stalled write
	// Until Close has begun: then a Record fails at once.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := a.Record(ctx, Event{Type: EventDecision, RequestID: "late"})
		cancel()
		if errors.Is(err, ErrAuditClosed) {
			break
		}
		if i == 250 {
			t.Fatalf("Record during Close: got %v, want ErrAuditClosed", err)
		}
	}
	// Drain the pipe: the writer finishes and Close returns.
	go func() {
		buf := make([]byte, 1<<16)
		for {
			if _, err := r.Read(buf); err != nil && !errors.Is(err, syscall.EAGAIN) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the pipe was drained")
	}
}

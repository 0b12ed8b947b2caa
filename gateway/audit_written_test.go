package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestAuditRecordAllWritten: under concurrency every call that reports
// its lines written returns a commit, every commit succeeds, and every
// pair of lines is in the file, in order.
func TestAuditRecordAllWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := newTestAuditor(t, path)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("r-%d-%d", w, i)
				commit, err := a.RecordAllWritten(context.Background(),
					Event{Type: EventDecision, RequestID: id}, Event{Type: EventExecStart, RequestID: id})
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", id, err)
				case commit == nil:
					errs <- fmt.Errorf("%s: no error and no commit", id)
				default:
					if err := commit(context.Background()); err != nil {
						errs <- fmt.Errorf("%s: commit: %w", id, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	lines := readLines(t, path)
	if got, want := len(lines), 2*workers*each; got != want {
		t.Fatalf("lines: got %d, want %d", got, want)
	}
	seen := map[any]bool{}
	for _, l := range lines {
		switch l["type"] {
		case EventDecision:
			seen[l["request_id"]] = true
		case EventExecStart:
			if !seen[l["request_id"]] {
				t.Errorf("exec_start of %v before its decision", l["request_id"])
			}
		}
	}
}

// TestAuditRecordAllWrittenFailures: a failed write returns an error and
// no commit; a failed sync returns a commit that fails.
func TestAuditRecordAllWrittenFailures(t *testing.T) {
	ev := Event{Type: EventDecision, RequestID: "x"}
	t.Run("write fails", func(t *testing.T) {
		a := newTestAuditor(t, "/dev/full")
		commit, err := a.RecordAllWritten(context.Background(), ev)
		if err == nil || commit != nil {
			t.Errorf("got commit %v, err %v; want an error and no commit", commit != nil, err)
		}
	})
	t.Run("sync fails", func(t *testing.T) {
		fifo := unsyncableFile(t)
		a := newTestAuditor(t, fifo)
		commit, err := a.RecordAllWritten(context.Background(), ev)
		if err != nil || commit == nil {
			t.Fatalf("got commit %v, err %v; want the lines written and a commit", commit != nil, err)
		}
		if err := commit(context.Background()); err == nil {
			t.Error("commit on a FIFO: got nil, want the fsync's error")
		}
	})
}

// unsyncableFile returns a FIFO that takes writes (a reader drains it until
// the test ends) but fails every fsync (EINVAL): an audit log whose lines
// are written and never made durable.
func unsyncableFile(t *testing.T) string {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var drained sync.WaitGroup
	drained.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, _ := rd.Read(buf); n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	t.Cleanup(func() { close(stop); drained.Wait(); rd.Close() })
	return fifo
}

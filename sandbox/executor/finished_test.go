package executor

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// TestFinishedBeforeTeardown: Job.Finished delivers the final result with
// all output already written, while the sandbox is still tearing down.
func TestFinishedBeforeTeardown(t *testing.T) {
	const teardown = 400 * time.Millisecond
	h := newHarness(t, me())
	h.sb.teardown = teardown
	c := h.client(t)
	var out bytes.Buffer
	var atFinish string
	var finishedAt time.Time
	var got sandbox.Result
	var dec *policy.Decision
	_, res, err := c.Run(context.Background(), Job{ID: "fin-1", Request: req("echo", "hello"), Stdout: &out,
		Finished: func(d *policy.Decision, r sandbox.Result) {
			atFinish, finishedAt, got, dec = out.String(), time.Now(), r, d
		}})
	returned := time.Now()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if finishedAt.IsZero() {
		t.Fatal("Finished was not called")
	}
	if atFinish != "hello\n" {
		t.Errorf("output at Finished: got %q, want %q (complete)", atFinish, "hello\n")
	}
	if got != res {
		t.Errorf("Finished result: got %+v, want Run's %+v", got, res)
	}
	if dec == nil || !dec.Allowed || dec.Command != "echo" || len(dec.Env) != 0 {
		t.Errorf("Finished decision: got %+v, want the allowed echo decision without environment values", dec)
	}
	if gap := returned.Sub(finishedAt); gap < teardown*3/4 {
		t.Errorf("Run returned %v after Finished, want about the teardown (%v) later", gap, teardown)
	}
}

// TestFinishedNotForDenied: a denied job never reports Finished.
func TestFinishedNotForDenied(t *testing.T) {
	c := newHarness(t, me()).client(t)
	called := false
	_, _, err := c.Run(context.Background(), Job{ID: "fin-deny", Request: req("rm", "-rf", "/"),
		Finished: func(*policy.Decision, sandbox.Result) { called = true }})
	if err == nil || called {
		t.Errorf("denied job: got err %v, Finished called %v; want a denial and no Finished", err, called)
	}
}

// TestFinishedFrameOrder: on the wire, every data frame precedes the
// finished frame, which precedes the result frame.
func TestFinishedFrameOrder(t *testing.T) {
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.handshake()
	r.start(1, startMsg{ID: "order", Request: toWire(req("echo", "x"))})
	r.frame(grantFrame(1, streamStdout, 1024))
	var seq []frameType
	for {
		f, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == frameData || f.Type == frameFinish || f.Type == frameResult {
			seq = append(seq, f.Type)
		}
		if f.Type == frameResult {
			break
		}
	}
	want := []frameType{frameData, frameFinish, frameResult}
	if len(seq) != len(want) {
		t.Fatalf("frames: got %v, want %v", seq, want)
	}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("frames: got %v, want %v", seq, want)
		}
	}
}

// TestDataAfterFinishedIsProtocolError: a lying executor that sends output
// after its finished frame ends the connection (the front already
// answered with the output it had).
func TestDataAfterFinishedIsProtocolError(t *testing.T) {
	c := &Client{jobs: map[uint64]*clientJob{}, next: 1}
	j := &clientJob{num: 1, stdout: newInbox(), stderr: newInbox(), result: make(chan clientOutcome, 1),
		started: make(chan *policy.Decision, 1), finished: make(chan resultMsg, 1)}
	j.stdout.addGrant(1024)
	c.jobs[1] = j
	fin, err := marshalResult(resultMsg{Decision: policy.Decision{Allowed: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.dispatch(frame{Type: frameFinish, Job: 1, Payload: fin}); err != nil {
		t.Fatalf("finished frame: %v", err)
	}
	if err := c.dispatch(frame{Type: frameData, Stream: streamStdout, Job: 1, Payload: []byte("late")}); err == nil {
		t.Error("data after finished: got no error, want a protocol error")
	}
	if err := c.dispatch(frame{Type: frameFinish, Job: 1, Payload: fin}); err == nil {
		t.Error("second finished frame: got no error, want a protocol error")
	}
}

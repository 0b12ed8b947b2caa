package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// finishProbe records what a Job.Finished callback saw.
type finishProbe struct {
	calls     int
	res       sandbox.Result
	out       string
	listed    []string // the Runner's own listing at Finished
	executor  []string // the executor's (Local's) listing at Finished
	runReturn bool     // Run had returned already (must not)
}

func ids(jobs []RunningJob) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

// TestFinishedBeforeResult: over the socket and in-process, Job.Finished
// gets the final result with all output written, once, before Run
// returns; the job is still listed (and holds its slot) at that point.
func TestFinishedBeforeResult(t *testing.T) {
	for _, overSocket := range []bool{true, false} {
		name := map[bool]string{true: "client over the socket", false: "local"}[overSocket]
		t.Run(name, func(t *testing.T) {
			// The teardown (here: Run returning) waits until the test has
			// looked at the listings from Finished.
			gs := &gateSandbox{inner: newProcSandbox(), release: make(chan struct{})}
			h := newHarnessWith(t, gs, me())
			var r Runner = h.local
			var sessions Sessions = h.local
			if overSocket {
				c := h.client(t)
				r, sessions = c, c
			}
			var out bytes.Buffer
			var p finishProbe
			returned := false
			job := Job{ID: "fin-1", Request: req("echo", "all", "output"), Stdout: &out,
				Finished: func(res sandbox.Result) {
					p.calls++
					p.res, p.out, p.runReturn = res, out.String(), returned
					p.listed, p.executor = ids(sessions.List()), ids(h.local.List())
					close(gs.release)
				}}
			_, res, err := r.Run(context.Background(), job)
			returned = true
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if p.calls != 1 || p.runReturn {
				t.Fatalf("Finished called %d times (after Run returned: %v), want once before", p.calls, p.runReturn)
			}
			if p.res != res || p.out != "all output\n" {
				t.Errorf("at Finished: got %+v output %q, want %+v and %q", p.res, p.out, res, "all output\n")
			}
			if len(p.listed) != 1 || p.listed[0] != job.ID || len(p.executor) != 1 {
				t.Errorf("at Finished: listed %v, executor %v; want the job still listed on both", p.listed, p.executor)
			}
			if l := sessions.List(); len(l) != 0 {
				t.Errorf("after Run: still listed %v", ids(l))
			}
		})
	}
}

// gateSandbox is a Sandbox whose teardown (the time between Finished and
// Run returning) lasts until release is closed.
type gateSandbox struct {
	inner   Sandbox
	release chan struct{}
}

func (g *gateSandbox) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	res, err := g.inner.Run(ctx, spec)
	<-g.release
	return res, err
}

// TestFinishedFrameOrder: on the wire the finished frame comes after the
// job's last data frame and before its result frame, once.
func TestFinishedFrameOrder(t *testing.T) {
	h := newHarness(t, me())
	r := newRawFront(t, h.conn)
	r.handshake()
	r.start(1, startMsg{ID: "order-1", Request: toWire(req("echo", "x"))})
	r.frame(grantFrame(1, streamStdout, DefaultOutputWindow))
	var seq []frameType
	var fin sandbox.Result
	for {
		f, err := r.next()
		if err != nil {
			t.Fatalf("read: %v (so far %v)", err, seq)
		}
		if f.Job != 1 || f.Type == frameWindow {
			continue
		}
		seq = append(seq, f.Type)
		if f.Type == frameFinished {
			if err := decodeStrict(f.Payload, &fin); err != nil {
				t.Fatalf("finished payload %q: %v", f.Payload, err)
			}
		}
		if f.Type == frameResult || f.Type == frameError {
			break
		}
	}
	iFin, iData, nFin := -1, -1, 0
	for i, ft := range seq {
		switch ft {
		case frameFinished:
			iFin = i
			nFin++
		case frameData:
			iData = i
		}
	}
	if nFin != 1 || iData < 0 || iFin < iData || seq[len(seq)-1] != frameResult || seq[0] != frameStarted {
		t.Errorf("frames %v: want started, data..., one finished after the last data, result last", seq)
	}
	if fin.ExitCode != 0 || fin.EndedBy != sandbox.EndedExit {
		t.Errorf("finished result %+v, want exit 0 ended by exit", fin)
	}
}

// TestClientFinishedFrameRules: the front refuses output after the
// finished frame, a second finished frame and a bad payload.
func TestClientFinishedFrameRules(t *testing.T) {
	fin, _ := json.Marshal(sandbox.Result{EndedBy: sandbox.EndedExit})
	tests := []struct {
		name   string
		frames []frame
	}{
		{"data after finished", []frame{{Type: frameFinished, Job: 1, Payload: fin}, {Type: frameData, Stream: streamStdout, Job: 1, Payload: []byte("late")}}},
		{"finished twice", []frame{{Type: frameFinished, Job: 1, Payload: fin}, {Type: frameFinished, Job: 1, Payload: fin}}},
		{"bad payload", []frame{{Type: frameFinished, Job: 1, Payload: []byte(`{"exit_code":"x"}`)}}},
		{"unknown field", []frame{{Type: frameFinished, Job: 1, Payload: []byte(`{"exit_code":0,"extra":1}`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{jobs: map[uint64]*clientJob{}, byID: map[string]*clientJob{}, next: 1}
			j := &clientJob{num: 1, stdout: newInbox(), stderr: newInbox(), result: make(chan clientOutcome, 1),
				started: make(chan *policy.Decision, 1), finished: make(chan sandbox.Result, 1)}
			j.stdout.addGrant(DefaultOutputWindow)
			c.jobs[1] = j
			var err error
			for _, f := range tt.frames {
				if err = c.dispatch(f); err != nil {
					break
				}
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Errorf("got %v, want a *ProtocolError", err)
			}
		})
	}
}

// TestE2EFinishedBeforeTeardown: with the real sandbox over the socket,
// the result arrives (Finished) before Run returns, with the output.
func TestE2EFinishedBeforeTeardown(t *testing.T) {
	m := newRealSandbox(t)
	c := newHarnessWith(t, m, me()).client(t)
	var out bytes.Buffer
	var p finishProbe
	returned := false
	job := Job{ID: "e2e-fin", Request: req("echo", "final"), Stdout: &out, Finished: func(res sandbox.Result) {
		p.calls++
		p.res, p.out, p.runReturn, p.listed = res, out.String(), returned, ids(c.List())
	}}
	_, res, err := c.Run(context.Background(), job)
	returned = true
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p.calls != 1 || p.runReturn || p.res != res || p.out != "final\n" || len(p.listed) != 1 {
		t.Errorf("Finished: %d calls, after return %v, result %+v (Run: %+v), output %q, listed %v; want one call before the return with the same result, %q and the job listed",
			p.calls, p.runReturn, p.res, res, p.out, p.listed, "final\n")
	}
}

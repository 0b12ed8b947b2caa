package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox"
)

// Run sends the job to the executor and streams it. It returns once the
// executor's result has arrived and all output was written to the job's
// writers. Cancelling ctx kills the job (the result then says "killed").
// A job's Stdin is read by a goroutine that ends at the reader's next
// return after the job has ended; callers close their readers.
func (c *Client) Run(ctx context.Context, job Job) (*policy.Decision, sandbox.Result, error) {
	// Job numbers must reach the executor in increasing order: allocate
	// and send under one lock (never held by the read loop).
	c.startMu.Lock()
	j, err := c.register(job)
	if err != nil {
		c.startMu.Unlock()
		return nil, sandbox.Result{}, err
	}
	defer c.unregister(j)
	if err := c.sendStart(j, job); err != nil {
		c.abandon(j, err)
	}
	c.startMu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pumpOut(j, streamStdout, j.stdout, job.Stdout) }()
	go func() { defer wg.Done(); c.pumpOut(j, streamStderr, j.stderr, job.Stderr) }()
	if job.Stdin != nil {
		go c.pumpIn(j, job.Stdin)
	}
	o := c.control(ctx, j, job, &wg)
	wg.Wait()
	if o.err != nil {
		var de *DeniedError
		if errors.As(o.err, &de) {
			return &de.Decision, sandbox.Result{}, o.err
		}
		return nil, sandbox.Result{}, o.err
	}
	d := o.res.Decision
	if o.res.Err != nil {
		return &d, o.res.Result, fmt.Errorf("run job %s: %w", job.ID, o.res.Err.toError())
	}
	return &d, o.res.Result, nil
}

// register allocates a job number and the job's flow-control state.
func (c *Client) register(job Job) (*clientJob, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.closed {
		return nil, fmt.Errorf("run job %s: %w", job.ID, ErrClosed)
	}
	c.next++
	j := &clientJob{
		num: c.next, stdout: newInbox(), stderr: newInbox(), result: make(chan clientOutcome, 1),
		started: make(chan *policy.Decision, 1), finished: make(chan resultMsg, 1),
		info: RunningJob{ID: job.ID, Subject: job.Request.Subject, Command: commandOf(job.Request), Started: time.Now()},
	}
	if job.Stdin != nil {
		j.stdin = newCredit()
	}
	j.stdout.addGrant(DefaultOutputWindow)
	j.stderr.addGrant(DefaultOutputWindow)
	c.jobs[j.num] = j
	if _, dup := c.byID[job.ID]; !dup {
		c.byID[job.ID] = j
	}
	return j, nil
}

func (c *Client) unregister(j *clientJob) {
	c.mu.Lock()
	delete(c.jobs, j.num)
	if c.byID[j.info.ID] == j {
		delete(c.byID, j.info.ID)
	}
	c.mu.Unlock()
}

// abandon ends a job that could not be sent.
func (c *Client) abandon(j *clientJob, err error) {
	c.mu.Lock()
	delete(c.jobs, j.num)
	c.mu.Unlock()
	j.finish(clientOutcome{err: fmt.Errorf("send job: %w (%w)", err, ErrClosed)})
}

func (c *Client) sendStart(j *clientJob, job Job) error {
	m := startMsg{ID: job.ID, Request: toWire(job.Request), TimeoutNS: int64(job.Timeout),
		MaxOutputBytes: job.MaxOutputBytes, Stdin: job.Stdin != nil}
	if err := sendJSON(c.w, frameStart, j.num, m); err != nil {
		return err
	}
	if err := c.w.send(grantFrame(j.num, streamStdout, DefaultOutputWindow)); err != nil {
		return err
	}
	return c.w.send(grantFrame(j.num, streamStderr, DefaultOutputWindow))
}

// control forwards cancellation, resizes and signals until the outcome
// arrives, and returns it. On a finished frame it waits for pumps (the
// output writers) to take the last output, then calls job.Finished.
func (c *Client) control(ctx context.Context, j *clientJob, job Job, pumps *sync.WaitGroup) clientOutcome {
	done, resize, signals := ctx.Done(), job.Resize, job.Signal
	started := func(d *policy.Decision) {
		if job.Started != nil {
			job.Started(d)
		}
	}
	// Frames arrive in order (started, finished, result) but the channels
	// are read by one select: deliver what came earlier first.
	pending := func() {
		select {
		case d := <-j.started:
			started(d)
		default:
		}
	}
	finished := func(m resultMsg) {
		pending()
		pumps.Wait()
		if job.Finished != nil {
			job.Finished(&m.Decision, m.Result)
		}
	}
	for {
		select {
		case o := <-j.result:
			pending()
			select {
			case m := <-j.finished:
				finished(m)
			default:
			}
			return o
		case d := <-j.started:
			started(d)
		case m := <-j.finished:
			finished(m)
		case <-done:
			done = nil
			c.sendCtl(frame{Type: frameSignal, Job: j.num, Payload: []byte{sigKILL}})
		case ws, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			c.sendCtl(frame{Type: frameResize, Job: j.num, Payload: resizePayload(ws.Rows, ws.Cols)})
		case sig, ok := <-signals:
			if !ok {
				signals = nil
				continue
			}
			if code := signalCode(sig); code != 0 {
				c.sendCtl(frame{Type: frameSignal, Job: j.num, Payload: []byte{code}})
			}
		}
	}
}

func (c *Client) sendCtl(f frame) {
	if err := c.w.send(f); err != nil {
		c.log.Debug("executor control frame", "error", err)
	}
}

// pumpOut writes one output stream to its writer and grants the executor
// new credit only for what was written: a slow writer stops the flow.
func (c *Client) pumpOut(j *clientJob, s streamID, in *inbox, w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	buf := make([]byte, MaxData)
	for {
		n, done, _ := in.read(context.Background(), buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil && w != io.Discard {
				c.log.Debug("job output writer failed; killing the job", "request_id", j.info.ID, "error", err)
				w = io.Discard
				c.sendCtl(frame{Type: frameSignal, Job: j.num, Payload: []byte{sigKILL}})
			}
			in.addGrant(n)
			c.sendCtl(grantFrame(j.num, s, n))
		}
		if done {
			return
		}
	}
}

// pumpIn sends stdin as the executor grants credit, then closes it.
func (c *Client) pumpIn(j *clientJob, r io.Reader) {
	buf := make([]byte, MaxData)
	for {
		n, err := j.stdin.take(context.Background(), MaxData)
		if err != nil {
			return // the job has ended
		}
		got, rerr := r.Read(buf[:n])
		if got < n {
			j.stdin.refund(n - got)
		}
		if got > 0 {
			if err := c.w.send(frame{Type: frameData, Stream: streamStdin, Job: j.num, Payload: buf[:got]}); err != nil {
				return
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				c.log.Debug("job stdin failed; closing it", "request_id", j.info.ID, "error", rerr)
			}
			c.sendCtl(frame{Type: frameClose, Stream: streamStdin, Job: j.num})
			return
		}
	}
}

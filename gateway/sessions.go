package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// session is one running command.
type session struct {
	ID      string    `json:"id"`
	Subject string    `json:"subject"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`

	cancel context.CancelFunc
	out    atomic.Int64
	ending bool // finished, its sandbox being torn down (guarded by the table's mu)
}

// sessionInfo is a session as /v1/sessions shows it.
type sessionInfo struct {
	ID          string    `json:"id"`
	Subject     string    `json:"subject"`
	Command     string    `json:"command"`
	Started     time.Time `json:"started"`
	OutputBytes int64     `json:"output_bytes"`
	// State is "running", or "ending" once the command has ended and its
	// sandbox is being torn down (it still holds its slots; it cannot be
	// killed).
	State string `json:"state"`
}

// endingWait is how long acquire waits for a slot that only sandboxes
// still being torn down hold: a client's next command right after its
// answer would otherwise meet its own previous run's teardown.
const endingWait = 2 * time.Second

// sessionTable caps running commands globally and per user and can kill
// them. A session is counted from acquire to release: while it runs and,
// after finish, while its sandbox is torn down ("ending"). Ending sessions
// still hold their slots (a sandbox exists until its teardown is over) and
// are listed as such, but cannot be killed (their command is over).
type sessionTable struct {
	mu         sync.Mutex
	max        int
	perUser    int
	byID       map[string]*session
	byUser     map[string]int
	ending     int            // how many of byID are ending
	endingUser map[string]int // ending sessions per subject
	idle       chan struct{}  // closed while no session exists; replaced on the first acquire
	freed      chan struct{}  // closed and replaced on every release
}

func newSessionTable(max, perUser int) *sessionTable {
	idle := make(chan struct{})
	close(idle)
	return &sessionTable{max: max, perUser: perUser, byID: map[string]*session{}, byUser: map[string]int{},
		endingUser: map[string]int{}, idle: idle, freed: make(chan struct{})}
}

// errTooManySessions is the 429 of a full table.
func errTooManySessions(err error) *HTTPError {
	return httpErr(http.StatusTooManyRequests, CodeTooManySessions, "too many commands running, retry later", err)
}

// acquire registers a command or refuses it when a cap is reached. When
// only ending sessions stand in the way it waits for their teardown, up to
// endingWait or until ctx ends.
func (t *sessionTable) acquire(ctx context.Context, id, subject, command string, cancel context.CancelFunc) (*session, error) {
	var deadline <-chan time.Time
	for {
		t.mu.Lock()
		s, wait, err := t.tryAcquire(id, subject, command, cancel)
		freed := t.freed
		t.mu.Unlock()
		if !wait {
			return s, err
		}
		if deadline == nil {
			timer := time.NewTimer(endingWait)
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-freed:
		case <-deadline:
			return nil, err
		case <-ctx.Done():
			return nil, err
		}
	}
}

// tryAcquire is one attempt of acquire under t.mu. wait says the refusal
// (err) is only due to ending sessions.
func (t *sessionTable) tryAcquire(id, subject, command string, cancel context.CancelFunc) (*session, bool, error) {
	n := t.byUser[subject]
	// A cap held by running commands refuses at once; one held only by
	// teardowns is waited for.
	if n-t.endingUser[subject] >= t.perUser {
		return nil, false, errTooManySessions(fmt.Errorf("per-user cap %d for %s", t.perUser, subject))
	}
	if len(t.byID)-t.ending >= t.max {
		return nil, false, errTooManySessions(fmt.Errorf("global cap %d", t.max))
	}
	if n >= t.perUser || len(t.byID) >= t.max {
		return nil, true, errTooManySessions(fmt.Errorf("caps held by %d sandboxes being torn down", t.ending))
	}
	if _, dup := t.byID[id]; dup {
		return nil, false, errors.New("duplicate session id")
	}
	if len(t.byID) == 0 {
		t.idle = make(chan struct{})
	}
	s := &session{ID: id, Subject: subject, Command: command, Started: time.Now(), cancel: cancel}
	t.byID[id] = s
	t.byUser[subject]++
	return s, false, nil
}

// finish marks a session whose command has ended and whose answer is on
// its way: it leaves the listing and can no longer be killed, but keeps
// its slots until release (the end of its sandbox's teardown).
func (t *sessionTable) finish(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[s.ID] != s || s.ending {
		return
	}
	s.ending = true
	t.ending++
	t.endingUser[s.Subject]++
}

// release removes a session (its sandbox is gone).
func (t *sessionTable) release(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[s.ID] != s {
		return
	}
	delete(t.byID, s.ID)
	if t.byUser[s.Subject]--; t.byUser[s.Subject] <= 0 {
		delete(t.byUser, s.Subject)
	}
	if s.ending {
		t.ending--
		if t.endingUser[s.Subject]--; t.endingUser[s.Subject] <= 0 {
			delete(t.endingUser, s.Subject)
		}
	}
	close(t.freed)
	t.freed = make(chan struct{})
	if len(t.byID) == 0 {
		close(t.idle)
	}
}

// list returns the sessions, oldest first.
func (t *sessionTable) list() []sessionInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]sessionInfo, 0, len(t.byID))
	for _, s := range t.byID {
		state := "running"
		if s.ending {
			state = "ending"
		}
		out = append(out, sessionInfo{ID: s.ID, Subject: s.Subject, Command: s.Command, Started: s.Started, OutputBytes: s.out.Load(), State: state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// count returns how many sandboxes exist: running or being torn down.
func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// kill cancels one running command; false if it is not running.
func (t *sessionTable) kill(id string) bool {
	t.mu.Lock()
	s := t.byID[id]
	if s != nil && s.ending {
		s = nil
	}
	t.mu.Unlock()
	if s == nil {
		return false
	}
	s.cancel()
	return true
}

// killAll cancels every running command and returns how many.
func (t *sessionTable) killAll() int {
	t.mu.Lock()
	list := make([]*session, 0, len(t.byID))
	for _, s := range t.byID {
		if !s.ending {
			list = append(list, s)
		}
	}
	t.mu.Unlock()
	for _, s := range list {
		s.cancel()
	}
	return len(list)
}

// wait returns once no session exists (nothing runs and every teardown is
// over), or with ctx's error.
func (t *sessionTable) wait(ctx context.Context) error {
	t.mu.Lock()
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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
}

// sessionInfo is a session as /v1/sessions shows it.
type sessionInfo struct {
	ID          string    `json:"id"`
	Subject     string    `json:"subject"`
	Command     string    `json:"command"`
	Started     time.Time `json:"started"`
	OutputBytes int64     `json:"output_bytes"`
}

// sessionTable caps running commands globally and per user and can kill them.
type sessionTable struct {
	mu      sync.Mutex
	max     int
	perUser int
	byID    map[string]*session
	byUser  map[string]int
	idle    chan struct{} // closed while nothing runs; replaced on the first start
}

func newSessionTable(max, perUser int) *sessionTable {
	idle := make(chan struct{})
	close(idle)
	return &sessionTable{max: max, perUser: perUser, byID: map[string]*session{}, byUser: map[string]int{}, idle: idle}
}

// errTooManySessions is the 429 of a full table.
func errTooManySessions(err error) *HTTPError {
	return httpErr(http.StatusTooManyRequests, CodeTooManySessions, "too many commands running, retry later", err)
}

// acquire registers a running command or refuses it when a cap is reached.
func (t *sessionTable) acquire(id, subject, command string, cancel context.CancelFunc) (*session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byID) >= t.max {
		return nil, errTooManySessions(fmt.Errorf("global cap %d", t.max))
	}
	if t.byUser[subject] >= t.perUser {
		return nil, errTooManySessions(fmt.Errorf("per-user cap %d for %s", t.perUser, subject))
	}
	if _, dup := t.byID[id]; dup {
		return nil, errors.New("duplicate session id")
	}
	if len(t.byID) == 0 {
		t.idle = make(chan struct{})
	}
	s := &session{ID: id, Subject: subject, Command: command, Started: time.Now(), cancel: cancel}
	t.byID[id] = s
	t.byUser[subject]++
	return s, nil
}

// release removes a finished command.
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
	if len(t.byID) == 0 {
		close(t.idle)
	}
}

func (t *sessionTable) list() []sessionInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]sessionInfo, 0, len(t.byID))
	for _, s := range t.byID {
		out = append(out, sessionInfo{ID: s.ID, Subject: s.Subject, Command: s.Command, Started: s.Started, OutputBytes: s.out.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// kill cancels one command; false if it is not running.
func (t *sessionTable) kill(id string) bool {
	t.mu.Lock()
	s := t.byID[id]
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
		list = append(list, s)
	}
	t.mu.Unlock()
	for _, s := range list {
		s.cancel()
	}
	return len(list)
}

// wait returns once nothing runs, or with ctx's error.
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

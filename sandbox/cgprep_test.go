package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitReady waits until p has an id ready (without taking it).
func waitReady(t *testing.T, p *cgroupPrep) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.ready) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no prepared cgroup after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// preparedIDs lists the container directories under dir, oldest first
// (the one ready to be taken was created first).
func preparedIDs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), containerPrefix) {
			ids = append(ids, e.Name())
		}
	}
	seqOf := func(id string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, containerPrefix))
		return n
	}
	sort.Slice(ids, func(i, j int) bool { return seqOf(ids[i]) < seqOf(ids[j]) })
	return ids
}

// TestCgroupPrepRun: on cgroup v1 the next run's directories exist in
// every hierarchy before it starts; the run uses them, its destroy removes
// them, the next set is prepared, and Close leaves nothing (newTestManager
// checks cgroups, state, mounts and goroutines).
func TestCgroupPrepRun(t *testing.T) {
	m := newTestManager(t)
	if m.cfg.CgroupVersion != 1 {
		if m.prep != nil {
			t.Fatal("cgroup v2: want no prep")
		}
		t.Skip("cgroup prep is cgroup v1 only")
	}
	waitReady(t, m.prep)
	ids := preparedIDs(t, filepath.Join(m.cgMounts[0], m.cfg.CgroupParent))
	if len(ids) == 0 {
		t.Fatal("no prepared directory")
	}
	id := ids[0]
	for _, mnt := range m.cgMounts {
		if st, err := os.Stat(filepath.Join(mnt, m.cfg.CgroupParent, id)); err != nil || !st.IsDir() {
			t.Fatalf("prepared %s: %v", filepath.Join(mnt, m.cfg.CgroupParent, id), err)
		}
	}
	res, err := m.Run(context.Background(), Spec{ID: "prep", Argv: []string{"/bin/true"}, Profile: testProfile()})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v, exit %d", err, res.ExitCode)
	}
	for _, mnt := range m.cgMounts {
		if _, err := os.Stat(filepath.Join(mnt, m.cfg.CgroupParent, id)); !os.IsNotExist(err) {
			t.Errorf("%s after its run: %v, want it removed", filepath.Join(mnt, m.cfg.CgroupParent, id), err)
		}
	}
	waitReady(t, m.prep)
	if next := preparedIDs(t, filepath.Join(m.cgMounts[0], m.cfg.CgroupParent)); len(next) == 0 || next[0] == id {
		t.Errorf("prepared after the run: %v, want a new one", next)
	}
}

// TestCgroupPrepStop (plain directories stand in for the hierarchies):
// stop removes the prepared set no run took and ends the goroutine.
func TestCgroupPrepStop(t *testing.T) {
	before := goleak.IgnoreCurrent()
	base := t.TempDir()
	mounts := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
	var seq atomic.Uint64
	p := newCgroupPrep(1, mounts, "/inst", func() string { return fmt.Sprintf("eg-%d", seq.Add(1)) }, slog.New(slog.DiscardHandler))
	waitReady(t, p)
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := p.stop(); err != nil { // idempotent
		t.Fatalf("second stop: %v", err)
	}
	for _, mnt := range mounts {
		ents, err := os.ReadDir(filepath.Join(mnt, "inst"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("%s after stop: %d entries, want 0", mnt, len(ents))
		}
	}
	if err := goleak.Find(before); err != nil {
		t.Error(err)
	}
}

// TestCgroupPrepCreateFails: a hierarchy where the directory cannot be
// created leaves nothing in the others, logs, prepares nothing, and stop
// still ends the goroutine.
func TestCgroupPrepCreateFails(t *testing.T) {
	before := goleak.IgnoreCurrent()
	base := t.TempDir()
	mounts := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
	if err := os.MkdirAll(mounts[1], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mounts[1], "inst"), nil, 0o600); err != nil { // the parent is a file
		t.Fatal(err)
	}
	var logs lockedBuffer
	var seq atomic.Uint64
	p := newCgroupPrep(1, mounts, "/inst", func() string { return fmt.Sprintf("eg-%d", seq.Add(1)) }, slog.New(slog.NewTextHandler(&logs, nil)))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "cgroup prep") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if id, ok := p.take(); ok {
		t.Errorf("got prepared id %s from a failing hierarchy", id)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(logs.String(), "creating the next run's cgroups failed") {
		t.Errorf("log: %q", logs.String())
	}
	ents, _ := os.ReadDir(filepath.Join(mounts[0], "inst"))
	if len(ents) != 0 {
		t.Errorf("%d directories left in the first hierarchy, want 0", len(ents))
	}
	if err := goleak.Find(before); err != nil {
		t.Error(err)
	}
}

// TestCgroupPrepV2: no prep on cgroup v2.
func TestCgroupPrepV2(t *testing.T) {
	if p := newCgroupPrep(2, []string{t.TempDir()}, "/x", func() string { return "eg-1" }, slog.New(slog.DiscardHandler)); p != nil {
		t.Fatal("cgroup v2: got a prep")
	}
	var p *cgroupPrep
	if _, ok := p.take(); ok {
		t.Error("nil prep: take returned an id")
	}
	if err := p.stop(); err != nil {
		t.Errorf("nil prep: stop: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

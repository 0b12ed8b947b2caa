package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/execgate/execgate/policy"
)

// installPolicy makes set the serving one and pushes it to the Runner.
func (s *Server) installPolicy(set *policy.Set) {
	s.policyPtr.Store(&policyBox{set: set})
	s.policyStamp = s.stampPolicy()
	if s.deps.OnPolicy != nil {
		s.deps.OnPolicy(set)
	}
}

// Reload reloads the verification keys and the policy (SIGHUP). A failure
// keeps what is serving, and every error is logged and audited.
func (s *Server) Reload(ctx context.Context) error {
	return errors.Join(s.ReloadKeys(), s.ReloadPolicy(ctx))
}

// ReloadKeys reloads jwt.keys: rotation without a restart.
func (s *Server) ReloadKeys() error {
	kcs, err := s.cfg.JWT.Keys, error(nil)
	if s.deps.KeyConfigs != nil {
		kcs, err = s.deps.KeyConfigs()
	}
	var ring *Keyring
	if err == nil {
		ring, err = LoadKeyring(kcs)
	}
	if err == nil {
		var v *Verifier
		if v, err = NewVerifier(s.cfg.JWT, ring); err == nil {
			s.verifier.Store(v)
			s.log.Info("keys reloaded", slog.Int("keys", len(ring.keys)))
			return nil
		}
	}
	s.log.Error("key reload failed; old keys keep serving", slog.String("error", err.Error()))
	return fmt.Errorf("reload keys: %w", err)
}

// ReloadPolicy loads the policy again; an invalid set is rejected and the
// old one keeps serving.
func (s *Server) ReloadPolicy(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	set, err := s.deps.LoadPolicy(ctx)
	if err != nil {
		lines := policyErrorLines(err)
		for _, l := range lines {
			s.log.Error("policy reload rejected", slog.String("error", l))
		}
		ev := Event{Type: EventPolicyReload, Allowed: AuditBool(false), PolicyErrors: lines, Error: "reload rejected; old policy keeps serving"}
		if old := s.currentPolicy(); old != nil {
			ev.PolicyHash = old.Hash()
		}
		_ = s.audit.Record(ctx, ev)
		s.metrics.PolicyReloaded(false)
		s.policyStamp = s.stampPolicy() // do not retry the same broken files every poll
		return fmt.Errorf("reload policy: %w", err)
	}
	s.installPolicy(set)
	s.metrics.PolicyReloaded(true)
	_ = s.audit.Record(ctx, Event{Type: EventPolicyReload, Allowed: AuditBool(true), PolicyHash: set.Hash()})
	s.log.Info("policy reloaded", slog.String("policy_hash", set.Hash()))
	return nil
}

// policyErrorLines is every error of a failed load, one per line.
func policyErrorLines(err error) []string {
	var list policy.ErrorList
	if errors.As(err, &list) {
		out := make([]string, 0, len(list))
		for _, e := range list {
			out = append(out, e.Error())
		}
		return out
	}
	return strings.Split(strings.TrimSpace(err.Error()), "\n")
}

// embeddedPolicy reports whether the policy is compiled into the binary
// (policy "embedded:..."): nothing to watch.
func (s *Server) embeddedPolicy() bool { return strings.HasPrefix(s.cfg.Policy, "embedded:") }

// fileStamp is what the poller compares.
type fileStamp struct {
	name  string
	size  int64
	mtime time.Time
}

// stampPolicy stamps cfg.Policy (every *.yaml/*.yml of a directory), the
// serving set's files and the custom seccomp files its profiles name (the
// set carries their content as loaded, so an edit of one needs a reload).
func (s *Server) stampPolicy() []fileStamp {
	if s.embeddedPolicy() {
		return nil
	}
	names := []string{s.cfg.Policy}
	if st, err := os.Stat(s.cfg.Policy); err == nil && st.IsDir() {
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(s.cfg.Policy, pat))
			names = append(names, m...)
		}
	}
	if set := s.currentPolicy(); set != nil {
		names = append(names, set.Files()...)
		names = append(names, set.SeccompFiles()...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]fileStamp, 0, len(names))
	for _, n := range names {
		st, err := os.Stat(n)
		if err != nil {
			out = append(out, fileStamp{name: n, size: -1})
			continue
		}
		out = append(out, fileStamp{name: n, size: st.Size(), mtime: st.ModTime()})
	}
	return out
}

// pollPolicy reloads when a policy file changes; it ends with ctx.
func (s *Server) pollPolicy(ctx context.Context) {
	if s.embeddedPolicy() {
		return
	}
	t := time.NewTicker(s.cfg.PolicyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reloadMu.Lock()
			changed := !slices.Equal(s.stampPolicy(), s.policyStamp)
			s.reloadMu.Unlock()
			if changed {
				_ = s.ReloadPolicy(ctx)
			}
		}
	}
}

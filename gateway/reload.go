package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/execgate/execgate/policy"
)

// installPolicy makes set the serving one and pushes it to the Runner;
// pre is the stamp of the policy files taken before set was loaded.
func (s *Server) installPolicy(set *policy.Set, pre *policyStamp) {
	s.policyPtr.Store(&policyBox{set: set})
	s.rejectedSeccomp = nil
	s.policyStamp = s.stampAfterLoad(pre, set)
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
	// Stamp before loading: an edit made while the load reads the files
	// shows at the next poll (at worst one more reload), never is lost.
	pre := s.stampPolicy(nil)
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
		// Do not retry the same broken files every poll, but watch what
		// the rejected load read: the policy files, the serving set's
		// seccomp files and the ones it reported (a refused file fixed by
		// a chmod reloads).
		var list policy.ErrorList
		s.rejectedSeccomp = nil
		if errors.As(err, &list) {
			s.rejectedSeccomp = list.SeccompFiles()
		}
		s.policyStamp = s.stampAfterLoad(pre, nil)
		return fmt.Errorf("reload policy: %w", err)
	}
	s.installPolicy(set, pre)
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

// pollPolicy reloads when a watched file changes (policystamp.go says
// which and how); it ends with ctx.
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
			cur := s.stampPolicy(s.policyStamp)
			changed := !cur.equal(s.policyStamp)
			if !changed {
				// The same files; only the racy digests age out.
				s.policyStamp = cur.trim()
			}
			s.reloadMu.Unlock()
			if changed {
				_ = s.ReloadPolicy(ctx)
			}
		}
	}
}

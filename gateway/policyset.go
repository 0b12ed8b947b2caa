package gateway

import (
	"context"

	"github.com/execgate/execgate/policy"
)

// policyBox holds the serving *policy.Set for atomic.Pointer; the gateway
// swaps whole sets on reload, never mutates one.
type policyBox struct{ set *policy.Set }

// currentPolicy returns the serving set (nil before the first load).
func (s *Server) currentPolicy() *policy.Set {
	if b := s.policyPtr.Load(); b != nil {
		return b.set
	}
	return nil
}

// decideWith asks set for a decision; the one place the gateway calls Decide.
func decideWith(ctx context.Context, set *policy.Set, req policy.Request) policy.Decision {
	if d := set.Decide(ctx, req); d != nil {
		return *d
	}
	return policy.Decision{Reason: policy.ReasonUnknownCommand, Message: "denied"}
}

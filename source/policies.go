package source

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// CollectPolicies publishes every security policy and returns how many.
func (s *Stage) CollectPolicies(ctx context.Context) (int, error) {
	start := s.cfg.Now()
	policies, err := s.client.Policies(ctx)
	if err != nil {
		return 0, fmt.Errorf("collect policies: %w", err)
	}

	msgs := make([]kafka.Message, 0, len(policies))
	for _, policy := range policies {
		msgs = append(msgs, s.policyMessage(policy, start))
	}
	if err := s.publish(ctx, msgs); err != nil {
		return 0, fmt.Errorf("publish %d policies: %w", len(msgs), err)
	}

	s.count(func(st *Stats) {
		st.PolicyPolls++
		st.PoliciesPublished += len(msgs)
	})
	s.logger.Info("policy poll complete", "policies", len(msgs), "duration", roundDuration(s.cfg.Now().Sub(start)))
	return len(msgs), nil
}

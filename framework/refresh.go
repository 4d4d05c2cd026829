package framework

import (
	"context"
	"errors"
	"fmt"
)

// Refresher is implemented by discoveries that can run a discovery cycle of
// a joined topic early, on demand (the DHT runs a lookup round at once
// instead of waiting for its next scheduled one; the static discovery
// reports its list again).
//
// The contract:
//
//   - Refresh returns promptly: it asks for a cycle and does not wait for it.
//     The cycle's results reach the topic's sink as usual, followed by
//     Updated.
//   - A Refresh that arrives while a cycle of the topic runs asks for one
//     more cycle after it (so that what was announced meanwhile is found);
//     requests that arrive before that cycle started are merged into it.
//   - Refresh of a topic that is not joined, or after Close, is a no-op
//     (after Close it may return [ErrClosed]).
//
// Callers rate-limit their requests: a Refresher does not.
type Refresher interface {
	Refresh(ctx context.Context, topic Topic) error
}

// Refresh asks every discovery that implements [Refresher] to run a
// discovery cycle of topic now rather than at its next scheduled time, and
// returns without waiting for it: the peers it finds arrive as PeerEvents,
// and each discovery's completed cycle as an UpdatedEvent. Use it when a
// peer is needed now (none is known, or every known one failed); callers
// rate-limit it. It fails with [ErrNotJoined] for a topic that is not
// joined and [ErrClosed] after Close. Discoveries without Refresh are
// skipped.
func (s *Swarm) Refresh(ctx context.Context, topic Topic) error {
	s.mu.Lock()
	closed := s.closed
	_, joined := s.topics[topic]
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !joined {
		return fmt.Errorf("%w: %s", ErrNotJoined, topic.Short())
	}
	var errs []error
	for _, d := range s.discoveries {
		if r, ok := As[Refresher](d); ok {
			if err := r.Refresh(ctx, topic); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, fmt.Errorf("%s: refresh %s: %w", d.Name(), topic.Short(), err))
			}
		}
	}
	return errors.Join(errs...)
}

package framework_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// refresher is a manual discovery that records Refresh calls.
type refresher struct {
	*swarmtest.Discovery
	mu     sync.Mutex
	topics []framework.Topic
}

func (r *refresher) Refresh(_ context.Context, t framework.Topic) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics = append(r.topics, t)
	return nil
}

func (r *refresher) calls() []framework.Topic {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]framework.Topic(nil), r.topics...)
}

// TestRefreshAsksRefreshers: Swarm.Refresh reaches every discovery that
// implements Refresher for a joined topic (others are skipped), fails with
// ErrNotJoined for a topic not joined and ErrClosed after Close.
func TestRefreshAsksRefreshers(t *testing.T) {
	r := &refresher{Discovery: swarmtest.NewDiscovery()}
	r.NameValue = "refresher"
	n := newNode(t, framework.WithDiscovery(r))
	ctx := context.Background()
	if err := n.Refresh(ctx, topicA); !errors.Is(err, framework.ErrNotJoined) {
		t.Fatalf("refresh before join: %v, want ErrNotJoined", err)
	}
	n.join(t, topicA)
	if err := n.Refresh(ctx, topicA); err != nil {
		t.Fatal(err)
	}
	if got := r.calls(); len(got) != 1 || got[0] != topicA {
		t.Fatalf("refresher saw %v, want [topic a]", got)
	}
	n.Close()
	if err := n.Refresh(ctx, topicA); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("refresh after close: %v, want ErrClosed", err)
	}
}

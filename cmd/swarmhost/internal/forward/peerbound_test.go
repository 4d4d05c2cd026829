package forward

import (
	"errors"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// A flood of discovered peers cannot grow the manager's target list past
// MaxPeersPerTopic, and a peer that failed gives way before one that did
// not (issue 13: memory a remote party can make us spend is bounded).
func TestPeerListIsBounded(t *testing.T) {
	m := newManager(t, newSwarm(t), Options{})
	topic := framework.TopicFromString("flood")
	peer := func(i int) framework.Peer {
		return framework.Peer{Host: "127.0.0.1", Port: 1 + i, Topic: topic}
	}
	for i := range MaxPeersPerTopic {
		m.AddPeer(peer(i))
	}
	failed := peer(MaxPeersPerTopic / 2)
	m.peerResult(failed, errors.New("refused"))
	for i := MaxPeersPerTopic; i < 20*MaxPeersPerTopic; i++ {
		m.AddPeer(peer(i))
		if i == MaxPeersPerTopic {
			for _, p := range m.Peers(topic) {
				if p.Addr() == failed.Addr() {
					t.Fatalf("%s failed but did not give way first", failed.Addr())
				}
			}
		}
	}
	if n := len(m.Peers(topic)); n != MaxPeersPerTopic {
		t.Fatalf("%d peers remembered, want the bound %d", n, MaxPeersPerTopic)
	}
	m.mu.Lock()
	nf := len(m.peers[topic].failed)
	m.mu.Unlock()
	if nf != 0 {
		t.Fatalf("%d failure records of evicted peers kept", nf)
	}
}

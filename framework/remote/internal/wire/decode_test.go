package wire

import (
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// The private-network marker a discovery sets crosses the process boundary
// both ways (semantics D5): a testnet DHT run as a plugin keeps working.
func TestPeerPrivateNetCrossesTheWire(t *testing.T) {
	for _, private := range []bool{false, true} {
		p := framework.Peer{Host: "127.0.0.1", Port: 4001, Local: true, PrivateNet: private, Topic: framework.TopicFromString("x")}
		q, err := PeerFromProto(PeerToProto(p))
		if err != nil {
			t.Fatal(err)
		}
		if q.PrivateNet != private || q.Local != p.Local {
			t.Fatalf("PrivateNet %v became %+v", private, q)
		}
	}
}

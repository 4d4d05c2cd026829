package dht_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/peer-store"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// storedOn counts the testnet nodes that hold addr for tp.
func storedOn(t *testing.T, tp framework.Topic, addr netip.AddrPort) int {
	n := 0
	for _, node := range testnet(t).Nodes {
		if node.PeerStore().Has(peer_store.InfoHash(dht.Infohash(tp)), addr) {
			n++
		}
	}
	return n
}

func TestLeaveUnannouncesFromOurNodes(t *testing.T) {
	d, _, port := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	tp := topic(t.Name())
	s := join(t, d, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: port})
	waitSignal(t, s.flushCh, 10*time.Second, "announced")
	me := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if storedOn(t, tp, me) == 0 {
		t.Fatal("announce stored nowhere")
	}
	if err := d.Leave(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
	if n := storedOn(t, tp, me); n != 0 {
		t.Fatalf("still stored on %d nodes after Leave", n)
	}
}

func TestUnannounceFromAnotherIPIsIgnored(t *testing.T) {
	d, _, port := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	tp := topic(t.Name())
	s := join(t, d, framework.JoinRequest{Topic: tp, Announce: true, Lookup: true, Port: port})
	waitSignal(t, s.flushCh, 10*time.Second, "announced")
	me := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	before := storedOn(t, tp, me)
	// a forger on 127.0.0.2 asks every node to drop our record
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id krpc.ID
	id[0] = 9
	for _, node := range testnet(t).Nodes {
		p := port
		ans := queryFrom(t, c, node.Addr(), krpc.Msg{T: "ua", Y: "q", Q: dht.UnannounceMethod, A: &krpc.MsgArgs{ID: id, InfoHash: dht.Infohash(tp), Port: &p}})
		if ans.Y != "r" {
			t.Fatalf("answer %+v", ans)
		}
	}
	if after := storedOn(t, tp, me); after != before {
		t.Fatalf("a forged un-announce removed our record: %d → %d nodes", before, after)
	}
}

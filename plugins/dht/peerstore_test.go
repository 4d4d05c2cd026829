package dht

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/jonboulle/clockwork"
)

func na(ip string, port int) krpc.NodeAddr {
	return krpc.NodeAddr{IP: net.ParseIP(ip), Port: port}
}

func ih(b byte) peer_store.InfoHash { return peer_store.InfoHash{b} }

func TestPeerStoreKeysByIPAndPort(t *testing.T) {
	ps := NewPeerStore(PeerStoreConfig{})
	ps.AddPeer(ih(1), na("10.0.0.1", 1000))
	ps.AddPeer(ih(1), na("10.0.0.1", 1001)) // same IP, other port: a second peer
	ps.AddPeer(ih(1), na("10.0.0.1", 1000)) // refresh
	ps.AddPeer(ih(1), na("::ffff:10.0.0.1", 1000))
	ps.AddPeer(ih(2), na("2001:db8::1", 1000))
	got := ps.GetPeers(ih(1))
	if len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	ports := map[int]bool{}
	for _, p := range got {
		if !p.IP.Equal(net.ParseIP("10.0.0.1")) || len(p.IP) != 4 {
			t.Fatalf("bad ip %v (len %d)", p.IP, len(p.IP))
		}
		ports[p.Port] = true
	}
	if !ports[1000] || !ports[1001] {
		t.Fatalf("ports %v", ports)
	}
	if got := ps.GetPeers(ih(2)); len(got) != 1 || len(got[0].IP) != 16 || got[0].Port != 1000 {
		t.Fatalf("ipv6: %v", got)
	}
	if ps.GetPeers(ih(3)) != nil {
		t.Fatal("unknown infohash has peers")
	}
	if ps.Len() != 3 || ps.Infohashes() != 2 {
		t.Fatalf("len %d ihs %d", ps.Len(), ps.Infohashes())
	}
}

func TestPeerStoreRejectsInvalid(t *testing.T) {
	ps := NewPeerStore(PeerStoreConfig{})
	for _, a := range []krpc.NodeAddr{
		na("10.0.0.1", 0), na("10.0.0.1", 70000), na("0.0.0.0", 1), na("::", 1), na("224.0.0.1", 1),
		{IP: net.IP{1, 2, 3}, Port: 1}, {IP: nil, Port: 1},
	} {
		ps.AddPeer(ih(1), a)
	}
	if ps.Len() != 0 {
		t.Fatalf("stored %v", ps.GetPeers(ih(1)))
	}
}

func TestPeerStoreTTL(t *testing.T) {
	clk := clockwork.NewFakeClock()
	ps := NewPeerStore(PeerStoreConfig{Clock: clk})
	ps.AddPeer(ih(1), na("10.0.0.1", 1))
	clk.Advance(20 * time.Minute)
	ps.AddPeer(ih(1), na("10.0.0.2", 2))
	clk.Advance(9 * time.Minute)
	if n := len(ps.GetPeers(ih(1))); n != 2 {
		t.Fatalf("after 29 min: %d peers", n)
	}
	clk.Advance(time.Minute) // the first is 30 min old
	got := ps.GetPeers(ih(1))
	if len(got) != 1 || got[0].Port != 2 {
		t.Fatalf("after 30 min: %v", got)
	}
	// A re-announce refreshes the TTL.
	ps.AddPeer(ih(1), na("10.0.0.2", 2))
	clk.Advance(29 * time.Minute)
	if n := len(ps.GetPeers(ih(1))); n != 1 {
		t.Fatalf("refreshed peer expired: %d", n)
	}
	clk.Advance(time.Minute)
	if n := len(ps.GetPeers(ih(1))); n != 0 || ps.Len() != 0 || ps.Infohashes() != 0 {
		t.Fatalf("left %d peers, len %d, ihs %d", n, ps.Len(), ps.Infohashes())
	}
	// Custom TTL; Expire works without an access.
	ps = NewPeerStore(PeerStoreConfig{Clock: clk, TTL: time.Second})
	ps.AddPeer(ih(1), na("10.0.0.1", 1))
	clk.Advance(time.Second)
	ps.Expire()
	if ps.Len() != 0 {
		t.Fatal("custom TTL ignored")
	}
}

func TestPeerStoreCaps(t *testing.T) {
	clk := clockwork.NewFakeClock()
	ps := NewPeerStore(PeerStoreConfig{Clock: clk, MaxPerInfohash: 3, MaxTotal: 5, MaxReturned: 100})
	for i := range 10 {
		clk.Advance(time.Second)
		ps.AddPeer(ih(1), na("10.0.0.1", 1+i))
	}
	got := ps.GetPeers(ih(1))
	if len(got) != 3 {
		t.Fatalf("per-infohash cap: %d", len(got))
	}
	for _, p := range got {
		if p.Port < 8 { // the three most recent survive
			t.Fatalf("kept old peer %v", p)
		}
	}
	for i := range 4 {
		clk.Advance(time.Second)
		ps.AddPeer(ih(2), na("10.0.0.2", 1+i))
	}
	if ps.Len() != 5 {
		t.Fatalf("total cap: %d", ps.Len())
	}
	// The globally oldest (ih 1's) went first.
	if n1, n2 := len(ps.GetPeers(ih(1))), len(ps.GetPeers(ih(2))); n1 != 2 || n2 != 3 {
		t.Fatalf("ih1 %d ih2 %d", n1, n2)
	}
	// A flood over many infohashes stays within the cap.
	for i := range 1000 {
		ps.AddPeer(ih(byte(3+i%200)), na("10.1.0.1", 1+i))
	}
	if ps.Len() != 5 || ps.Infohashes() > 5 {
		t.Fatalf("after flood: len %d ihs %d", ps.Len(), ps.Infohashes())
	}
}

func TestPeerStoreMaxReturned(t *testing.T) {
	ps := NewPeerStore(PeerStoreConfig{})
	for i := range 300 {
		ps.AddPeer(ih(1), na(fmt.Sprintf("10.0.%d.%d", i/8, 1+i%8), 1+i))
	}
	got := ps.GetPeers(ih(1))
	if len(got) != DefaultMaxPeersReturned {
		t.Fatalf("returned %d", len(got))
	}
	seen := map[int]bool{}
	for _, p := range got {
		if seen[p.Port] {
			t.Fatal("duplicate in sample")
		}
		seen[p.Port] = true
	}
}

// FuzzPeerStore drives the store with arbitrary operations and checks its
// invariants: caps hold, only valid addresses come back, lists and maps agree.
func FuzzPeerStore(f *testing.F) {
	f.Add([]byte{0, 1, 10, 0, 0, 1, 0, 80, 1, 1, 2, 0, 0})
	f.Add([]byte("\x00\x01\x7f\x00\x00\x01\xff\xff\x02\x05"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		clk := clockwork.NewFakeClock()
		ps := NewPeerStore(PeerStoreConfig{Clock: clk, TTL: 10 * time.Second, MaxPerInfohash: 4, MaxTotal: 7, MaxReturned: 3, MaxPerIP: 2})
		for len(ops) > 0 {
			op := ops[0]
			ops = ops[1:]
			switch op % 3 {
			case 0: // add: infohash byte, ip length selector, ip bytes, port
				if len(ops) < 2 {
					return
				}
				h, l := ops[0], []int{0, 3, 4, 16}[ops[1]%4]
				ops = ops[2:]
				if len(ops) < l+2 {
					return
				}
				a := krpc.NodeAddr{IP: net.IP(append([]byte(nil), ops[:l]...)), Port: int(ops[l])<<8 | int(ops[l+1])}
				ops = ops[l+2:]
				ps.AddPeer(ih(h%4), a)
			case 1:
				if len(ops) < 1 {
					return
				}
				for _, p := range ps.GetPeers(ih(ops[0] % 4)) {
					if (len(p.IP) != 4 && len(p.IP) != 16) || p.Port < 1 || p.Port > 65535 {
						t.Fatalf("returned invalid %v", p)
					}
				}
				if n := len(ps.GetPeers(ih(ops[0] % 4))); n > 3 {
					t.Fatalf("returned %d > MaxReturned", n)
				}
				ops = ops[1:]
			case 2:
				clk.Advance(time.Duration(op) * 100 * time.Millisecond)
			}
			ps.mu.Lock()
			total := 0
			for _, set := range ps.ihs {
				if set.order.Len() > 4 || set.order.Len() != len(set.byAddr) || set.order.Len() == 0 {
					t.Fatalf("bad set: %d entries, %d keys", set.order.Len(), len(set.byAddr))
				}
				perIP := map[netip.Addr]int{}
				for a := range set.byAddr {
					perIP[a.Addr()]++
				}
				for ip, n := range perIP {
					if n > 2 || set.perIP[ip] != n {
						t.Fatalf("%s: %d entries, counted %d (share 2)", ip, n, set.perIP[ip])
					}
				}
				if len(set.perIP) != len(perIP) {
					t.Fatalf("per-IP counts for %d IPs, %d present", len(set.perIP), len(perIP))
				}
				total += set.order.Len()
			}
			if total != ps.all.Len() || total > 7 {
				t.Fatalf("total %d, list %d", total, ps.all.Len())
			}
			ps.mu.Unlock()
		}
	})
}

// TestPeerStorePerIPShare: one IP announcing 600 ports of one infohash
// keeps MaxPerIP entries (its own oldest give way) and cannot evict the
// record of another IP; an exempt prefix has no share.
func TestPeerStorePerIPShare(t *testing.T) {
	clk := clockwork.NewFakeClock()
	ps := NewPeerStore(PeerStoreConfig{Clock: clk, Exempt: []netip.Prefix{netip.MustParsePrefix("10.7.0.0/16")}})
	ps.AddPeer(ih(1), na("10.0.0.1", 4242))
	for i := range 600 {
		clk.Advance(time.Millisecond)
		ps.AddPeer(ih(1), na("10.9.9.9", 1000+i))
	}
	if !ps.Has(ih(1), netip.MustParseAddrPort("10.0.0.1:4242")) {
		t.Fatal("the legitimate record was evicted")
	}
	if n := len(ps.GetPeers(ih(1))); n != 1+DefaultMaxPeersPerIP {
		t.Fatalf("%d entries, want %d", n, 1+DefaultMaxPeersPerIP)
	}
	for i := 600 - DefaultMaxPeersPerIP; i < 600; i++ { // the most recent survive
		if !ps.Has(ih(1), netip.AddrPortFrom(netip.MustParseAddr("10.9.9.9"), uint16(1000+i))) {
			t.Fatalf("port %d of the flooding IP missing", 1000+i)
		}
	}
	if perIP, _ := ps.Evictions(); perIP != 600-DefaultMaxPeersPerIP {
		t.Fatalf("per-IP evictions %d, want %d", perIP, 600-DefaultMaxPeersPerIP)
	}
	// another infohash has its own share
	ps.AddPeer(ih(2), na("10.9.9.9", 1))
	if len(ps.GetPeers(ih(2))) != 1 {
		t.Fatal("share counted across infohashes")
	}
	// exempt
	for i := range 20 {
		ps.AddPeer(ih(3), na("10.7.0.1", 1+i))
	}
	if n := len(ps.GetPeers(ih(3))); n != 20 {
		t.Fatalf("exempt IP kept %d entries, want 20", n)
	}
	// no share
	ps = NewPeerStore(PeerStoreConfig{MaxPerIP: -1})
	for i := range 20 {
		ps.AddPeer(ih(1), na("10.9.9.9", 1+i))
	}
	if n := len(ps.GetPeers(ih(1))); n != 20 {
		t.Fatalf("MaxPerIP -1 kept %d entries, want 20", n)
	}
}

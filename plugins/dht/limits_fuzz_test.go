package dht

import (
	"net/netip"
	"testing"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/types"
)

// FuzzLookupBounds feeds a lookup arbitrary replies (values and nodes from
// arbitrary sources) and checks its caps: values per reply, distinct values
// per lookup and per source IP, nodes per reply, candidates per lookup and
// ports per IP, queries per lookup; the exempt prefix is free of per-IP caps.
func FuzzLookupBounds(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, ops []byte) {
		lim := Limits{ValuesPerReply: 3, ValuesPerLookup: 7, ValuesPerSourceIP: 4, NodesPerReply: 2, LookupQueries: 5, LookupNodes: 9, NodePortsPerIP: 2,
			Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/30")}}
		lim.setDefaults(nil)
		var c limitCounters
		l := newLookup(&lim, &c)
		addr := func(b []byte) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, b[0] % 8}), uint16(b[1]%4)+1)
		}
		taken, queries := 0, 0
		perSrc := map[netip.Addr]int{}
		seen := map[netip.AddrPort]bool{}
		nodes := map[netip.AddrPort]bool{}
		ports := map[netip.Addr]map[uint16]bool{}
		for len(ops) >= 3 {
			op, a, b := ops[0], ops[1], ops[2]
			ops = ops[3:]
			switch op % 4 {
			case 0: // a reply of a%9 values from source b
				vs := make([]krpc.NodeAddr, a%9)
				for i := range vs {
					vs[i] = krpc.NodeAddr{IP: []byte{10, 0, 1, byte(i) ^ b}, Port: int(a) + 1}
				}
				kept := l.replyValues(vs)
				if len(kept) > lim.ValuesPerReply {
					t.Fatalf("kept %d values of a reply", len(kept))
				}
				src := addr([]byte{b, 0}).Addr()
				for _, v := range kept {
					ap, _ := nodeAddrPort(v)
					if l.takeValue(ap, src) {
						if seen[ap] {
							t.Fatalf("duplicate %v taken", ap)
						}
						seen[ap] = true
						taken++
						perSrc[src]++
					}
				}
			case 1: // a node
				ap := addr([]byte{a, b})
				if l.admitNode(types.AddrMaybeId{Addr: krpc.NodeAddrPort{AddrPort: ap}}) {
					nodes[ap] = true
					if ports[ap.Addr()] == nil {
						ports[ap.Addr()] = map[uint16]bool{}
					}
					ports[ap.Addr()][ap.Port()] = true
				}
			case 2:
				if l.admitQuery() {
					queries++
				}
			case 3:
				ns := make([]krpc.NodeInfo, a%6)
				if n := len(l.replyNodes(ns)); n > lim.NodesPerReply {
					t.Fatalf("kept %d nodes of a reply", n)
				}
			}
		}
		if taken > lim.ValuesPerLookup || queries > lim.LookupQueries || len(nodes) > lim.LookupNodes {
			t.Fatalf("values %d, queries %d, nodes %d", taken, queries, len(nodes))
		}
		for ip, n := range perSrc {
			if n > lim.ValuesPerSourceIP && !exempt(lim.Exempt, ip) {
				t.Fatalf("%d values from %v", n, ip)
			}
		}
		for ip, ps := range ports {
			if len(ps) > lim.NodePortsPerIP && !exempt(lim.Exempt, ip) {
				t.Fatalf("%d ports of %v", len(ps), ip)
			}
		}
		select {
		case <-l.capped:
			if queries != lim.LookupQueries {
				t.Fatalf("capped after %d queries", queries)
			}
		default:
			if queries >= lim.LookupQueries {
				t.Fatal("not capped")
			}
		}
	})
}

package mdns

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// instancePacket builds one mDNS response announcing, for topic, one
// instance per id (PTR, SRV with port, TXT, and an A/AAAA per address of its
// target), all in the answer section, as a flooding host would.
func instancePacket(tb testing.TB, topic framework.Topic, ids []peerID, port uint16, addrs []netip.Addr) []byte {
	tb.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{Response: true, Authoritative: true})
	b.EnableCompression()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(b.StartAnswers())
	svc := dnsmessage.MustNewName(ServiceType(topic) + "." + Domain + ".")
	for _, id := range ids {
		inst := dnsmessage.MustNewName(instanceName(topic, id) + "." + ServiceType(topic) + "." + Domain + ".")
		host := dnsmessage.MustNewName(targetName(topic, id) + ".")
		hdr := func(n dnsmessage.Name, ttl uint32) dnsmessage.ResourceHeader {
			return dnsmessage.ResourceHeader{Name: n, Class: dnsmessage.ClassINET | cacheFlush, TTL: ttl}
		}
		must(b.PTRResource(dnsmessage.ResourceHeader{Name: svc, Class: dnsmessage.ClassINET, TTL: ptrTTL}, dnsmessage.PTRResource{PTR: inst}))
		must(b.SRVResource(hdr(inst, 120), dnsmessage.SRVResource{Port: port, Target: host}))
		must(b.TXTResource(hdr(inst, 120), dnsmessage.TXTResource{TXT: txtStrings(record{Topic: topic, ID: id})}))
		for _, a := range addrs {
			if a.Is4() {
				must(b.AResource(hdr(host, 120), dnsmessage.AResource{A: a.As4()}))
			} else {
				must(b.AAAAResource(hdr(host, 120), dnsmessage.AAAAResource{AAAA: a.As16()}))
			}
		}
	}
	pkt, err := b.Finish()
	must(err)
	return pkt
}

// floodIDs returns n distinct ids starting at base.
func floodIDs(base, n int) []peerID {
	ids := make([]peerID, n)
	for i := range ids {
		ids[i] = peerID{0xf1, byte(base >> 16), byte(base >> 8), byte(base), byte(i >> 16), byte(i >> 8), byte(i)}
	}
	return ids
}

// feedPacket parses pkt and hands it to d as if it arrived from o.
func feedPacket(tb testing.TB, d *Discovery, pkt []byte, o origin) {
	tb.Helper()
	r, err := parseResponse(pkt)
	if err != nil {
		tb.Fatal(err)
	}
	d.handleResponse(r, o, time.Now())
}

// floodFrom sends n instances of topic from o to d, perPacket per packet,
// each pointing at addr:port.
func floodFrom(tb testing.TB, d *Discovery, topic framework.Topic, o origin, base, n, perPacket int, addr netip.Addr, port uint16) {
	tb.Helper()
	ids := floodIDs(base, n)
	for len(ids) > 0 {
		k := min(perPacket, len(ids))
		feedPacket(tb, d, instancePacket(tb, topic, ids[:k], port, []netip.Addr{addr}), o)
		ids = ids[k:]
	}
}

func hostsOf(s *fakeSink) map[string]int {
	out := map[string]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		out[p.Host]++
	}
	return out
}

// TestAddressRules: an A/AAAA record is used only when on-link for the
// interface the packet arrived on, or equal to the packet's source (if not
// public); never loopback (but on a loopback interface), unspecified,
// multicast or broadcast; link-local IPv6 only with the arrival zone.
func TestAddressRules(t *testing.T) {
	eth0 := &iface{ifc: net.Interface{Index: 2, Name: "eth0"}, prefixes: fakePrefixes}
	lo := &iface{ifc: net.Interface{Index: 1, Name: "lo", Flags: net.FlagLoopback | net.FlagUp},
		prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	src := netip.MustParseAddr("198.18.0.7")
	onEth := origin{src: src, in: eth0}
	cases := []struct {
		o    origin
		addr string
		want addrVerdict
		out  string // dialable form when OK
	}{
		{onEth, "198.18.0.9", addrOK, "198.18.0.9"},
		{onEth, "10.0.0.200", addrOK, "10.0.0.200"},
		{onEth, "fd00::9", addrOK, "fd00::9"},
		{onEth, "::ffff:198.18.0.9", addrOK, "198.18.0.9"},
		{onEth, "fe80::1", addrOK, "fe80::1%eth0"},
		{origin{src: src}, "fe80::1", addrOtherSubnet, ""}, // no interface: no zone
		{onEth, "127.0.0.1", addrLoopback, ""},
		{onEth, "127.9.9.9", addrLoopback, ""},
		{onEth, "::1", addrLoopback, ""},
		{onEth, "::ffff:127.0.0.1", addrLoopback, ""},
		{origin{src: netip.MustParseAddr("127.0.0.1"), in: eth0}, "127.0.0.1", addrLoopback, ""}, // even as the (spoofed) source
		{origin{src: netip.MustParseAddr("127.0.0.1"), in: lo}, "127.0.0.1", addrOK, "127.0.0.1"},
		{origin{in: lo}, "::1", addrOK, "::1"},
		{onEth, "0.0.0.0", addrInvalid, ""},
		{onEth, "::", addrInvalid, ""},
		{onEth, "224.0.0.251", addrInvalid, ""},
		{onEth, "ff02::fb", addrInvalid, ""},
		{onEth, "255.255.255.255", addrInvalid, ""},
		{onEth, "192.168.1.1", addrOtherSubnet, ""},
		{onEth, "198.18.1.9", addrOtherSubnet, ""}, // the next /24
		{onEth, "169.254.1.1", addrOtherSubnet, ""},
		{onEth, "fd01::9", addrOtherSubnet, ""},
		{onEth, "203.0.113.7", addrPublic, ""},
		{onEth, "2001:db8::7", addrPublic, ""},
		{origin{src: netip.MustParseAddr("192.168.1.1"), in: eth0}, "192.168.1.1", addrOK, "192.168.1.1"}, // the sender itself
		{origin{src: netip.MustParseAddr("169.254.3.3")}, "169.254.3.3", addrOK, "169.254.3.3"},
		{origin{src: netip.MustParseAddr("203.0.113.7"), in: eth0}, "203.0.113.7", addrPublic, ""}, // a source can be spoofed
	}
	for _, c := range cases {
		got, v := c.o.usable(netip.MustParseAddr(c.addr))
		if v != c.want || (v == addrOK && got.String() != c.out) || (v != addrOK && got.IsValid()) {
			t.Errorf("usable(%s) from %v on %v = %v, %d; want %q, %d", c.addr, c.o.src, c.o.in != nil, got, v, c.out, c.want)
		}
	}
}

// TestSpoofedLoopbackIsNoPeer: a LAN host's response that points the swarm
// at 127.0.0.1:7777 (or another subnet, or a public address) reports
// nothing; the same response with an on-link address does.
func TestSpoofedLoopbackIsNoPeer(t *testing.T) {
	topic := framework.TopicFromString("spoof")
	d, s := fakeDiscovery(topic)
	from := onEth0(d, "198.18.0.66")
	bad := []string{"127.0.0.1", "::1", "0.0.0.0", "224.0.0.251", "10.99.0.7", "192.168.1.7", "203.0.113.7", "2001:db8::7"}
	for i, a := range bad {
		feedPacket(t, d, instancePacket(t, topic, floodIDs(i, 1), 7777, []netip.Addr{netip.MustParseAddr(a)}), from)
	}
	if h := hostsOf(s); len(h) != 0 {
		t.Fatalf("reported %v", h)
	}
	st := d.Stats()
	if st.AddrsLoopback != 2 || st.AddrsInvalid != 2 || st.AddrsOtherSubnet != 2 || st.AddrsPublic != 2 {
		t.Fatalf("stats %+v; want 2 loopback, 2 invalid, 2 other subnet, 2 public", st)
	}
	// All of them plus one good address: only the good one is reported.
	var all []netip.Addr
	for _, a := range bad {
		all = append(all, netip.MustParseAddr(a))
	}
	all = append(all, netip.MustParseAddr("198.18.0.66"))
	feedPacket(t, d, instancePacket(t, topic, floodIDs(100, 1), 7777, all), from)
	if got := s.addrs(); strings.Join(got, " ") != "198.18.0.66:7777" {
		t.Fatalf("reports %v; want only 198.18.0.66:7777", got)
	}
}

// TestFloodFromOneSourceCannotHideAPeer: 4 200 instances from one host fill
// neither the cache nor the reports; a legitimate instance announced after
// (and between) the flood is found.
func TestFloodFromOneSourceCannotHideAPeer(t *testing.T) {
	topic := framework.TopicFromString("flood")
	d, s := fakeDiscovery(topic)
	flooder := onEth0(d, "198.18.0.66")
	floodFrom(t, d, topic, flooder, 1, 4200, 40, netip.MustParseAddr("198.18.0.66"), 9)
	st := d.Stats()
	if st.CachedInstances != DefaultMaxInstancesPerSource || st.InstancesSourceCap != 4200-DefaultMaxInstancesPerSource {
		t.Fatalf("after the flood: %+v; want %d cached, the rest refused per source", st, DefaultMaxInstancesPerSource)
	}
	if h := hostsOf(s); h["198.18.0.66"] != DefaultMaxPeersPerSource || st.PeersSourceCap != DefaultMaxInstancesPerSource-DefaultMaxPeersPerSource {
		t.Fatalf("reported %v (stats %+v); want %d peers of the flooder", h, st, DefaultMaxPeersPerSource)
	}
	legit := peerID{0x1e, 0x91}
	feedPacket(t, d, instancePacket(t, topic, []peerID{legit}, 4000, []netip.Addr{netip.MustParseAddr("198.18.0.5")}), onEth0(d, "198.18.0.5"))
	floodFrom(t, d, topic, flooder, 2, 4200, 40, netip.MustParseAddr("198.18.0.66"), 9) // the flood goes on
	if h := hostsOf(s); h["198.18.0.5"] != 1 || h["198.18.0.66"] != DefaultMaxPeersPerSource {
		t.Fatalf("reported %v; want the legitimate peer once and %d of the flooder", h, DefaultMaxPeersPerSource)
	}
}

// TestFullCacheEvictsTheBiggestSourceFirst: when the cache is full, a
// newcomer pushes out the oldest instance of the source holding the most;
// a source that already holds the most cannot push out anyone else.
func TestFullCacheEvictsTheBiggestSourceFirst(t *testing.T) {
	topic := framework.TopicFromString("evict")
	d, s := fakeDiscoveryWith(topic, Limits{MaxInstances: 40, MaxInstancesPerSource: 1000, MaxPeersPerSource: 1000})
	a, c := onEth0(d, "198.18.0.10"), onEth0(d, "198.18.0.12")
	floodFrom(t, d, topic, a, 1, 30, 10, netip.MustParseAddr("198.18.0.10"), 10)
	floodFrom(t, d, topic, c, 2, 10, 10, netip.MustParseAddr("198.18.0.12"), 12)
	if n := d.Stats().CachedInstances; n != 40 {
		t.Fatalf("cached %d, want 40", n)
	}
	// A, the biggest, cannot grow: its newcomers are dropped.
	floodFrom(t, d, topic, a, 3, 5, 5, netip.MustParseAddr("198.18.0.10"), 10)
	if st := d.Stats(); st.InstancesCacheFull != 5 || st.InstancesEvicted != 0 {
		t.Fatalf("stats %+v; want 5 refused as cache full, none evicted", st)
	}
	// B, new, gets in at A's expense (A's oldest goes); C keeps all of its.
	floodFrom(t, d, topic, onEth0(d, "198.18.0.11"), 4, 3, 3, netip.MustParseAddr("198.18.0.11"), 11)
	if st := d.Stats(); st.InstancesEvicted != 3 || d.cache.all.count(a.key()) != 27 || d.cache.all.count(c.key()) != 10 {
		t.Fatalf("stats %+v, A holds %d, C %d; want 3 evicted from A", st, d.cache.all.count(a.key()), d.cache.all.count(c.key()))
	}
	if h := hostsOf(s); h["198.18.0.11"] != 3 {
		t.Fatalf("reported %v; want B's 3", h)
	}
	// The oldest go first: the 3 evicted are of A's first packet (records
	// of one packet are cached in no particular order).
	left := 0
	for _, id := range floodIDs(1, 10) {
		if _, ok := d.cache.entries[instanceName(topic, id)+"."+ServiceType(topic)+".local."]; ok {
			left++
		}
	}
	if left != 7 {
		t.Fatalf("%d of A's first 10 instances cached, want 7", left)
	}
}

// TestInterfaceShare: a flood on one interface fills only that
// interface's share; instances heard on another still get in.
func TestInterfaceShare(t *testing.T) {
	topic := framework.TopicFromString("iface share")
	d, s := fakeDiscoveryWith(topic, Limits{MaxInstancesPerInterface: 20, MaxInstancesPerSource: 1000, MaxPeersPerSource: 1000})
	d.ifaces = append(d.ifaces, iface{ifc: net.Interface{Index: 3, Name: "eth1"}, prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.7.0/24")}})
	eth1 := origin{src: netip.MustParseAddr("192.168.7.2"), in: &d.ifaces[1]}
	floodFrom(t, d, topic, onEth0(d, "198.18.0.66"), 1, 50, 25, netip.MustParseAddr("198.18.0.66"), 9)
	if st := d.Stats(); st.CachedInstances != 20 || st.InstancesInterfaceCap != 30 {
		t.Fatalf("stats %+v; want 20 cached, 30 refused at the interface share", st)
	}
	floodFrom(t, d, topic, eth1, 2, 5, 5, netip.MustParseAddr("192.168.7.2"), 7)
	if h := hostsOf(s); h["192.168.7.2"] != 5 {
		t.Fatalf("reported %v; want 5 from eth1", h)
	}
	// Another source on the full eth0 pushes out the flooder's oldest.
	floodFrom(t, d, topic, onEth0(d, "198.18.0.5"), 3, 1, 1, netip.MustParseAddr("198.18.0.5"), 5)
	if h, st := hostsOf(s), d.Stats(); h["198.18.0.5"] != 1 || st.InstancesEvicted != 1 {
		t.Fatalf("reported %v, stats %+v; want the newcomer on eth0, one eviction", h, st)
	}
}

// TestPeersPerTopicCap: the peers a topic remembers are bounded; a
// newcomer from a small source pushes out the biggest source's oldest.
func TestPeersPerTopicCap(t *testing.T) {
	topic := framework.TopicFromString("peer cap")
	d, s := fakeDiscoveryWith(topic, Limits{MaxPeersPerTopic: 10, MaxPeersPerSource: 8})
	floodFrom(t, d, topic, onEth0(d, "198.18.0.66"), 1, 20, 20, netip.MustParseAddr("198.18.0.66"), 9)
	floodFrom(t, d, topic, onEth0(d, "198.18.0.67"), 2, 2, 2, netip.MustParseAddr("198.18.0.67"), 9)
	st := d.Stats()
	if h := hostsOf(s); h["198.18.0.66"] != 8 || h["198.18.0.67"] != 2 || st.PeersSourceCap != 12 {
		t.Fatalf("reported %v, stats %+v; want 8 + 2, 12 over the source cap", h, st)
	}
	floodFrom(t, d, topic, onEth0(d, "198.18.0.5"), 3, 1, 1, netip.MustParseAddr("198.18.0.5"), 5)
	st = d.Stats()
	if h := hostsOf(s); h["198.18.0.5"] != 1 || st.PeersEvicted != 1 {
		t.Fatalf("reported %v, stats %+v; want the newcomer, one eviction", h, st)
	}
	d.mu.Lock()
	st0 := d.topics[topic]
	d.mu.Unlock()
	st0.mu.Lock()
	n, q := len(st0.found), st0.peers.len()
	st0.mu.Unlock()
	if n != 10 || q != 10 {
		t.Fatalf("topic remembers %d peers (%d in its quota), want 10", n, q)
	}
}

// TestGoodbyeFreesTheQuota: a goodbye removes an instance from the cache
// and from its source's share, so the source may announce again.
func TestGoodbyeFreesTheQuota(t *testing.T) {
	topic := framework.TopicFromString("goodbye quota")
	d, s := fakeDiscoveryWith(topic, Limits{MaxInstancesPerSource: 1})
	from := onEth0(d, "198.18.0.5")
	id := peerID{5}
	a := announcement{service: ServiceType(topic), instance: instanceName(topic, id), host: targetName(topic, id),
		port: 5, txt: txtStrings(record{Topic: topic, ID: id}), ttl: 120}
	for round := range 3 {
		for _, bye := range []bool{false, true} {
			pkt, err := a.pack([]netip.Addr{from.src}, bye)
			if err != nil {
				t.Fatal(err)
			}
			feedPacket(t, d, pkt, from)
		}
		if n := len(s.addrs()); n != round+1 {
			t.Fatalf("round %d: %d reports", round, n)
		}
	}
	if st := d.Stats(); st.CachedInstances != 0 || st.InstancesSourceCap != 0 || len(d.cache.perType) != 0 || d.cache.all.len() != 0 {
		t.Fatalf("after goodbyes: %+v, perType %v", st, d.cache.perType)
	}
}

// TestLimitsValidate: negative limits are invalid; zero means default.
func TestLimitsValidate(t *testing.T) {
	c := Config{Limits: Limits{MaxPeersPerSource: -1}}
	if err := c.setDefaults(); err == nil || !strings.Contains(err.Error(), "MaxPeersPerSource") {
		t.Fatalf("negative limit: %v", err)
	}
	c = Config{}
	if err := c.setDefaults(); err != nil || c.Limits != (Limits{}).withDefaults() || c.Limits.MaxInstances != DefaultMaxInstances {
		t.Fatalf("defaults: %+v, %v", c.Limits, err)
	}
}

// TestQuotaModel checks quota against a plain model over a fixed op mix.
func TestQuotaModel(t *testing.T) {
	checkQuotaOps(t, []byte(strings.Repeat("\x01\x12\x23\x34\x05\x96\xa7\x18\x29\x0b", 40)))
}

// checkQuotaOps runs ops (two bytes each: op and source, item) on a quota
// and on a model and fails when they differ.
func checkQuotaOps(t *testing.T, ops []byte) {
	var q quota[int]
	type it struct {
		src srcKey
		seq int
	}
	model := map[int]it{}
	seq := 0
	srcOf := func(b byte) srcKey {
		return srcKey{ifIndex: int(b>>4) % 3, addr: netip.AddrFrom4([4]byte{10, 0, 0, b & 7})}
	}
	for i := 0; i+1 < len(ops); i += 2 {
		op, item := ops[i], int(ops[i+1]%32)
		src := srcOf(op)
		switch op & 3 {
		case 0, 1:
			if _, ok := model[item]; !ok {
				seq++
				model[item] = it{src, seq}
			}
			q.add(item, src)
		case 2:
			_, ok := model[item]
			delete(model, item)
			if q.remove(item) != ok {
				t.Fatalf("remove(%d) disagrees", item)
			}
		case 3:
			counts := map[srcKey]int{}
			for _, m := range model {
				counts[m.src]++
			}
			top := 0
			for _, n := range counts {
				top = max(top, n)
			}
			v, ok := q.victim(src)
			if ok != (top > counts[src]) {
				t.Fatalf("victim ok=%v, top %d, src holds %d", ok, top, counts[src])
			}
			if ok {
				m := model[v]
				if counts[m.src] != top {
					t.Fatalf("victim %d of a source holding %d, top %d", v, counts[m.src], top)
				}
				for k, o := range model {
					if o.src == m.src && o.seq < m.seq {
						t.Fatalf("victim %d is not its source's oldest (%d is)", v, k)
					}
				}
			}
		}
		if q.len() != len(model) {
			t.Fatalf("len %d, model %d", q.len(), len(model))
		}
	}
	for k := range model {
		if !q.has(k) {
			t.Fatalf("lost %d", k)
		}
	}
}

package mdns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// fakeSink records peers for tests that run without sockets.
type fakeSink struct {
	topic framework.Topic
	mu    sync.Mutex
	peers []framework.Peer
}

func (s *fakeSink) Peer(p framework.Peer) { s.mu.Lock(); s.peers = append(s.peers, p); s.mu.Unlock() }
func (s *fakeSink) Flushed()              {}
func (s *fakeSink) Updated()              {}
func (s *fakeSink) addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.peers {
		out = append(out, p.Addr())
	}
	return out
}

// fakePrefixes are the on-link prefixes of fakeDiscovery's "eth0".
var fakePrefixes = []netip.Prefix{
	netip.MustParsePrefix("198.18.0.0/24"),
	netip.MustParsePrefix("10.0.0.0/24"),
	netip.MustParsePrefix("fd00::/64"),
}

// fakeDiscovery is a Discovery without sockets that looks up topic, with
// one interface "eth0" (index 2, fakePrefixes); feed it with
// handleResponse and an origin from onEth0.
func fakeDiscovery(topic framework.Topic) (*Discovery, *fakeSink) {
	return fakeDiscoveryWith(topic, Limits{})
}

// fakeDiscoveryWith is fakeDiscovery with limits lim.
func fakeDiscoveryWith(topic framework.Topic, lim Limits) (*Discovery, *fakeSink) {
	cfg := Config{ForgetAfter: time.Minute, Limits: lim}
	if err := cfg.setDefaults(); err != nil {
		panic(err)
	}
	d := &Discovery{
		cfg:    cfg,
		log:    cfg.Logger,
		id:     peerID{0xaa},
		topics: make(map[framework.Topic]*topicState),
		byType: make(map[string][]*topicState),
		cache:  newCache(),
		ifaces: []iface{{
			ifc:      net.Interface{Index: 2, Name: "eth0", Flags: net.FlagUp | net.FlagMulticast},
			prefixes: fakePrefixes,
			has4:     true,
			has6:     true,
		}},
	}
	s := &fakeSink{topic: topic}
	done := make(chan struct{})
	close(done) // no loop goroutine
	st := &topicState{d: d, req: framework.JoinRequest{Topic: topic, Lookup: true}, sink: s,
		svcType: ServiceType(topic), found: make(map[peerID]*foundPeer), cancel: func() {}, done: done}
	key, _ := serviceTypeKey(st.svcType)
	d.topics[topic] = st
	d.byType[key] = []*topicState{st}
	return d, s
}

// onEth0 is the origin of a packet from src that arrived on
// fakeDiscovery's eth0.
func onEth0(d *Discovery, src string) origin {
	o := origin{in: &d.ifaces[0]}
	if src != "" {
		o.src = netip.MustParseAddr(src)
	}
	return o
}

var fuzzTopic = framework.TopicFromString("fuzz")

func seedPackets(f *testing.F) {
	id := peerID{1, 2, 3, 4, 5, 6, 7, 8}
	a := announcement{
		service: ServiceType(fuzzTopic), instance: instanceName(fuzzTopic, id), host: targetName(fuzzTopic, id),
		port: 4000, txt: txtStrings(record{Topic: fuzzTopic, ID: id}), ttl: 120,
	}
	for _, bye := range []bool{false, true} {
		b, _ := a.pack([]netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fe80::1")}, bye)
		f.Add(b)
	}
	q, _ := packQuery(a.service)
	f.Add(q)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 120, 0, 2, 0xc0, 12})
}

// FuzzParseResponse: any datagram parses or fails cleanly, and what it keeps
// only concerns our service types.
func FuzzParseResponse(f *testing.F) {
	seedPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResponse(b)
		if err != nil {
			return
		}
		if len(r.ptrs)+len(r.srvs)+len(r.txts)+len(r.addrs) > maxRecords {
			t.Fatalf("kept more than %d records", maxRecords)
		}
		for inst := range r.srvs {
			if _, ok := instanceService(inst); !ok || inst != strings.ToLower(inst) {
				t.Fatalf("kept SRV of %q", inst)
			}
		}
		for inst := range r.txts {
			if _, ok := instanceService(inst); !ok {
				t.Fatalf("kept TXT of %q", inst)
			}
		}
	})
}

// FuzzHandleResponse: whatever arrives, reports are dialable peers of the
// joined topic, never ourselves.
func FuzzHandleResponse(f *testing.F) {
	seedPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, s := fakeDiscovery(fuzzTopic)
		r, err := parseResponse(b)
		if err != nil {
			return
		}
		d.handleResponse(r, onEth0(d, ""), time.Now())
		d.handleResponse(r, origin{}, time.Now()) // again, from nowhere known: no second report
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.peers) > len(r.srvs) {
			t.Fatalf("%d reports for %d instances", len(s.peers), len(r.srvs))
		}
		for _, p := range s.peers {
			if err := p.Validate(); err != nil || p.Topic != fuzzTopic || !p.Local {
				t.Fatalf("bad report %+v: %v", p, err)
			}
			a, err := netip.ParseAddr(p.Host)
			if err != nil || (a.Is6() && a.IsLinkLocalUnicast() && a.Zone() != "eth0") {
				t.Fatalf("undialable host %q", p.Host)
			}
			if !a.IsLinkLocalUnicast() && !d.ifaces[0].onLink(a) {
				t.Fatalf("reported %s, not on-link for eth0", a)
			}
		}
		if err := d.Leave(context.Background(), fuzzTopic); err != nil { // lookup only: touches no socket
			t.Fatal(err)
		}
		d.handleResponse(r, onEth0(d, ""), time.Now())
		if len(s.peers) > 1+len(r.srvs) {
			t.Fatal("reported after Leave")
		}
	})
}

// FuzzDecodeTXT: TXT rdata (length-prefixed strings) decodes or fails
// cleanly; a decoded record re-encodes to the same record.
func FuzzDecodeTXT(f *testing.F) {
	rec := record{Topic: fuzzTopic, ID: peerID{1}}
	var wire []byte
	for _, s := range txtStrings(rec) {
		wire = append(append(wire, byte(len(s))), s...)
	}
	f.Add(wire)
	f.Add([]byte("\x03v=1\x05topic"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ss []string
		for len(b) > 0 {
			n := int(b[0])
			b = b[1:]
			if n > len(b) {
				n = len(b)
			}
			ss = append(ss, string(b[:n]))
			b = b[n:]
		}
		r, err := decodeTXT(decodeTXTStrings(ss))
		if err != nil {
			return
		}
		r2, err := decodeTXT(decodeTXTStrings(txtStrings(r)))
		if err != nil || r2 != r {
			t.Fatalf("round trip %+v → %+v, %v", r, r2, err)
		}
	})
}

// FuzzNames: service-type and instance-name parsing accept only canonical
// names of our format.
func FuzzNames(f *testing.F) {
	f.Add("_dws-0123456789._tcp.local.")
	f.Add("dws-0123456789-0102030405060708._dws-0123456789._tcp.local.")
	f.Add("_DWS-ABCDEF0123._TCP")
	f.Fuzz(func(t *testing.T, s string) {
		if key, ok := serviceTypeKey(s); ok {
			if k2, ok2 := serviceTypeKey(key); !ok2 || k2 != key || len(key) != len("_dws-0123456789._tcp") {
				t.Fatalf("serviceTypeKey(%q) = %q not canonical", s, key)
			}
		}
		if key, ok := instanceService(s); ok {
			if !strings.HasSuffix(s, "."+key+".local.") {
				t.Fatalf("instanceService(%q) = %q", s, key)
			}
		}
	})
}

// FuzzAddressRules: whatever address record arrives from whatever source,
// a usable address is never loopback (off a loopback interface),
// unspecified, multicast or a zone-less link-local, and is on-link, the
// arrival zone's link-local, or the non-public source itself.
func FuzzAddressRules(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, []byte{198, 18, 0, 7}, false)
	f.Add(netip.MustParseAddr("fe80::1").AsSlice(), []byte{}, true)
	f.Add([]byte{198, 18, 0, 9}, []byte{198, 18, 0, 9}, false)
	f.Add([]byte{203, 0, 113, 7}, []byte{203, 0, 113, 7}, false)
	eth0 := &iface{ifc: net.Interface{Index: 2, Name: "eth0"}, prefixes: fakePrefixes}
	f.Fuzz(func(t *testing.T, addr, src []byte, unknownIface bool) {
		a, ok := netip.AddrFromSlice(addr)
		if !ok {
			return
		}
		o := origin{in: eth0}
		if unknownIface {
			o.in = nil
		}
		o.src, _ = netip.AddrFromSlice(src)
		o.src = o.src.Unmap()
		got, v := o.usable(a)
		if v != addrOK {
			if got.IsValid() {
				t.Fatalf("dropped %v but returned %v", a, got)
			}
			return
		}
		plain := got.WithZone("")
		switch {
		case got.IsLoopback(), got.IsUnspecified(), got.IsMulticast(), got == broadcast4:
			t.Fatalf("usable(%v) = %v", a, got)
		case got.Is6() && got.IsLinkLocalUnicast():
			if o.in == nil || got.Zone() != "eth0" {
				t.Fatalf("link-local %v from interface %v", got, o.in)
			}
		case got.Zone() != "":
			t.Fatalf("zone on %v", got)
		case o.in != nil && o.in.onLink(plain):
		case plain == o.src && !isPublic(plain):
		default:
			t.Fatalf("usable(%v) from %v = %v: neither on-link nor the source", a, o.src, got)
		}
	})
}

// FuzzQuota: any sequence of adds, removes and victim picks keeps quota in
// step with a plain model (victims are the oldest of a biggest source).
func FuzzQuota(f *testing.F) {
	f.Add([]byte("\x01\x12\x23\x34\x05\x96\xa7\x18\x29\x0b"))
	f.Add([]byte{0, 1, 0, 2, 16, 3, 3, 0, 2, 1, 19, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4096 {
			return
		}
		checkQuotaOps(t, ops)
	})
}

// FuzzFlood: packets from a few sources, in any order, never make the
// cache or the reports exceed their limits.
func FuzzFlood(f *testing.F) {
	seedPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResponse(b)
		if err != nil {
			return
		}
		lim := Limits{MaxInstancesPerSource: 2, MaxInstancesPerInterface: 5, MaxInstances: 6, MaxPeersPerSource: 1, MaxPeersPerTopic: 3}
		d, _ := fakeDiscoveryWith(fuzzTopic, lim)
		for i, src := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "198.18.0.1", ""} {
			o := onEth0(d, src)
			if i == 4 {
				o = origin{}
			}
			d.handleResponse(r, o, time.Now())
		}
		if st := d.Stats(); st.CachedInstances > lim.MaxInstances {
			t.Fatalf("cache %d > %d", st.CachedInstances, lim.MaxInstances)
		}
		for k, n := range d.cache.perType {
			if n > lim.MaxInstancesPerSource {
				t.Fatalf("source %v holds %d", k, n)
			}
		}
		for _, q := range d.cache.perIface {
			if q.len() > lim.MaxInstancesPerInterface {
				t.Fatalf("interface holds %d", q.len())
			}
		}
		d.mu.Lock()
		st := d.topics[fuzzTopic]
		d.mu.Unlock()
		st.mu.Lock()
		n := len(st.found)
		st.mu.Unlock()
		if n > lim.MaxPeersPerTopic {
			t.Fatalf("topic remembers %d peers", n)
		}
	})
}

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

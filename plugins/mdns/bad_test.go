//go:build linux

package mdns

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

// hostilePackets builds a bounded set of malformed, oversized and lying
// mDNS packets about topic, aimed at a looker whose id is victim.
func hostilePackets(t *testing.T, topic framework.Topic, victim peerID, liar netip.Addr) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var pkts [][]byte
	// Random garbage of every small size, and some bigger.
	for i := range 200 {
		n := i
		if i >= 100 {
			n = rng.IntN(1400)
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if n > 2 && i%2 == 0 {
			b[2] |= 0x80 // QR set: looks like a response
		}
		pkts = append(pkts, b)
	}
	// Lies in our own format.
	var otherID peerID
	otherID[0] = 0xee
	good := announcement{
		service:  ServiceType(topic),
		instance: instanceName(topic, otherID),
		host:     targetName(topic, otherID),
		port:     4999,
		txt:      txtStrings(record{Topic: topic, ID: otherID}),
		ttl:      120,
	}
	var lies [][]byte
	lie := func(mod func(a *announcement)) {
		a := good
		a.txt = append([]string(nil), good.txt...)
		mod(&a)
		b, err := a.pack([]netip.Addr{liar}, false)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, b)
		lies = append(lies, b)
	}
	other := framework.TopicFromString("another topic")
	lie(func(a *announcement) { a.txt[1] = "topic=" + other.String() })       // TXT topic differs
	lie(func(a *announcement) { a.txt[1] = "topic=zz" + topic.String()[2:] }) // not hex
	lie(func(a *announcement) { a.txt = a.txt[:2] })                          // no id
	lie(func(a *announcement) { a.txt[0] = "v=2" })                           // unknown version
	lie(func(a *announcement) { a.txt[2] = "id=" + victim.String() })         // the victim itself
	lie(func(a *announcement) { a.port = 0 })                                 // nothing to dial
	lie(func(a *announcement) {                                               // huge TXT (and a wrong topic)
		a.txt[1] = "topic=" + other.String()
		for i := range 30 {
			a.txt = append(a.txt, string(rune('a'+i%26))+"="+string(make([]byte, 250)))
		}
	})
	lie(func(a *announcement) { // service type of another topic, TXT of this one
		a.service = ServiceType(other)
		a.instance = instanceName(other, otherID)
	})
	// Truncations of a valid announcement.
	valid, err := good.pack([]netip.Addr{liar}, false)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(valid); n += 7 {
		pkts = append(pkts, valid[:n])
	}
	// A compression pointer that points at itself.
	loop := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 120, 0, 2, 0xc0, 12}
	pkts = append(pkts, loop)
	// Many records: more than the parser looks at.
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{Response: true})
	_ = b.StartAnswers()
	name := dnsmessage.MustNewName(good.host + ".")
	for range 400 {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: 120}, dnsmessage.AResource{A: [4]byte{10, 9, 9, 9}})
	}
	many, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, many)
	// Oversized: fragmented datagrams beyond the MTU and beyond 9000 bytes,
	// starting with a lie (no id) or with the valid announcement (only past
	// 9000 bytes: smaller, it would be a true announcement with padding).
	for _, n := range []int{4000, 8999, 9001, 20000, 65000} {
		big := make([]byte, n)
		if n > maxPacket {
			copy(big, valid)
		} else {
			copy(big, lies[2])
		}
		pkts = append(pkts, big)
	}
	return pkts
}

// TestHostilePacketsIgnored: garbage, lies and oversized packets from a raw
// socket on the LAN report nothing, and the plugin keeps working.
func TestHostilePacketsIgnored(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(3)
	a, b := newIn(t, hs[0], Config{}), newIn(t, hs[1], fast())
	topic := framework.TopicFromString("hostile")
	join(t, a, topic, true, false, 4100)
	sb := join(t, b, topic, false, true, 0)
	checkPeer(t, sb.waitPeer(t, time.Second), hs[0], 4100, topic)

	pkts := hostilePackets(t, topic, b.id, hs[2].IPv4())
	hs[2].MustDo(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		// From port 5353 (as a responder would), and from another port.
		c5353, err := net.ListenUDP("udp4", &net.UDPAddr{IP: group4, Port: 5353})
		if err != nil {
			return err
		}
		defer c5353.Close()
		cAny, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			return err
		}
		defer cAny.Close()
		victim := &net.UDPAddr{IP: hs[1].IPv4().AsSlice(), Port: 5353}
		for _, c := range []*net.UDPConn{c5353, cAny} {
			pc := ipv4.NewPacketConn(c)
			if err := pc.SetMulticastInterface(ifc); err != nil {
				return err
			}
			for i, p := range pkts {
				dst := dst4
				if i%3 == 0 {
					dst = victim // unicast to the looker's port 5353
				}
				_, _ = c.WriteTo(p, dst) // oversized ones may fail to send: fine
			}
		}
		return nil
	})
	// Several query cycles later, still only A; and a new topic still works.
	sb.waitUpdates(t, 5, 5*time.Second)
	for _, p := range func() []framework.Peer { peers, _, _ := sb.snapshot(); return peers }() {
		if p.Port != 4100 || p.Host != hs[0].IPv4().String() {
			t.Fatalf("after hostile packets, reported %v (only A, re-reported each cycle, is right)", p)
		}
	}
	topic2 := framework.TopicFromString("hostile 2")
	sb2 := join(t, b, topic2, false, true, 0)
	join(t, a, topic2, true, false, 4101)
	checkPeer(t, sb2.waitPeer(t, time.Second), hs[0], 4101, topic2)
}

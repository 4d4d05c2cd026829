package mdns

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	pmdns "github.com/pion/mdns/v2"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

func TestServiceType(t *testing.T) {
	topic, _ := framework.ParseTopic(strings.Repeat("ab", 32))
	st := ServiceType(topic)
	if st != "_dws-ababababab._tcp" {
		t.Fatalf("ServiceType = %q", st)
	}
	name, _, _ := strings.Cut(st, ".")
	if len(name)-1 > 15 { // RFC 6335: at most 15 characters after the underscore
		t.Fatalf("service name %q too long", name)
	}
	if key, ok := serviceTypeKey(st); !ok || key != st {
		t.Fatalf("serviceTypeKey(%q) = %q, %v", st, key, ok)
	}
	if len(instanceName(topic, peerID{})) > 63 {
		t.Fatal("instance name longer than a DNS label")
	}
}

func TestServiceTypeKey(t *testing.T) {
	for in, want := range map[string]string{
		"_dws-0123456789._tcp":         "_dws-0123456789._tcp",
		"_DWS-ABCDEF0123._TCP.local.":  "_dws-abcdef0123._tcp",
		"_dws-abcdef0123._tcp.local":   "_dws-abcdef0123._tcp",
		"_dws-abcdef012._tcp":          "",
		"_dws-abcdef01234._tcp":        "",
		"_dws-abcdefg123._tcp":         "",
		"_dws-abcdef0123._udp":         "",
		"_http._tcp.local.":            "",
		"x._dws-abcdef0123._tcp.local": "",
		"":                             "",
	} {
		got, ok := serviceTypeKey(in)
		if got != want || ok != (want != "") {
			t.Errorf("serviceTypeKey(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestInstanceService(t *testing.T) {
	for in, want := range map[string]string{
		"dws-x-y._dws-0123456789._tcp.local.":     "_dws-0123456789._tcp",
		"a.b._dws-0123456789._tcp.local.":         "_dws-0123456789._tcp",
		"._dws-0123456789._tcp.local.":            "",
		"_dws-0123456789._tcp.local.":             "",
		"x._http._tcp.local.":                     "",
		"x._dws-0123456789._tcp.local":            "",
		"x._dws-0123456789._tcp.example.local.":   "",
		"x._dws-0123456789.extra._tcp.local.":     "",
		"x._dws-0123456789._tcp.local._tcp.local": "",
	} {
		got, ok := instanceService(in)
		if got != want || ok != (want != "") {
			t.Errorf("instanceService(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestDecodeTXT(t *testing.T) {
	topic := framework.TopicFromString("txt")
	id := peerID{9, 8, 7, 6, 5, 4, 3, 2}
	good := txtStrings(record{Topic: topic, ID: id})
	r, err := decodeTXT(decodeTXTStrings(good))
	if err != nil || r.Topic != topic || r.ID != id {
		t.Fatalf("decode(encode) = %+v, %v", r, err)
	}
	cases := []struct {
		name string
		txt  []string
		err  error
	}{
		{"upper-case keys and hex", []string{"V=1", "TOPIC=" + strings.ToUpper(topic.String()), "ID=" + strings.ToUpper(id.String())}, nil},
		{"no version", []string{"topic=" + topic.String(), "id=" + id.String()}, nil},
		{"extra keys", append([]string{"x=y", "flag", ""}, good...), nil},
		{"first key wins", append(append([]string(nil), good...), "topic=00"), nil},
		{"version 2", []string{"v=2", "topic=" + topic.String(), "id=" + id.String()}, errBadVersion},
		{"no topic", []string{"v=1", "id=" + id.String()}, errNoTopic},
		{"no id", []string{"v=1", "topic=" + topic.String()}, errNoID},
		{"flag topic", []string{"topic", "id=" + id.String()}, errBadTopic},
		{"short topic", []string{"topic=" + topic.String()[2:], "id=" + id.String()}, errBadTopic},
		{"non-hex topic", []string{"topic=" + "zz" + topic.String()[2:], "id=" + id.String()}, errBadTopic},
		{"long id", []string{"topic=" + topic.String(), "id=" + id.String() + "00"}, errBadID},
		{"non-hex id", []string{"topic=" + topic.String(), "id=xx" + id.String()[2:]}, errBadID},
	}
	for _, c := range cases {
		r, err := decodeTXT(decodeTXTStrings(c.txt))
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
		}
		if c.err == nil && (r.Topic != topic || r.ID != id) {
			t.Errorf("%s: decoded %+v", c.name, r)
		}
	}
}

// Our TXT decoding agrees with pion's entries (what pion answers with).
func TestTXTMatchesPion(t *testing.T) {
	rec := record{Topic: framework.TopicFromString("pion"), ID: peerID{1}}
	entries := txtEntries(rec)
	if r, err := decodeTXT(entries); err != nil || r != rec {
		t.Fatalf("decodeTXT(pion entries) = %+v, %v", r, err)
	}
	for i, e := range entries {
		if s := e.Key + "=" + string(e.Value); s != txtStrings(rec)[i] {
			t.Errorf("entry %d: %q vs %q", i, s, txtStrings(rec)[i])
		}
	}
	_ = pmdns.TXTEntry{}
}

func TestPackParse(t *testing.T) {
	topic := framework.TopicFromString("pack")
	id := peerID{1, 2, 3}
	a := announcement{
		service:  ServiceType(topic),
		instance: instanceName(topic, id),
		host:     targetName(topic, id),
		port:     4242,
		txt:      txtStrings(record{Topic: topic, ID: id}),
		ttl:      120,
	}
	addrs := []netip.Addr{netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("fd00::9"), netip.MustParseAddr("fe80::9")}
	b, err := a.pack(addrs, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	inst := a.instance + "." + a.service + ".local."
	srv := r.srvs[inst]
	if r.ptrs[inst] != ptrTTL || srv.port != 4242 || srv.target != a.host+"." || srv.ttl != 120 {
		t.Fatalf("parsed %+v", r)
	}
	if rec, err := decodeTXT(decodeTXTStrings(r.txts[inst].strs)); err != nil || rec.ID != id || rec.Topic != topic {
		t.Fatalf("TXT %v: %v", r.txts[inst], err)
	}
	if len(r.addrs) != 3 || r.addrs[0].addr != addrs[0] || !r.addrs[0].flush || r.addrs[0].host != a.host+"." {
		t.Fatalf("addresses %+v", r.addrs)
	}
	bye, err := a.pack(addrs, true)
	if err != nil {
		t.Fatal(err)
	}
	r, err = parseResponse(bye)
	if err != nil || r.ptrs[inst] != 0 || r.srvs[inst].ttl != 0 || len(r.addrs) != 0 {
		t.Fatalf("goodbye parsed %+v, %v", r, err)
	}
	q, err := packQuery(a.service)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseResponse(q); !errors.Is(err, errNotResponse) {
		t.Fatalf("a query parsed as a response: %v", err)
	}
}

// TestResolution drives the cache directly: records split over packets,
// goodbyes, address changes and flaps.
func TestResolution(t *testing.T) {
	d, s := fakeDiscovery(framework.TopicFromString("resolve"))
	topic := s.topic
	id := peerID{7}
	a := announcement{
		service: ServiceType(topic), instance: instanceName(topic, id), host: targetName(topic, id),
		port: 1000, txt: txtStrings(record{Topic: topic, ID: id}), ttl: 120,
	}
	v4, v6, ll := netip.MustParseAddr("198.18.0.5"), netip.MustParseAddr("fd00::5"), netip.MustParseAddr("fe80::5")
	eth0, nowhere := onEth0(d, "198.18.0.5"), origin{}
	feed := func(addrs []netip.Addr, goodbye bool, o origin) {
		t.Helper()
		b, err := a.pack(addrs, goodbye)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		d.handleResponse(r, o, time.Now())
	}
	feed([]netip.Addr{ll}, false, nowhere)      // link-local from an unknown interface: no zone, not dialable
	feed([]netip.Addr{v6, ll}, false, eth0)     // IPv6 first
	feed([]netip.Addr{v4, v6, ll}, false, eth0) // IPv4 is better: reported again
	feed([]netip.Addr{v6, v4}, false, eth0)     // same set, other order: nothing
	feed([]netip.Addr{v4}, false, eth0)         // flap: nothing
	feed([]netip.Addr{v4, v6, ll}, false, eth0) // nothing
	a.port = 1001
	feed([]netip.Addr{v4}, false, eth0)            // port change: reported
	feed(nil, true, nowhere)                       // goodbye: forgotten
	feed([]netip.Addr{v4}, false, origin{src: v4}) // back, from an unknown interface but v4 is the packet's source: reported again
	want := []string{"[fd00::5]:1000", "198.18.0.5:1000", "198.18.0.5:1001", "198.18.0.5:1001"}
	got := s.addrs()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("reports %v, want %v", got, want)
	}
}

package mdns

import (
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// Record TTLs (RFC 6762 §10): host-related records (SRV, TXT, A, AAAA) use
// Config.TTL (default 120 s, as pion's answers do); the shared PTR 75 min.
const (
	ptrTTL     = 4500
	cacheFlush = 1 << 15 // top bit of the rrclass: cache-flush (RFC 6762 §10.2)
)

// announcement describes the records of one (topic, swarm) instance.
type announcement struct {
	service  string // "_dws-…._tcp"
	instance string // "dwebswarm-<id>"
	host     string // "dws-<id>.local"
	port     uint16
	txt      []string
	ttl      uint32
}

// pack builds an unsolicited mDNS response (RFC 6762 §8.3) that carries,
// all in the answer section: PTR, SRV, TXT and, unless goodbye, one A/AAAA
// per address. A goodbye (RFC 6762 §10.1) has TTL 0 and no address records
// (the host name is shared by the other topics).
func (a announcement) pack(addrs []netip.Addr, goodbye bool) ([]byte, error) {
	svcName, err := dnsmessage.NewName(a.service + "." + Domain + ".")
	if err != nil {
		return nil, err
	}
	instName, err := dnsmessage.NewName(a.instance + "." + a.service + "." + Domain + ".")
	if err != nil {
		return nil, err
	}
	hostName, err := dnsmessage.NewName(a.host + ".")
	if err != nil {
		return nil, err
	}
	ttl, pttl := a.ttl, uint32(ptrTTL)
	if goodbye {
		ttl, pttl = 0, 0
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{Response: true, Authoritative: true})
	b.EnableCompression()
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	hdr := func(name dnsmessage.Name, ttl uint32, flush bool) dnsmessage.ResourceHeader {
		class := dnsmessage.ClassINET
		if flush {
			class |= cacheFlush
		}
		return dnsmessage.ResourceHeader{Name: name, Class: class, TTL: ttl}
	}
	if err := b.PTRResource(hdr(svcName, pttl, false), dnsmessage.PTRResource{PTR: instName}); err != nil {
		return nil, err
	}
	if err := b.SRVResource(hdr(instName, ttl, true), dnsmessage.SRVResource{Port: a.port, Target: hostName}); err != nil {
		return nil, err
	}
	if err := b.TXTResource(hdr(instName, ttl, true), dnsmessage.TXTResource{TXT: a.txt}); err != nil {
		return nil, err
	}
	if !goodbye {
		for _, ad := range addrs {
			switch {
			case ad.Is4():
				err = b.AResource(hdr(hostName, ttl, true), dnsmessage.AResource{A: ad.As4()})
			case ad.Is6():
				err = b.AAAAResource(hdr(hostName, ttl, true), dnsmessage.AAAAResource{AAAA: ad.As16()})
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

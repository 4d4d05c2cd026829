package mdns

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// maxRecords bounds how many resource records of one packet are looked at.
const maxRecords = 256

var errNotResponse = errors.New("not an mDNS response")

// srvData is an SRV record of an instance.
type srvData struct {
	target string // lower-case host name with final dot
	port   uint16
	ttl    uint32
}

// txtData is a TXT record of an instance.
type txtData struct {
	strs []string
	ttl  uint32
}

// addrData is an A or AAAA record of a host.
type addrData struct {
	host  string // lower-case, final dot
	addr  netip.Addr
	ttl   uint32
	flush bool // cache-flush bit set
}

// response is what one mDNS response says about instances of our service
// types: only records of names under "_dws-<10 hex>._tcp.local." are kept,
// plus every address record (the caller keeps those of known targets).
type response struct {
	ptrs  map[string]uint32  // instance name → TTL (0: goodbye)
	srvs  map[string]srvData // instance name → SRV
	txts  map[string]txtData // instance name → TXT
	addrs []addrData
}

// instanceService returns the service-type key of an instance name
// ("<label>._dws-….​_tcp.local." → "_dws-…._tcp"), or ok=false when the
// name is not an instance of one of our service types.
func instanceService(name string) (key string, ok bool) {
	rest, found := strings.CutSuffix(name, "._tcp.local.")
	if !found {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 { // no instance label in front
		return "", false
	}
	return serviceTypeKey(rest[i+1:] + "._tcp")
}

// parseResponse reads an mDNS response (RFC 6762 §18: QR set; opcode and
// rcode zero) and keeps the records that concern our record format. Names
// are lower-cased. Malformed packets fail as a whole; unknown record types
// are skipped.
func parseResponse(b []byte) (*response, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return nil, err
	}
	if !h.Response || h.OpCode != 0 || h.RCode != dnsmessage.RCodeSuccess {
		return nil, errNotResponse
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	r := &response{}
	n := 0
	// Answers, then authorities (probes put records there: skipped), then
	// additionals.
	for {
		hdr, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, err
		}
		if n++; n > maxRecords {
			return r, nil
		}
		if err := r.add(&p, hdr, p.SkipAnswer); err != nil {
			return nil, err
		}
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return nil, err
	}
	for {
		hdr, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, err
		}
		if n++; n > maxRecords {
			return r, nil
		}
		if err := r.add(&p, hdr, p.SkipAdditional); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *response) add(p *dnsmessage.Parser, hdr dnsmessage.ResourceHeader, skip func() error) error {
	if hdr.Class&^cacheFlush != dnsmessage.ClassINET {
		return skip()
	}
	name := strings.ToLower(hdr.Name.String())
	flush := hdr.Class&cacheFlush != 0
	switch hdr.Type {
	case dnsmessage.TypePTR:
		key, ok := serviceTypeKey(name)
		if !ok {
			return skip()
		}
		body, err := p.PTRResource()
		if err != nil {
			return err
		}
		inst := strings.ToLower(body.PTR.String())
		if ik, ok := instanceService(inst); !ok || ik != key {
			return nil // points at an instance of another type
		}
		r.ptrs = setMap(r.ptrs, inst, hdr.TTL)
	case dnsmessage.TypeSRV:
		if _, ok := instanceService(name); !ok {
			return skip()
		}
		body, err := p.SRVResource()
		if err != nil {
			return err
		}
		r.srvs = setMap(r.srvs, name, srvData{target: strings.ToLower(body.Target.String()), port: body.Port, ttl: hdr.TTL})
	case dnsmessage.TypeTXT:
		if _, ok := instanceService(name); !ok {
			return skip()
		}
		body, err := p.TXTResource()
		if err != nil {
			return err
		}
		r.txts = setMap(r.txts, name, txtData{strs: body.TXT, ttl: hdr.TTL})
	case dnsmessage.TypeA:
		body, err := p.AResource()
		if err != nil {
			return err
		}
		r.addrs = append(r.addrs, addrData{host: name, addr: netip.AddrFrom4(body.A), ttl: hdr.TTL, flush: flush})
	case dnsmessage.TypeAAAA:
		body, err := p.AAAAResource()
		if err != nil {
			return err
		}
		r.addrs = append(r.addrs, addrData{host: name, addr: netip.AddrFrom16(body.AAAA).Unmap(), ttl: hdr.TTL, flush: flush})
	default:
		return skip()
	}
	return nil
}

func setMap[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = make(map[string]V)
	}
	m[k] = v
	return m
}

// query packs a multicast PTR question for service (QM, ID 0, RFC 6762 §5.2).
func packQuery(service string) ([]byte, error) {
	name, err := dnsmessage.NewName(service + "." + Domain + ".")
	if err != nil {
		return nil, err
	}
	msg := dnsmessage.Message{Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}}}
	return msg.Pack()
}

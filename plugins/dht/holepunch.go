package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	anacrolix "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"golang.org/x/time/rate"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Hole punching.
//
// A peer behind NAT can be reached over UDP once both NATs hold a mapping
// for the pair. The DHT node that told the dialler about the peer (its
// referrer) has talked to both, so it relays a notice between them. One KRPC
// query method of our own, HolePunchMethod, carries both legs, with its
// payload in standard argument fields (anacrolix drops unknown keys):
//
//	A → R  {"q": "dws_holepunch", "a": {"id": A, "info_hash": IH, "token": compact(B)}}
//	R → B  {"q": "dws_holepunch", "a": {"id": R, "info_hash": IH, "token": compact(A as R sees it), "implied_port": 1}}
//	B → R  {"y": "r", "r": {"id": B}}     then B sends PunchProbes UDP packets to A
//	R → A  {"y": "r", "r": {"id": R}}     or {"y": "e", "e": [203, reason]}
//
// compact(X) is X's address in BEP 5 compact form (4-byte IPv4 or 16-byte
// IPv6, then a 2-byte big-endian port). "implied_port": 1 marks the relayed
// leg. While waiting, A sends a probe to B as well and then dials uTP to B:
// A's packets open A's NAT towards B, B's probes open B's NAT towards A, and
// the uTP handshake passes through both.
//
// Abuse limits: a relay (a full node) relays only towards a peer stored in
// its peer store for that infohash — i.e. one that announced to it — and at
// most RelayRate requests a second overall and RelayPerSource a second from
// one IP. A target accepts the relayed leg only from a node it sent
// announce_peer to for that infohash (within Limits.AnnouncedTTL), so that
// nobody else can aim its probes. Probes, the target's and the requester's
// own, go out at most ProbeRate times a second overall, once a second per
// destination address, and Limits.ProbeNoticesPerIP times a second (burst
// Limits.ProbeBurstPerIP) per destination IP, whatever the port.
// Probes are PunchProbe (not a bencoded dictionary: the swarm's socket hands
// it to the uTP side, which ignores it).

// HolePunchMethod is the KRPC query method of a hole punch.
const HolePunchMethod = "dws_holepunch"

// Relay and probe limits (requests per second).
const (
	RelayRate      = 50
	RelayPerSource = 5
	ProbeRate      = 50
	PunchProbes    = 3
)

// PunchProbe is the payload of a hole-punch probe packet.
var PunchProbe = []byte("\x00dws-punch")

// KRPC error codes of a refused hole punch (BEP 5: 201 generic, 203 protocol).
const (
	codeGeneric  = 201
	codeProtocol = 203
)

// ErrHolePunch wraps every hole-punch failure.
var ErrHolePunch = errors.New("dht: hole punch failed")

// punchRequest is a decoded hole-punch query.
type punchRequest struct {
	ih      [20]byte
	addr    netip.AddrPort // B (to relay to) or A (to probe)
	relayed bool           // R → B leg
}

// parsePunch validates a hole-punch query. It never panics.
func parsePunch(m *krpc.Msg) (punchRequest, error) {
	if m == nil || m.A == nil {
		return punchRequest{}, errors.New("no arguments")
	}
	a := m.A
	var zero krpc.ID
	if a.InfoHash == zero {
		return punchRequest{}, errors.New("no info_hash")
	}
	ap, err := decodeCompact([]byte(a.Token))
	if err != nil {
		return punchRequest{}, err
	}
	return punchRequest{ih: a.InfoHash, addr: ap, relayed: a.ImpliedPort}, nil
}

// decodeCompact reads a BEP 5 compact address (6 or 18 bytes).
func decodeCompact(b []byte) (netip.AddrPort, error) {
	if len(b) != 6 && len(b) != 18 {
		return netip.AddrPort{}, fmt.Errorf("compact address of %d bytes, want 6 or 18", len(b))
	}
	ip, _ := netip.AddrFromSlice(b[:len(b)-2])
	ip = ip.Unmap()
	port := uint16(b[len(b)-2])<<8 | uint16(b[len(b)-1])
	if port == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return netip.AddrPort{}, fmt.Errorf("unusable address %s:%d", ip, port)
	}
	return netip.AddrPortFrom(ip, port), nil
}

// encodeCompact writes a BEP 5 compact address.
func encodeCompact(ap netip.AddrPort) []byte {
	ip := ap.Addr().Unmap()
	b := ip.AsSlice()
	return append(b, byte(ap.Port()>>8), byte(ap.Port()))
}

// puncher holds the hole-punch rate limits of one Node.
type puncher struct {
	mu        sync.Mutex
	relay     *rate.Limiter
	probe     *rate.Limiter
	perSource map[netip.Addr]*rate.Limiter
	perDest   map[netip.AddrPort]time.Time
	perIP     map[netip.Addr]*ipLimiter // lazily made
	wg        sync.WaitGroup
}

// maxLimiterEntries bounds the per-address limiter maps.
const maxLimiterEntries = 4096

// ipLimiter is the probe limiter of one destination IP, with its last use.
type ipLimiter struct {
	l    *rate.Limiter
	last time.Time
}

func newPuncher() *puncher {
	return &puncher{
		relay:     rate.NewLimiter(RelayRate, RelayRate),
		probe:     rate.NewLimiter(ProbeRate, ProbeRate),
		perSource: make(map[netip.Addr]*rate.Limiter),
		perDest:   make(map[netip.AddrPort]time.Time),
	}
}

// allowRelay applies the global and per-source relay limits.
func (p *puncher) allowRelay(src netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.perSource[src]
	if l == nil {
		if len(p.perSource) > 4096 {
			clear(p.perSource) // bounded memory; limits restart
		}
		l = rate.NewLimiter(RelayPerSource, RelayPerSource)
		p.perSource[src] = l
	}
	return l.Allow() && p.relay.Allow()
}

// allowProbe applies the global limit, one notice a second per destination
// address and lim's rate per destination IP, at time now.
func (p *puncher) allowProbe(dst netip.AddrPort, now time.Time, lim *Limits) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.perDest[dst]; ok && now.Sub(last) < time.Second {
		return false
	}
	if len(p.perDest) > maxLimiterEntries {
		clear(p.perDest)
	}
	if p.perIP == nil {
		p.perIP = make(map[netip.Addr]*ipLimiter)
	}
	ip := dst.Addr().Unmap()
	l := p.perIP[ip]
	if l == nil {
		if len(p.perIP) >= maxLimiterEntries {
			// Forget the destinations whose bucket has refilled (their
			// limit would allow a full burst anyway); clear only if none has.
			refill := time.Duration(float64(max(lim.ProbeBurstPerIP, 1)) / max(lim.ProbeNoticesPerIP, 1e-3) * float64(time.Second))
			for a, old := range p.perIP {
				if now.Sub(old.last) >= refill {
					delete(p.perIP, a)
				}
			}
			if len(p.perIP) >= maxLimiterEntries {
				clear(p.perIP)
			}
		}
		r := rate.Limit(lim.ProbeNoticesPerIP)
		if lim.ProbeNoticesPerIP < 0 {
			r = rate.Inf
		}
		l = &ipLimiter{l: rate.NewLimiter(r, max(lim.ProbeBurstPerIP, 1))}
		p.perIP[ip] = l
	}
	l.last = now
	if !l.l.AllowN(now, 1) || !p.probe.AllowN(now, 1) {
		return false
	}
	p.perDest[dst] = now
	return true
}

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// reply writes a KRPC reply (or error when code != 0) to a query.
func (d *Node) reply(m *krpc.Msg, to net.Addr, code int, reason string) {
	out := krpc.Msg{T: m.T, Y: "r", R: &krpc.Return{ID: d.id}}
	if code != 0 {
		out = krpc.Msg{T: m.T, Y: "e", E: &krpc.Error{Code: code, Msg: reason}}
	}
	// A read-only node says so (BEP 43) in these replies too, or the node
	// that relayed a hole punch to us would add us to its routing table.
	if srv := d.current(); srv == nil || srv.passive {
		out.ReadOnly = true
	}
	b, err := bencode.Marshal(out)
	if err == nil {
		_, _ = d.pc.WriteTo(b, to)
	}
}

// handlePunch serves a hole-punch query (on the socket's read goroutine:
// anything slow runs in the background).
func (d *Node) handlePunch(m *krpc.Msg, src net.Addr) {
	req, err := parsePunch(m)
	srcAP, ok := addrPortOf(src)
	if err != nil || !ok {
		d.reply(m, src, codeProtocol, "bad holepunch")
		return
	}
	if req.relayed {
		d.punchTarget(m, src, srcAP, req)
		return
	}
	d.forward(m, src, srcAP, req, HolePunchMethod)
}

// forward: we are R; relay A's request (a hole punch or a relay request,
// method) to B if B announced to us.
func (d *Node) forward(m *krpc.Msg, src net.Addr, srcAP netip.AddrPort, req punchRequest, method string) {
	srv := d.current()
	if srv == nil || srv.passive {
		d.reply(m, src, codeGeneric, "not a relay")
		return
	}
	if !d.store.Has(req.ih, req.addr) {
		d.reply(m, src, codeGeneric, "peer unknown")
		return
	}
	if !d.punch.allowRelay(srcAP.Addr()) {
		d.reply(m, src, codeGeneric, "rate limited")
		return
	}
	d.punch.wg.Add(1)
	go func() {
		defer d.punch.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*d.cfg.QueryTimeout)
		defer cancel()
		go func() {
			select {
			case <-d.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		res := srv.s.Query(ctx, anacrolix.NewAddr(net.UDPAddrFromAddrPort(req.addr)), method, anacrolix.QueryInput{
			MsgArgs:  krpc.MsgArgs{InfoHash: req.ih, Token: string(encodeCompact(srcAP)), ImpliedPort: true},
			NumTries: 2,
		})
		if err := res.ToError(); err != nil {
			d.reply(m, src, codeGeneric, "peer did not answer")
			return
		}
		d.reply(m, src, 0, "")
	}()
}

// punchTarget: we are B; probe A if the relay is a node we announced the
// infohash to.
func (d *Node) punchTarget(m *krpc.Msg, src net.Addr, srcAP netip.AddrPort, req punchRequest) {
	if !d.announcedTo(req.ih, srcAP) {
		d.limits.punchNotAnnounced.Add(1)
		d.reply(m, src, codeGeneric, "not announced to you")
		return
	}
	if !d.punch.allowProbe(req.addr, d.clock.Now(), &d.cfg.Limits) {
		d.limits.probesLimited.Add(1)
		d.reply(m, src, codeGeneric, "rate limited")
		return
	}
	d.reply(m, src, 0, "")
	d.sendProbes(req.addr)
}

// sendProbes sends PunchProbes probe packets to addr, 0, 50 and 150 ms
// apart. The caller checked the probe limits.
func (d *Node) sendProbes(addr netip.AddrPort) {
	d.limits.probesSent.Add(1)
	to := net.UDPAddrFromAddrPort(addr)
	_, _ = d.pc.WriteTo(PunchProbe, to)
	d.goPunch(func() {
		for _, gap := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}[:PunchProbes-1] {
			select {
			case <-d.clock.After(gap):
			case <-d.closing:
				return
			}
			_, _ = d.pc.WriteTo(PunchProbe, to)
		}
	})
}

// HolePunch asks p's referrer to relay a hole punch to p (see the package
// doc), sends probes to p itself, and returns once the referrer confirmed
// that p was told. It implements framework.HolePuncher.
func (d *Node) HolePunch(ctx context.Context, p framework.Peer) error {
	tap, ref, err := punchAddrs(p)
	if err != nil {
		return err
	}
	srv := d.current()
	if srv == nil {
		return errClosed()
	}
	// a dialler that cannot be hole-punched asks for a relay beside
	// (see relayreq.go)
	d.goPunch(func() { d.relayIfUnpunchable(ctx, p) })
	// Our own probes follow the same limits as a target's (the relay's
	// notice still goes out: it is addressed to the referrer).
	if d.punch.allowProbe(tap, d.clock.Now(), &d.cfg.Limits) {
		d.sendProbes(tap)
	} else {
		d.limits.probesLimited.Add(1)
	}
	res := srv.s.Query(ctx, anacrolix.NewAddr(net.UDPAddrFromAddrPort(ref)), HolePunchMethod, anacrolix.QueryInput{
		MsgArgs:  krpc.MsgArgs{InfoHash: Infohash(p.Topic), Token: string(encodeCompact(tap))},
		NumTries: 2,
	})
	if err := res.ToError(); err != nil {
		return fmt.Errorf("%w: via %s: %v", ErrHolePunch, ref, err)
	}
	return nil
}

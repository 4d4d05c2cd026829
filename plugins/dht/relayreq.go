package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	anacrolix "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"golang.org/x/time/rate"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Relay requests.
//
// A dialler that cannot be hole-punched (its NAT maps per destination: the
// DHT nodes it talks to see it at different ports) cannot punch to an
// announcer behind a NAT that filters by address and port, although that
// announcer is itself hole-punchable and so reserves at no relay (with the
// relay client's default, relay-when unpunchable). The dialler then asks
// the announcer, through the same referrer and with the same payload as a
// hole punch, to reserve at a relay:
//
//	A → R  {"q": "dws_relayreq", "a": {"id": A, "info_hash": IH, "token": compact(B)}}
//	R → B  {"q": "dws_relayreq", "a": {"id": R, "info_hash": IH, "token": compact(A as R sees it), "implied_port": 1}}
//	B → R  {"y": "r", "r": {"id": B}}   B's relay client reserves (see Node.SetOnRelayRequest)
//	R → A  {"y": "r", "r": {"id": R}}   or {"y": "e", "e": [201, reason]}
//
// The relay then announces IH with B's allocation; A looks the topic up
// again (RelayRefreshes rounds, 1 s, 2 s, 4 s … after the answer), finds
// the allocation and dials it. The relayed session is the swarm's Noise
// session, end to end between A and B, as any relayed one.
//
// The limits are the hole punch's: R relays only towards a peer that
// announced IH to it, within RelayRate and RelayPerSource (shared with hole
// punches); B accepts the relayed leg only from a node it announced IH to,
// and at most RelayRequestRate a second (burst RelayRequestBurst) in all:
// a request only extends B's demand for a reservation, so one is as good
// as many. A sends at most one request per target address per
// RelayRequestGap.

// RelayRequestMethod is the KRPC query method of a relay request.
const RelayRequestMethod = "dws_relayreq"

// Relay-request limits and timings.
const (
	RelayRequestRate  = 1                // relayed legs a target accepts a second
	RelayRequestBurst = 3                // and in a burst
	RelayRequestGap   = 30 * time.Second // between a dialler's requests to one address
	RelayRefreshes    = 4                // lookups after an accepted request (1 s, 2 s, 4 s, 8 s later)
	// RelayRequestWait bounds how long a hole punch waits for the node's
	// connectivity report (two reporters) before deciding whether to ask
	// for a relay; unknown then counts as not hole-punchable.
	RelayRequestWait = 5 * time.Second
)

// relayRequests holds a node's relay-request state.
type relayRequests struct {
	mu      sync.Mutex
	accept  *rate.Limiter                // relayed legs accepted (target side)
	sent    map[netip.AddrPort]time.Time // requests we sent, per target
	handler func(infohash [20]byte)      // the relay client's demand
}

func newRelayRequests() *relayRequests {
	return &relayRequests{accept: rate.NewLimiter(RelayRequestRate, RelayRequestBurst), sent: map[netip.AddrPort]time.Time{}}
}

// SetOnRelayRequest installs f, called (on the socket's read goroutine: f
// must not block) with the infohash of every relay request this node
// accepts: a dialler that cannot hole punch asked, through a node this
// node announced that infohash to, to be reached through a relay. A relay
// client hands it its demand ([relay.Client.Demand]). With no handler the
// node refuses relay requests ("no relay").
func (d *Node) SetOnRelayRequest(f func(infohash [20]byte)) {
	d.relayReq.mu.Lock()
	d.relayReq.handler = f
	d.relayReq.mu.Unlock()
}

// handleRelayRequest serves a relay-request query (both legs).
func (d *Node) handleRelayRequest(m *krpc.Msg, src net.Addr) {
	req, err := parsePunch(m)
	srcAP, ok := addrPortOf(src)
	if err != nil || !ok {
		d.reply(m, src, codeProtocol, "bad relay request")
		return
	}
	if !req.relayed {
		d.forward(m, src, srcAP, req, RelayRequestMethod)
		return
	}
	if !d.announcedTo(req.ih, srcAP) {
		d.limits.relayReqRefused.Add(1)
		d.reply(m, src, codeGeneric, "not announced to you")
		return
	}
	d.relayReq.mu.Lock()
	h := d.relayReq.handler
	allowed := h != nil && d.relayReq.accept.Allow()
	d.relayReq.mu.Unlock()
	switch {
	case h == nil:
		d.limits.relayReqRefused.Add(1)
		d.reply(m, src, codeGeneric, "no relay")
		return
	case !allowed:
		d.limits.relayReqRefused.Add(1)
		d.reply(m, src, codeGeneric, "rate limited")
		return
	}
	d.limits.relayReqAccepted.Add(1)
	d.reply(m, src, 0, "")
	h(req.ih)
}

// RequestRelay asks p's referrer to tell p that we cannot hole punch to
// it and want to reach it through a relay (see "Relay requests" in the
// source), and returns once the referrer confirmed that p accepted. It
// then looks p.Topic up again, RelayRefreshes times, in the background, to
// find the relay's allocation. Requests to one address are at most one per
// RelayRequestGap (a later one returns nil at once).
func (d *Node) RequestRelay(ctx context.Context, p framework.Peer) error {
	tap, ref, err := punchAddrs(p)
	if err != nil {
		return err
	}
	srv := d.current()
	if srv == nil {
		return errClosed()
	}
	now := d.clock.Now()
	d.relayReq.mu.Lock()
	if last, ok := d.relayReq.sent[tap]; ok && now.Sub(last) < RelayRequestGap {
		d.relayReq.mu.Unlock()
		return nil
	}
	if len(d.relayReq.sent) >= maxLimiterEntries {
		clear(d.relayReq.sent)
	}
	d.relayReq.sent[tap] = now
	d.relayReq.mu.Unlock()
	res := srv.s.Query(ctx, anacrolix.NewAddr(net.UDPAddrFromAddrPort(ref)), RelayRequestMethod, anacrolix.QueryInput{
		MsgArgs:  krpc.MsgArgs{InfoHash: Infohash(p.Topic), Token: string(encodeCompact(tap))},
		NumTries: 2,
	})
	if err := res.ToError(); err != nil {
		return fmt.Errorf("%w: relay request via %s: %v", ErrHolePunch, ref, err)
	}
	d.limits.relayReqSent.Add(1)
	d.punch.wg.Add(1)
	go func() {
		defer d.punch.wg.Done()
		wait := time.Second
		for range RelayRefreshes {
			select {
			case <-d.clock.After(wait):
			case <-d.closing:
				return
			}
			_ = d.Refresh(context.Background(), p.Topic)
			wait *= 2
		}
	}()
	return nil
}

// relayIfUnpunchable runs beside a hole punch to p: once the node's
// connectivity is known (two reporters, within RelayRequestWait), it asks
// p for a relay if the node is not hole-punchable.
func (d *Node) relayIfUnpunchable(p framework.Peer) {
	defer d.punch.wg.Done()
	deadline := d.clock.Now().Add(RelayRequestWait)
	for {
		c := d.Connectivity()
		if c.Reporters >= 2 {
			if c.Holepunchable {
				return
			}
			break
		}
		if !d.clock.Now().Before(deadline) {
			break // unknown: ask (a request costs the target little)
		}
		select {
		case <-d.clock.After(100 * time.Millisecond):
		case <-d.closing:
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*d.cfg.QueryTimeout+time.Second)
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := d.RequestRelay(ctx, p); err != nil {
		d.limits.relayReqFailed.Add(1)
	}
}

// punchAddrs validates a hole punch's or relay request's peer: its
// address and its referrer's.
func punchAddrs(p framework.Peer) (target, ref netip.AddrPort, err error) {
	if p.Referrer == nil {
		return target, ref, fmt.Errorf("%w: %s has no referrer", ErrHolePunch, p.Addr())
	}
	t, err := netip.ParseAddr(p.Host)
	if err != nil || p.Port < 1 || p.Port > 65535 {
		return target, ref, fmt.Errorf("%w: %s is not an IP address and port", ErrHolePunch, p.Addr())
	}
	r, err := netip.ParseAddr(p.Referrer.Host)
	if err != nil || p.Referrer.Port < 1 || p.Referrer.Port > 65535 {
		return target, ref, fmt.Errorf("%w: bad referrer %s:%d", ErrHolePunch, p.Referrer.Host, p.Referrer.Port)
	}
	return netip.AddrPortFrom(t.Unmap(), uint16(p.Port)), netip.AddrPortFrom(r.Unmap(), uint16(p.Referrer.Port)), nil
}

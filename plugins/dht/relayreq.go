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
// punches). B accepts the relayed leg only from a node it announced IH to,
// at most RelayRequestPerSource a second from one node's IP (burst
// RelayRequestSourceBurst) and RelayRequestRate a second (burst
// RelayRequestBurst) in all; a request for an infohash whose demand B
// started less than RelayRequestGap ago is answered OK without starting
// another (one is as good as many: repeated requests do not renew B's
// reservation). Every refusal is counted by its reason.
//
// A sends at most one request per target address per RelayRequestGap
// (counted once the target accepted), and at most one per referrer IP and
// topic per RelayRequestGap (whatever the outcome): a hostile referrer
// that returns fake values naming itself cannot make A send a request per
// fake value. An accepted request starts the RelayRefreshes lookups only
// when no such schedule of the topic started in the last RelayRequestGap;
// they are lookup-only (no announce_peer) and do not move the topic's
// regular rounds. A suppressed request is counted
// (LimitStats.RelayRequestsSuppressed).
//
// Unknown connectivity (fewer than two reporters) counts as
// hole-punchable on both sides: A asks for a relay only when its report
// says it is not hole-punchable (within RelayRequestWait), as B reserves
// on its own only then (relay.Unpunchable).

// RelayRequestMethod is the KRPC query method of a relay request.
const RelayRequestMethod = "dws_relayreq"

// Relay-request limits and timings.
const (
	RelayRequestRate        = 1                // relayed legs a target accepts a second
	RelayRequestBurst       = 3                // and in a burst
	RelayRequestPerSource   = 0.1              // relayed legs a target accepts a second from one IP
	RelayRequestSourceBurst = 2                // and in a burst
	RelayRequestGap         = 30 * time.Second // between a dialler's requests to one address, or via one referrer IP for one topic
	RelayRefreshes          = 4                // lookups after an accepted request (1 s, 2 s, 4 s, 8 s later)
	// RelayRequestWait bounds how long a hole punch waits for the node's
	// connectivity report (two reporters) before deciding whether to ask
	// for a relay; unknown then counts as hole-punchable (no request).
	RelayRequestWait = 5 * time.Second
)

// ErrRelayRequestSuppressed is returned by [Node.RequestRelay] for a
// request its gaps suppress (see RelayRequestGap).
var ErrRelayRequestSuppressed = errors.New("dht: relay request suppressed")

// refTopic keys the dialler's gap per referrer IP and topic.
type refTopic struct {
	ref   netip.Addr
	topic framework.Topic
}

// relayRequests holds a node's relay-request state.
type relayRequests struct {
	mu        sync.Mutex
	accept    *rate.Limiter                 // relayed legs accepted (target side)
	perSource map[netip.Addr]*rate.Limiter  // relayed legs accepted per referrer IP (target side)
	demanded  map[[20]byte]time.Time        // when we last called handler, per infohash (target side)
	sent      map[netip.AddrPort]time.Time  // accepted requests we sent, per target
	sentRef   map[refTopic]time.Time        // requests we sent, per referrer IP and topic
	refreshed map[framework.Topic]time.Time // start of a topic's last refresh schedule
	handler   func(infohash [20]byte)       // the relay client's demand
}

func newRelayRequests() *relayRequests {
	return &relayRequests{
		accept:    rate.NewLimiter(RelayRequestRate, RelayRequestBurst),
		perSource: map[netip.Addr]*rate.Limiter{},
		demanded:  map[[20]byte]time.Time{},
		sent:      map[netip.AddrPort]time.Time{},
		sentRef:   map[refTopic]time.Time{},
		refreshed: map[framework.Topic]time.Time{},
	}
}

// pruneGap makes room in m, a map of times: it forgets the entries older
// than RelayRequestGap (they no longer suppress anything), and clears m
// only if all are recent. It bounds m to maxLimiterEntries.
func pruneGap[K comparable](m map[K]time.Time, now time.Time) {
	if len(m) < maxLimiterEntries {
		return
	}
	for k, t := range m {
		if now.Sub(t) >= RelayRequestGap {
			delete(m, k)
		}
	}
	if len(m) >= maxLimiterEntries {
		clear(m)
	}
}

// recent reports whether m holds a time for k less than RelayRequestGap
// before now.
func recent[K comparable](m map[K]time.Time, k K, now time.Time) bool {
	t, ok := m[k]
	return ok && now.Sub(t) < RelayRequestGap
}

// SetOnRelayRequest installs f, called (on the socket's read goroutine: f
// must not block) with the infohash of every relay request this node
// accepts: a dialler that cannot hole punch asked, through a node this
// node announced that infohash to, to be reached through a relay. A relay
// client hands it its demand ([relay.Client.Demand]). f is called at most
// once per infohash per RelayRequestGap (later requests are answered OK:
// the demand f started still runs). With no handler the node refuses
// relay requests ("no relay").
func (d *Node) SetOnRelayRequest(f func(infohash [20]byte)) {
	d.relayReq.mu.Lock()
	d.relayReq.handler = f
	d.relayReq.mu.Unlock()
}

// relayReqVerdict is the target side's decision on a relayed leg.
type relayReqVerdict int

const (
	relayReqAccept relayReqVerdict = iota
	relayReqActive                 // accepted, a demand for it runs: no handler call
	relayReqNoRelay
	relayReqRateLimited
)

// admit applies the target side's limits to a relayed leg for ih from src
// at now, and returns the verdict and the handler to call.
func (r *relayRequests) admit(ih [20]byte, src netip.Addr, now time.Time) (relayReqVerdict, func([20]byte)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.handler
	if h == nil {
		return relayReqNoRelay, nil
	}
	l := r.perSource[src]
	if l == nil {
		if len(r.perSource) >= maxLimiterEntries {
			clear(r.perSource) // bounded memory; limits restart
		}
		l = rate.NewLimiter(RelayRequestPerSource, RelayRequestSourceBurst)
		r.perSource[src] = l
	}
	if !l.AllowN(now, 1) {
		return relayReqRateLimited, nil
	}
	if recent(r.demanded, ih, now) {
		return relayReqActive, nil
	}
	if !r.accept.AllowN(now, 1) {
		return relayReqRateLimited, nil
	}
	pruneGap(r.demanded, now)
	r.demanded[ih] = now
	return relayReqAccept, h
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
		d.limits.relayReqNotAnnounced.Add(1)
		d.reply(m, src, codeGeneric, "not announced to you")
		return
	}
	v, h := d.relayReq.admit(req.ih, srcAP.Addr().Unmap(), d.clock.Now())
	switch v {
	case relayReqNoRelay:
		d.limits.relayReqNoRelay.Add(1)
		d.reply(m, src, codeGeneric, "no relay")
	case relayReqRateLimited:
		d.limits.relayReqRateLimited.Add(1)
		d.reply(m, src, codeGeneric, "rate limited")
	case relayReqActive:
		d.limits.relayReqActive.Add(1)
		d.reply(m, src, 0, "")
	default:
		d.limits.relayReqAccepted.Add(1)
		d.reply(m, src, 0, "")
		h(req.ih)
	}
}

// goPunch runs f on a goroutine of d.punch.wg, unless d is closed (then
// it reports false): Close waits for it.
func (d *Node) goPunch(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.punch.wg.Add(1)
	go func() {
		defer d.punch.wg.Done()
		f()
	}()
	return true
}

// RequestRelay asks p's referrer to tell p that we cannot hole punch to
// it and want to reach it through a relay (see "Relay requests" in the
// source), and returns once the referrer confirmed that p accepted. It
// then looks p.Topic up again, RelayRefreshes times, in the background, to
// find the relay's allocation (unless such lookups of the topic started in
// the last RelayRequestGap). A request to an address accepted less than
// RelayRequestGap ago, or through a referrer IP used for the topic less
// than RelayRequestGap ago, is not sent: it returns an error wrapping
// ErrRelayRequestSuppressed.
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
	rt := refTopic{ref.Addr(), p.Topic}
	rr := d.relayReq
	rr.mu.Lock()
	if recent(rr.sent, tap, now) || recent(rr.sentRef, rt, now) {
		rr.mu.Unlock()
		d.limits.relayReqSuppressed.Add(1)
		return fmt.Errorf("%w: to %s via %s", ErrRelayRequestSuppressed, tap, ref)
	}
	pruneGap(rr.sentRef, now)
	rr.sentRef[rt] = now
	rr.mu.Unlock()
	res := srv.s.Query(ctx, anacrolix.NewAddr(net.UDPAddrFromAddrPort(ref)), RelayRequestMethod, anacrolix.QueryInput{
		MsgArgs:  krpc.MsgArgs{InfoHash: Infohash(p.Topic), Token: string(encodeCompact(tap))},
		NumTries: 2,
	})
	if err := res.ToError(); err != nil {
		return fmt.Errorf("%w: relay request via %s: %v", ErrHolePunch, ref, err)
	}
	d.limits.relayReqSent.Add(1)
	now = d.clock.Now()
	rr.mu.Lock()
	pruneGap(rr.sent, now)
	rr.sent[tap] = now
	refresh := !recent(rr.refreshed, p.Topic, now)
	if refresh {
		pruneGap(rr.refreshed, now)
		rr.refreshed[p.Topic] = now
	}
	rr.mu.Unlock()
	if !refresh {
		return nil // the topic's lookups after an earlier request still run
	}
	d.limits.relayRefreshSchedules.Add(1)
	d.goPunch(func() {
		wait := time.Second
		for range RelayRefreshes {
			select {
			case <-d.clock.After(wait):
			case <-d.closing:
				return
			}
			d.refreshLookup(p.Topic)
			wait *= 2
		}
	})
	return nil
}

// relayIfUnpunchable runs beside a hole punch to p: once the node's
// connectivity is known (two reporters, within RelayRequestWait), it asks
// p for a relay if the node is not hole-punchable. Unknown counts as
// hole-punchable (no request). It gives up, sending nothing, once ctx (the
// hole punch's: the engine cancels it when its dial ends) is done; a
// request already sent runs to its answer.
func (d *Node) relayIfUnpunchable(ctx context.Context, p framework.Peer) {
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
			return // unknown: as hole-punchable (see relay.Unpunchable)
		}
		select {
		case <-d.clock.After(100 * time.Millisecond):
		case <-d.closing:
			return
		case <-ctx.Done():
			return
		}
	}
	if ctx.Err() != nil {
		return // the dial ended (won or gave up): no relay needed for it
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*d.cfg.QueryTimeout+time.Second)
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-qctx.Done():
		}
	}()
	if err := d.RequestRelay(qctx, p); err != nil && !errors.Is(err, ErrRelayRequestSuppressed) {
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

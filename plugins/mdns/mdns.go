package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	pmdns "github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var (
	_ framework.Discovery = (*Discovery)(nil)
	_ framework.Starter   = (*Discovery)(nil)
)

// Defaults of [Config].
var (
	DefaultQueryBurst       = []time.Duration{0, 250 * time.Millisecond, time.Second, 3 * time.Second}
	DefaultAnnounceBurst    = []time.Duration{0, time.Second}
	DefaultQueryIntervalMin = 30 * time.Second
	DefaultQueryIntervalMax = 60 * time.Second
	DefaultResponseWindow   = 250 * time.Millisecond
	DefaultForgetAfter      = 150 * time.Second
	DefaultTTL              = 120 * time.Second
)

// Config configures a [Discovery]. The zero value is usable: every
// multicast-capable, up, non-loopback interface and the default timing.
type Config struct {
	// Interfaces restricts mDNS to these interface names. Empty: every up,
	// multicast-capable, non-loopback interface with an address (plus
	// loopback when IncludeLoopback). A name that does not exist, is down or
	// has no address fails Start.
	Interfaces []string
	// IncludeLoopback adds the loopback interface to the default set (for
	// hosts or namespaces that only have loopback). Naming "lo" in
	// Interfaces implies it.
	IncludeLoopback bool

	// QueryBurst lists when a lookup join queries, relative to the join
	// (default 0, 1 s, 3 s); after the last one it queries every
	// QueryIntervalMin..QueryIntervalMax, uniformly random (default 30–60 s).
	QueryBurst       []time.Duration
	QueryIntervalMin time.Duration
	QueryIntervalMax time.Duration
	// AnnounceBurst lists when an announce join sends its unsolicited
	// announcement (default 0 and 1 s, RFC 6762 §8.3). Between them and
	// later, the swarm answers queries.
	AnnounceBurst []time.Duration
	// ResponseWindow is how long after a query its cycle counts as complete
	// (Updated; the first one also Flushed). Default 250 ms.
	ResponseWindow time.Duration
	// ForgetAfter drops a found peer that was not heard of for this long, so
	// that it is reported again when it comes back. Default 150 s.
	ForgetAfter time.Duration
	// NoRereport turns off the re-report of every known peer at the end of
	// each query cycle. The re-report is what lets the swarm's queue pick a
	// LAN peer up again after forgetting it as unresponsive (the engine
	// ignores peers it still knows, so re-reports cause no events); address
	// flapping between cycles never causes a report.
	NoRereport bool
	// TTL of the SRV, TXT and address records we publish. Default 120 s.
	TTL time.Duration

	// Limits bound the instances and peers the LAN can make us keep and
	// report (per source, per interface, per topic). Zero fields: defaults.
	Limits Limits

	// Logger receives diagnostics (pion's included). Default: discarded.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.QueryBurst == nil {
		c.QueryBurst = DefaultQueryBurst
	}
	if c.AnnounceBurst == nil {
		c.AnnounceBurst = DefaultAnnounceBurst
	}
	if c.QueryIntervalMin == 0 {
		c.QueryIntervalMin = DefaultQueryIntervalMin
	}
	if c.QueryIntervalMax == 0 {
		c.QueryIntervalMax = max(DefaultQueryIntervalMax, c.QueryIntervalMin)
	}
	if c.ResponseWindow == 0 {
		c.ResponseWindow = DefaultResponseWindow
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = DefaultForgetAfter
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	c.Limits = c.Limits.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: mdns: "+format, append([]any{framework.ErrInvalidOption}, args...)...)
	}
	for _, l := range [][]time.Duration{c.QueryBurst, c.AnnounceBurst} {
		if len(l) == 0 {
			return bad("query and announce bursts need at least one entry")
		}
		for i, d := range l {
			if d < 0 || (i > 0 && d < l[i-1]) {
				return bad("burst %v must be non-negative and ascending", l)
			}
		}
	}
	switch {
	case c.QueryIntervalMin <= 0 || c.QueryIntervalMax < c.QueryIntervalMin:
		return bad("query interval %v..%v", c.QueryIntervalMin, c.QueryIntervalMax)
	case c.ResponseWindow < 0:
		return bad("negative response window")
	case c.ForgetAfter < 0:
		return bad("negative forget period")
	case c.TTL < time.Second || c.TTL > 24*time.Hour:
		return bad("TTL %v out of 1s..24h", c.TTL)
	}
	return nil
}

// Discovery is LAN discovery with DNS-SD over mDNS (see the package doc for
// the record format). [New] builds it and opens nothing; [Discovery.Start]
// (called by the swarm's Start) reads the interface addresses and opens
// the sockets in the network namespace of the calling thread.
//
// pion/mdns answers queries for the instances we announce; queries,
// announcements and the parsing of responses are ours, on a socket of our
// own (pion's browser costs O(topics²) per packet, ignores goodbyes and lets
// the address of an instance flap).
type Discovery struct {
	cfg  Config
	log  *slog.Logger
	id   peerID
	host string
	wg   sync.WaitGroup // read loops

	// Set by Start (under opMu and mu) and constant afterwards: the read
	// loops, the topics' loops and pion only run once Start has set them.
	ifaces []iface
	conn   *pmdns.Conn      // pion: the responder
	rx4    *ipv4.PacketConn // ours: queries, announcements, responses; nil when the family is unavailable
	rx6    *ipv6.PacketConn

	opMu    sync.Mutex // serialises Start, Join, Leave and Close
	mu      sync.Mutex // guards topics, byType, started, closed and cache
	topics  map[framework.Topic]*topicState
	byType  map[string][]*topicState // lookup joins by serviceTypeKey
	cache   cache
	started bool
	closed  bool
	stats   counters // what the LAN sent that we dropped (Stats)
}

// iface is a snapshot of one interface mDNS runs on.
type iface struct {
	ifc   net.Interface
	addrs []netip.Addr // IPv4 first, then IPv6 (global before link-local)
	// prefixes are the on-link prefixes of the addresses (address hygiene)
	prefixes []netip.Prefix
	has4     bool
	has6     bool
}

// New checks cfg and builds an mDNS discovery. It opens nothing: the
// sockets open, and the read loops start, in [Discovery.Start], which the
// swarm calls when it starts. A bad cfg fails with an error wrapping
// [framework.ErrInvalidOption].
func New(cfg Config) (*Discovery, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	id, err := newPeerID()
	if err != nil {
		return nil, fmt.Errorf("mdns: random id: %w", err)
	}
	return &Discovery{
		cfg:    cfg,
		log:    cfg.Logger,
		id:     id,
		host:   hostName(id),
		topics: make(map[framework.Topic]*topicState),
		byType: make(map[string][]*topicState),
		cache:  newCache(),
	}, nil
}

// errNotStarted is the error of a Join before Start.
var errNotStarted = fmt.Errorf("%w: mdns: Join before Start (the swarm starts its discoveries in Swarm.Start)", framework.ErrInvalidOption)

// Start implements [framework.Starter]: it picks the configured interfaces
// and opens the mDNS sockets on them in the network namespace of the
// calling thread, then starts reading. It fails when no interface can
// carry mDNS (an interface named in Config.Interfaces that is missing,
// down or without an address fails with an error wrapping
// framework.ErrInvalidOption). Start on a started Discovery returns nil;
// after Close it fails with framework.ErrClosed.
func (d *Discovery) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	closed, started := d.closed, d.started
	d.mu.Unlock()
	switch {
	case closed:
		return framework.ErrClosed
	case started:
		return nil
	}
	ifaces, err := selectInterfaces(d.cfg)
	if err != nil {
		return err
	}
	conn, rx4, rx6, err := d.open(ifaces)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.ifaces, d.conn, d.rx4, d.rx6 = ifaces, conn, rx4, rx6
	d.started = true
	d.mu.Unlock()
	if rx4 != nil {
		d.wg.Add(1)
		go d.readLoop4()
	}
	if rx6 != nil {
		d.wg.Add(1)
		go d.readLoop6()
	}
	return nil
}

func selectInterfaces(cfg Config) ([]iface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("mdns: list interfaces: %w", err)
	}
	var picked []net.Interface
	if len(cfg.Interfaces) > 0 {
		for _, name := range cfg.Interfaces {
			i := slices.IndexFunc(all, func(ifc net.Interface) bool { return ifc.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("%w: mdns: no interface %q", framework.ErrInvalidOption, name)
			}
			if all[i].Flags&net.FlagUp == 0 {
				return nil, fmt.Errorf("%w: mdns: interface %q is down", framework.ErrInvalidOption, name)
			}
			if !slices.ContainsFunc(picked, func(p net.Interface) bool { return p.Index == all[i].Index }) {
				picked = append(picked, all[i])
			}
		}
	} else {
		for _, ifc := range all {
			up := ifc.Flags&net.FlagUp != 0
			loop := ifc.Flags&net.FlagLoopback != 0
			mcast := ifc.Flags&net.FlagMulticast != 0
			if up && ((loop && cfg.IncludeLoopback) || (!loop && mcast)) {
				picked = append(picked, ifc)
			}
		}
	}
	var out []iface
	for _, ifc := range picked {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		it := iface{ifc: ifc}
		for _, a := range addrs {
			var ip net.IP
			switch a := a.(type) {
			case *net.IPNet:
				ip = a.IP
			case *net.IPAddr:
				ip = a.IP
			}
			ad, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			ad = ad.Unmap()
			it.addrs = append(it.addrs, ad)
			if p, ok := ifacePrefix(a); ok {
				it.prefixes = append(it.prefixes, p)
			}
			it.has4 = it.has4 || ad.Is4()
			it.has6 = it.has6 || ad.Is6()
		}
		if len(it.addrs) == 0 {
			if len(cfg.Interfaces) > 0 {
				return nil, fmt.Errorf("%w: mdns: interface %q has no address", framework.ErrInvalidOption, ifc.Name)
			}
			continue
		}
		slices.SortStableFunc(it.addrs, func(a, b netip.Addr) int { return addrRank(b) - addrRank(a) })
		out = append(out, it)
	}
	if len(out) == 0 {
		return nil, errors.New("mdns: no usable interface (up, multicast-capable, with an address; set IncludeLoopback for a loopback-only host)")
	}
	return out, nil
}

// readBuffer is the receive buffer asked for our sockets, so that bursts
// (many topics announced at once) are not dropped by the kernel.
const readBuffer = 1 << 20

var (
	group4 = net.IPv4(224, 0, 0, 251)
	group6 = net.ParseIP("ff02::fb")
	dst4   = &net.UDPAddr{IP: group4, Port: 5353}
	// No zone: Go maps zone names to indexes in the namespace of whichever
	// thread runs the write; the control message picks the link instead.
	dst6 = &net.UDPAddr{IP: group6, Port: 5353}
)

// listen4 opens a 0.0.0.0:5353 socket (Go binds a multicast listen address
// as the wildcard with SO_REUSEADDR, so other responders on the host keep
// working) joined to 224.0.0.251 on every interface of ours.
func (d *Discovery) listen4(ifaces []iface, join bool) *ipv4.PacketConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: group4, Port: 5353})
	if err != nil {
		d.log.Warn("mdns: no IPv4 socket", "err", err)
		return nil
	}
	_ = c.SetReadBuffer(readBuffer)
	pc := ipv4.NewPacketConn(c)
	_ = pc.SetMulticastTTL(255) // RFC 6762 §11
	_ = pc.SetMulticastLoopback(true)
	if join {
		_ = pc.SetControlMessage(ipv4.FlagInterface, true)
		joined := false
		for _, it := range ifaces {
			if it.has4 && pc.JoinGroup(&it.ifc, &net.UDPAddr{IP: group4}) == nil {
				joined = true
			}
		}
		if !joined {
			pc.Close()
			return nil
		}
	}
	return pc
}

func (d *Discovery) listen6(ifaces []iface, join bool) *ipv6.PacketConn {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: group6, Port: 5353})
	if err != nil {
		d.log.Warn("mdns: no IPv6 socket", "err", err)
		return nil
	}
	_ = c.SetReadBuffer(readBuffer)
	pc := ipv6.NewPacketConn(c)
	_ = pc.SetMulticastHopLimit(255)
	_ = pc.SetMulticastLoopback(true)
	if join {
		_ = pc.SetControlMessage(ipv6.FlagInterface, true)
		joined := false
		for _, it := range ifaces {
			if it.has6 && pc.JoinGroup(&it.ifc, &net.UDPAddr{IP: group6}) == nil {
				joined = true
			}
		}
		if !joined {
			pc.Close()
			return nil
		}
	}
	return pc
}

// open opens pion's responder sockets and ours (rx4, rx6: nil when the
// family is unavailable) on ifaces.
func (d *Discovery) open(ifaces []iface) (conn *pmdns.Conn, rx4 *ipv4.PacketConn, rx6 *ipv6.PacketConn, err error) {
	var has4, has6 bool
	var netIfs []net.Interface
	loop := d.cfg.IncludeLoopback
	for _, it := range ifaces {
		has4, has6 = has4 || it.has4, has6 || it.has6
		netIfs = append(netIfs, it.ifc)
		loop = loop || it.ifc.Flags&net.FlagLoopback != 0
	}
	var pc4 *ipv4.PacketConn
	var pc6 *ipv6.PacketConn
	if has4 {
		pc4, rx4 = d.listen4(ifaces, false), d.listen4(ifaces, true)
	}
	if has6 {
		pc6, rx6 = d.listen6(ifaces, false), d.listen6(ifaces, true)
	}
	closeAll := func() {
		for _, c := range []interface{ Close() error }{pc4, pc6, rx4, rx6} {
			if c != nil && !isNilConn(c) {
				c.Close()
			}
		}
	}
	if (pc4 == nil && pc6 == nil) || (rx4 == nil && rx6 == nil) {
		closeAll()
		return nil, nil, nil, errors.New("mdns: cannot open mDNS sockets on port 5353 of the chosen interfaces")
	}
	conn, err = pmdns.NewServer(pc4, pc6,
		pmdns.WithName("dws-"+d.id.String()),
		pmdns.WithLocalNames(d.host),
		pmdns.WithInterfaces(netIfs...),
		pmdns.WithIncludeLoopback(loop),
		pmdns.WithResponseTTL(uint32(d.cfg.TTL/time.Second)),
		pmdns.WithCacheRefresh(false), // pion's client side is unused
		pmdns.WithLoggerFactory(slogFactory{d.log}),
	)
	if err != nil {
		closeAll()
		return nil, nil, nil, fmt.Errorf("mdns: %w", err)
	}
	return conn, rx4, rx6, nil
}

func isNilConn(c interface{ Close() error }) bool {
	switch c := c.(type) {
	case *ipv4.PacketConn:
		return c == nil
	case *ipv6.PacketConn:
		return c == nil
	}
	return false
}

// Name returns "mdns".
func (d *Discovery) Name() string { return "mdns" }

// Order puts mDNS before the DHT: LAN answers come first.
func (d *Discovery) Order() int { return -10 }

// ID returns the random id this Discovery publishes in its TXT records.
func (d *Discovery) ID() string { return d.id.String() }

// Join starts announcing and/or looking up req.Topic; see framework.Discovery.
func (d *Discovery) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	if !req.Announce && !req.Lookup {
		return framework.ErrInvalidJoin
	}
	if req.Announce && (req.Port < 1 || req.Port > 65535) {
		return fmt.Errorf("%w: mdns: announce port %d out of range 1-65535", framework.ErrInvalidOption, req.Port)
	}
	if sink == nil {
		return fmt.Errorf("%w: mdns: nil sink", framework.ErrInvalidOption)
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return framework.ErrClosed
	}
	if !d.started {
		d.mu.Unlock()
		return errNotStarted
	}
	old := d.topics[req.Topic]
	d.mu.Unlock()
	if old != nil {
		d.stopTopic(old)
		if !req.Announce {
			d.goodbyes([]*topicState{old})
		}
	}

	loopCtx, cancel := context.WithCancel(context.Background())
	st := &topicState{
		d:       d,
		req:     req,
		sink:    sink,
		svcType: ServiceType(req.Topic),
		cancel:  cancel,
		done:    make(chan struct{}),
		found:   make(map[peerID]*foundPeer),
	}
	st.ann = announcement{
		service:  st.svcType,
		instance: instanceName(req.Topic, d.id),
		host:     targetName(req.Topic, d.id),
		port:     uint16(req.Port),
		txt:      txtStrings(record{Topic: req.Topic, ID: d.id}),
		ttl:      uint32(d.cfg.TTL / time.Second),
	}
	var err error
	if st.query, err = packQuery(st.svcType); err != nil {
		cancel()
		return fmt.Errorf("mdns: query %s: %w", req.Topic.Short(), err)
	}
	if req.Announce {
		err := d.conn.Register(pmdns.ServiceInstance{
			Instance: st.ann.instance,
			Service:  st.svcType,
			Domain:   Domain,
			Host:     st.ann.host + ".",
			Port:     uint16(req.Port),
			Text:     txtEntries(record{Topic: req.Topic, ID: d.id}),
		})
		if err != nil {
			cancel()
			return fmt.Errorf("mdns: register %s: %w", req.Topic.Short(), err)
		}
	}
	d.mu.Lock()
	d.topics[req.Topic] = st
	if req.Lookup {
		key, _ := serviceTypeKey(st.svcType)
		d.byType[key] = append(d.byType[key], st)
	}
	d.mu.Unlock()
	go st.run(loopCtx)
	return nil
}

// Leave stops announcing (sending a goodbye) and looking up topic. After it
// returns the topic's sink receives nothing more.
func (d *Discovery) Leave(ctx context.Context, topic framework.Topic) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	st := d.topics[topic]
	d.mu.Unlock()
	if st != nil {
		d.stopTopic(st)
		d.goodbyes([]*topicState{st})
	}
	return nil
}

// Close leaves every topic (with goodbyes), closes every socket and waits
// for the goroutines. Closing a Discovery that was never started releases
// it too. Later calls return nil; Join and Start after Close fail with
// framework.ErrClosed.
func (d *Discovery) Close() error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	started := d.started
	states := make([]*topicState, 0, len(d.topics))
	for _, st := range d.topics {
		states = append(states, st)
	}
	d.mu.Unlock()
	if !started {
		return nil // nothing opened, no topic joined
	}
	for _, st := range states {
		d.stopTopic(st)
	}
	d.goodbyes(states)
	var errs []error
	if d.rx4 != nil {
		errs = append(errs, d.rx4.Close())
	}
	if d.rx6 != nil {
		errs = append(errs, d.rx6.Close())
	}
	d.wg.Wait()
	errs = append(errs, d.conn.Close())
	return errors.Join(errs...)
}

// stopTopic stops st's loop, silences its sink and, when it announced,
// unregisters it; the caller sends the goodbye (goodbyes). Caller holds opMu.
func (d *Discovery) stopTopic(st *topicState) {
	d.mu.Lock()
	if d.topics[st.req.Topic] == st {
		delete(d.topics, st.req.Topic)
	}
	key, _ := serviceTypeKey(st.svcType)
	if list := slices.DeleteFunc(d.byType[key], func(x *topicState) bool { return x == st }); len(list) > 0 {
		d.byType[key] = list
	} else {
		delete(d.byType, key)
		d.cache.dropService(key)
	}
	d.mu.Unlock()

	st.mu.Lock()
	st.left = true // from now on the sink is not called
	st.mu.Unlock()
	st.cancel()
	<-st.done
	if st.req.Announce {
		d.conn.Unregister(st.ann.instance, st.svcType)
	}
}

// leaveSettle is how long Leave and Close wait between unregistering and
// the goodbye: pion may still be sending an answer to a query that arrived
// just before Unregister, and the goodbye must be the last word (and no
// swarm started after Leave returned may hear a stale answer).
const leaveSettle = 30 * time.Millisecond

// goodbyes waits leaveSettle, then sends the goodbyes of the announced
// topics among states.
func (d *Discovery) goodbyes(states []*topicState) {
	var ann []announcement
	for _, st := range states {
		if st.req.Announce {
			ann = append(ann, st.ann)
		}
	}
	if len(ann) == 0 {
		return
	}
	time.Sleep(leaveSettle)
	for _, a := range ann {
		d.sendAnnouncement(a, true)
	}
}

// sendAnnouncement writes the announcement (or goodbye) of one topic on
// every interface, over IPv4 and IPv6, with that interface's addresses.
func (d *Discovery) sendAnnouncement(a announcement, goodbye bool) {
	for _, it := range d.ifaces {
		pkt, err := a.pack(it.addrs, goodbye)
		if err != nil {
			d.log.Warn("mdns: build announcement", "err", err)
			return
		}
		d.sendOn(it, pkt)
	}
}

// sendQuery writes a PTR query on every interface.
func (d *Discovery) sendQuery(pkt []byte) {
	for _, it := range d.ifaces {
		d.sendOn(it, pkt)
	}
}

func (d *Discovery) sendOn(it iface, pkt []byte) {
	if it.has4 && d.rx4 != nil {
		if _, err := d.rx4.WriteTo(pkt, &ipv4.ControlMessage{IfIndex: it.ifc.Index}, dst4); err != nil {
			d.log.Debug("mdns: send IPv4", "iface", it.ifc.Name, "err", err)
		}
	}
	if it.has6 && d.rx6 != nil {
		if _, err := d.rx6.WriteTo(pkt, &ipv6.ControlMessage{IfIndex: it.ifc.Index}, dst6); err != nil {
			d.log.Debug("mdns: send IPv6", "iface", it.ifc.Name, "err", err)
		}
	}
}

// maxRank is addrRank of a routable IPv4 address.
const maxRank = 4

// addrRank orders candidate addresses of one peer: higher is preferred.
func addrRank(a netip.Addr) int {
	switch {
	case a.Is4() && !a.IsLinkLocalUnicast():
		return maxRank
	case a.Is6() && !a.IsLinkLocalUnicast():
		return 3
	case a.Is4():
		return 2 // 169.254/16
	case a.Zone() != "":
		return 1 // fe80::/10 with zone
	default:
		return 0 // fe80::/10 without zone: not dialable
	}
}

// topicState is one joined topic.
type topicState struct {
	d       *Discovery
	req     framework.JoinRequest
	sink    framework.DiscoverySink
	svcType string
	ann     announcement
	query   []byte
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex // guards the fields below and every sink call
	left    bool
	flushed bool
	found   map[peerID]*foundPeer
	peers   quota[peerID] // the ids in found, by source (Limits)
}

// foundPeer is what we reported for one remote swarm on this topic.
type foundPeer struct {
	addr     netip.Addr
	port     uint16
	lastSeen time.Time
}

// found1 records one resolution of a remote swarm whose instance came
// from src: best is its preferred address now, all every address it has
// now. A new one is reported if the per-source and per-topic peer limits
// let it in (admitPeerLocked). It is reported when new, when
// its port changed, when the reported address is gone, or when best is a
// better kind of address than the reported one. Anything else (the same
// answer again, records in another order) reports nothing.
func (st *topicState) found1(id peerID, best netip.Addr, all []netip.Addr, port uint16, src srcKey) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.left {
		return
	}
	fp := st.found[id]
	if fp != nil {
		fp.lastSeen = time.Now()
		if fp.port == port && slices.Contains(all, fp.addr) && addrRank(best) <= addrRank(fp.addr) {
			return
		}
	} else {
		if !st.admitPeerLocked(id, src) {
			return
		}
		fp = &foundPeer{lastSeen: time.Now()}
		st.found[id] = fp
	}
	fp.addr, fp.port = best, port
	st.sink.Peer(framework.Peer{Host: best.String(), Port: int(port), Local: true, Topic: st.req.Topic})
}

// forget drops a remote swarm (goodbye), so that it is reported again if
// it comes back.
func (st *topicState) forget(id peerID) {
	st.mu.Lock()
	st.dropPeerLocked(id)
	st.mu.Unlock()
}

// complete ends one cycle: forget silent peers, then Flushed (the first
// time flush is set) and Updated.
func (st *topicState) complete(flush bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.left {
		return
	}
	if fa := st.d.cfg.ForgetAfter; fa > 0 {
		cutoff := time.Now().Add(-fa)
		for id, fp := range st.found {
			if fp.lastSeen.Before(cutoff) {
				st.dropPeerLocked(id)
			}
		}
	}
	if flush {
		st.flushLocked()
	}
	if !st.d.cfg.NoRereport {
		for _, fp := range st.found {
			st.sink.Peer(framework.Peer{Host: fp.addr.String(), Port: int(fp.port), Local: true, Topic: st.req.Topic})
		}
	}
	st.sink.Updated()
}

// flush calls Flushed once per join.
func (st *topicState) flush() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.left {
		st.flushLocked()
	}
}

func (st *topicState) flushLocked() {
	if !st.flushed {
		st.flushed = true
		st.sink.Flushed()
	}
}

// run drives the announce and query schedule of one join until ctx ends.
func (st *topicState) run(ctx context.Context) {
	defer close(st.done)
	cfg := &st.d.cfg
	start := time.Now()
	var nextAnn, nextQuery, cycleEnd time.Time
	annIdx, queryIdx, cycles := 0, 0, 0
	// Flushed needs the first announcement sent (announce joins) and the
	// first query cycle complete (lookup joins).
	announced := !st.req.Announce
	if st.req.Announce {
		nextAnn = start.Add(cfg.AnnounceBurst[0])
	}
	if st.req.Lookup {
		nextQuery = start.Add(cfg.QueryBurst[0])
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := earliest(nextAnn, nextQuery, cycleEnd)
		if next.IsZero() {
			<-ctx.Done()
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if !nextAnn.IsZero() && !now.Before(nextAnn) {
			st.d.sendAnnouncement(st.ann, false)
			annIdx++
			nextAnn = time.Time{}
			switch {
			case annIdx < len(cfg.AnnounceBurst):
				nextAnn = start.Add(cfg.AnnounceBurst[annIdx])
			case !st.req.Lookup:
				// an announce-only join keeps a cycle: it re-announces every
				// QueryIntervalMin–Max (refreshing caches), each an Updated
				span := cfg.QueryIntervalMax - cfg.QueryIntervalMin
				jitter := time.Duration(0)
				if span > 0 {
					jitter = rand.N(span + 1)
				}
				nextAnn = now.Add(cfg.QueryIntervalMin + jitter)
			}
			announced = true
			switch {
			case !st.req.Lookup:
				st.complete(true) // announce-only: each announcement is a cycle
			case cycles > 0:
				st.flush()
			}
		}
		if !cycleEnd.IsZero() && !now.Before(cycleEnd) {
			cycleEnd = time.Time{}
			cycles++
			st.complete(announced)
		}
		if !nextQuery.IsZero() && !now.Before(nextQuery) {
			if !cycleEnd.IsZero() { // a query overtook the previous window
				cycles++
				st.complete(announced)
			}
			st.d.sendQuery(st.query)
			cycleEnd = now.Add(cfg.ResponseWindow)
			queryIdx++
			if queryIdx < len(cfg.QueryBurst) {
				nextQuery = start.Add(cfg.QueryBurst[queryIdx])
			} else {
				span := cfg.QueryIntervalMax - cfg.QueryIntervalMin
				jitter := time.Duration(0)
				if span > 0 {
					jitter = rand.N(span + 1)
				}
				nextQuery = now.Add(cfg.QueryIntervalMin + jitter)
			}
		}
	}
}

func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// String describes the Discovery for logs (no interfaces before Start).
func (d *Discovery) String() string {
	d.mu.Lock()
	names := make([]string, len(d.ifaces))
	for i, it := range d.ifaces {
		names[i] = it.ifc.Name
	}
	d.mu.Unlock()
	return fmt.Sprintf("mdns(id=%s, ifaces=%s)", d.id, strings.Join(names, ","))
}

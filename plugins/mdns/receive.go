package mdns

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// maxPacket is the largest mDNS packet (RFC 6762 §17); larger datagrams are
// dropped.
const maxPacket = 9000

// readErrorPause keeps a socket that keeps failing (not closed) from spinning.
const readErrorPause = 10 * time.Millisecond

// readLoop4 and readLoop6 read the IPv4 and IPv6 sockets.
func (d *Discovery) readLoop4() {
	d.readLoop(func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := d.rx4.ReadFrom(b)
		if cm != nil {
			return n, cm.IfIndex, src, err
		}
		return n, -1, src, err
	})
}

func (d *Discovery) readLoop6() {
	d.readLoop(func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := d.rx6.ReadFrom(b)
		if cm != nil {
			return n, cm.IfIndex, src, err
		}
		return n, -1, src, err
	})
}

// readLoop hands every packet from port 5353 to receive until the socket
// closes; read returns the interface index (-1 when unknown).
func (d *Discovery) readLoop(read func([]byte) (n, ifIndex int, src net.Addr, err error)) {
	defer d.wg.Done()
	buf := make([]byte, maxPacket+1)
	for {
		n, idx, src, err := read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(readErrorPause)
			continue
		}
		if u, ok := src.(*net.UDPAddr); ok && u.Port == 5353 {
			from, _ := netip.AddrFromSlice(u.IP)
			d.receive(buf[:n], idx, from.Unmap())
		} // RFC 6762 §6: responses not from port 5353 are ignored
	}
}

// receive handles one datagram from src (its zone, if any, is ignored)
// that arrived on interface ifIndex (-1: unknown). Datagrams from
// interfaces that are not ours are dropped (the socket is bound to the
// wildcard and hears every joined interface).
func (d *Discovery) receive(b []byte, ifIndex int, src netip.Addr) {
	if len(b) > maxPacket {
		return
	}
	from := origin{src: src.WithZone("")}
	if ifIndex >= 0 {
		i := slices.IndexFunc(d.ifaces, func(it iface) bool { return it.ifc.Index == ifIndex })
		if i < 0 {
			return
		}
		from.in = &d.ifaces[i]
	} else if len(d.ifaces) == 1 {
		from.in = &d.ifaces[0]
	}
	resp, err := parseResponse(b)
	if err != nil {
		return // queries (pion answers them) and malformed packets
	}
	d.handleResponse(resp, from, time.Now())
}

type peerReport struct {
	st   *topicState
	id   peerID
	best netip.Addr
	all  []netip.Addr
	port uint16
	src  srcKey // who brought the instance into the cache
}

type peerForget struct {
	st *topicState
	id peerID
}

// handleResponse merges a response that came from o into the cache and
// reports the instances it completed or changed.
func (d *Discovery) handleResponse(resp *response, o origin, now time.Time) {
	var reports []peerReport
	var forgets []peerForget
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	c := &d.cache
	ad := admission{lim: &d.cfg.Limits, stats: &d.stats, src: o.key(), now: now, refused: make(map[string]bool)}
	touched := make(map[string]bool)
	relevant := func(inst string) bool {
		key, ok := instanceService(inst)
		return ok && len(d.byType[key]) > 0
	}
	goodbye := func(inst string) {
		delete(touched, inst)
		if id, ok := c.drop(inst); ok {
			key, _ := instanceService(inst)
			for _, st := range d.byType[key] {
				forgets = append(forgets, peerForget{st, id})
			}
		}
	}
	for inst, ttl := range resp.ptrs {
		if relevant(inst) {
			if ttl == 0 {
				goodbye(inst)
			} else {
				touched[inst] = true
			}
		}
	}
	for inst, s := range resp.srvs {
		switch {
		case !relevant(inst):
		case s.ttl == 0:
			goodbye(inst)
		case c.setSRV(inst, s, ad):
			touched[inst] = true
		}
	}
	for inst, t := range resp.txts {
		switch {
		case !relevant(inst):
		case t.ttl == 0:
			goodbye(inst)
		case c.setTXT(inst, t, ad):
			touched[inst] = true
		}
	}
	flushed := make(map[string]bool)
	for _, a := range resp.addrs {
		insts := c.targets[a.host]
		if len(insts) == 0 {
			continue // not the target of an instance we look up: not ours to judge
		}
		addr, verdict := o.usable(a.addr)
		if verdict != addrOK {
			d.stats.countAddr(verdict)
			continue
		}
		if a.flush && !flushed[a.host] { // RFC 6762 §10.2: this packet has the whole set
			flushed[a.host] = true
			clear(c.addrs[a.host])
		}
		if a.ttl == 0 {
			delete(c.addrs[a.host], addr)
		} else {
			c.setAddr(a.host, addr, now.Add(time.Duration(a.ttl)*time.Second))
		}
		for inst := range insts {
			touched[inst] = true
		}
	}
	for inst := range touched {
		reports = d.resolveLocked(inst, now, reports)
	}
	d.mu.Unlock()
	for _, f := range forgets {
		f.st.forget(f.id)
	}
	for _, r := range reports {
		r.st.found1(r.id, r.best, r.all, r.port, r.src)
	}
}

// resolveLocked appends the reports for inst if its SRV, TXT and an
// address are known. Caller holds d.mu.
func (d *Discovery) resolveLocked(inst string, now time.Time, out []peerReport) []peerReport {
	c := &d.cache
	e := c.entries[inst]
	if e == nil || e.srv == nil || e.txt == nil {
		return out
	}
	srv, txt := e.srv, e.txt
	if now.After(srv.expires) || srv.port == 0 || now.After(txt.expires) {
		return out
	}
	rec, err := decodeTXT(decodeTXTStrings(txt.strs))
	if err != nil || rec.ID == d.id {
		return out // not our format, or ourselves
	}
	var all []netip.Addr
	for a, exp := range c.addrs[srv.target] {
		if !now.After(exp) {
			all = append(all, a)
		}
	}
	if len(all) == 0 {
		return out
	}
	slices.SortFunc(all, func(a, b netip.Addr) int {
		if r := addrRank(b) - addrRank(a); r != 0 {
			return r
		}
		return a.Compare(b)
	})
	for _, st := range d.byType[e.key] {
		if st.req.Topic == rec.Topic {
			out = append(out, peerReport{st: st, id: rec.ID, best: all[0], all: all, port: srv.port, src: e.src})
		}
	}
	return out
}

// pruneEvery is how often a full cache looks for expired entries (a scan
// of the whole cache) before it evicts.
const pruneEvery = time.Second

// cache holds the records of instances of the service types we look up,
// across packets (a responder may split SRV, TXT and addresses). Instances
// are accounted to the source that brought them (Limits).
type cache struct {
	entries map[string]*cacheEntry              // instance → its records
	addrs   map[string]map[netip.Addr]time.Time // target host → address → expiry
	targets map[string]map[string]bool          // target host → instances pointing at it

	all       quota[string]          // every instance, by source
	perIface  map[int]*quota[string] // instances by arrival interface index, by source
	perType   map[srcType]int        // instances per (source, service type)
	lastPrune time.Time
}

// cacheEntry is what the cache knows of one instance.
type cacheEntry struct {
	srv *cachedSRV // nil until an SRV arrives
	txt *cachedTXT // nil until a TXT arrives
	src srcKey     // the source that brought the instance in
	key string     // its service type key
}

// srcType is one source's share of one service type.
type srcType struct {
	src srcKey
	key string
}

type cachedSRV struct {
	srvData
	expires time.Time
}

type cachedTXT struct {
	txtData
	expires time.Time
}

func newCache() cache {
	return cache{
		entries:  make(map[string]*cacheEntry),
		addrs:    make(map[string]map[netip.Addr]time.Time),
		targets:  make(map[string]map[string]bool),
		perIface: make(map[int]*quota[string]),
		perType:  make(map[srcType]int),
	}
}

// admission is the context of one packet's records: who sent them, the
// limits and the counters to bump.
type admission struct {
	lim     *Limits
	stats   *counters
	src     srcKey
	now     time.Time
	refused map[string]bool // instances of this packet refused so far (counted once)
}

// refuse counts inst as refused by counter, once per packet.
func (ad admission) refuse(inst string, counter *atomic.Uint64) {
	if !ad.refused[inst] {
		ad.refused[inst] = true
		counter.Add(1)
	}
}

// admit returns the entry of inst, creating it for ad.src when the limits
// allow (evicting the oldest instance of the source holding the most when
// an interface's share or the whole cache is full); nil when inst is
// refused.
func (c *cache) admit(inst string, ad admission) *cacheEntry {
	if e := c.entries[inst]; e != nil {
		return e
	}
	if ad.refused[inst] {
		return nil
	}
	key, _ := instanceService(inst)
	st := srcType{ad.src, key}
	if c.perType[st] >= ad.lim.MaxInstancesPerSource {
		ad.refuse(inst, &ad.stats.instancesSourceCap)
		return nil
	}
	ifq := c.perIface[ad.src.ifIndex]
	if ifq == nil {
		ifq = &quota[string]{}
		c.perIface[ad.src.ifIndex] = ifq
	}
	if (ifq.len() >= ad.lim.MaxInstancesPerInterface || c.all.len() >= ad.lim.MaxInstances) && ad.now.Sub(c.lastPrune) >= pruneEvery {
		c.lastPrune = ad.now
		c.prune(ad.now)
	}
	if ifq.len() >= ad.lim.MaxInstancesPerInterface {
		v, ok := ifq.victim(ad.src)
		if !ok {
			ad.refuse(inst, &ad.stats.instancesInterfaceCap)
			return nil
		}
		c.drop(v)
		ad.stats.instancesEvicted.Add(1)
	}
	if c.all.len() >= ad.lim.MaxInstances {
		v, ok := c.all.victim(ad.src)
		if !ok {
			ad.refuse(inst, &ad.stats.instancesCacheFull)
			return nil
		}
		c.drop(v)
		ad.stats.instancesEvicted.Add(1)
	}
	e := &cacheEntry{src: ad.src, key: key}
	c.entries[inst] = e
	c.all.add(inst, ad.src)
	ifq.add(inst, ad.src)
	c.perType[st]++
	return e
}

func (c *cache) setSRV(inst string, s srvData, ad admission) bool {
	e := c.admit(inst, ad)
	if e == nil {
		return false
	}
	if e.srv != nil && e.srv.target != s.target {
		c.untarget(e.srv.target, inst)
	}
	e.srv = &cachedSRV{s, ad.now.Add(time.Duration(s.ttl) * time.Second)}
	if c.targets[s.target] == nil {
		c.targets[s.target] = make(map[string]bool)
	}
	c.targets[s.target][inst] = true
	return true
}

func (c *cache) setTXT(inst string, t txtData, ad admission) bool {
	e := c.admit(inst, ad)
	if e == nil {
		return false
	}
	e.txt = &cachedTXT{t, ad.now.Add(time.Duration(t.ttl) * time.Second)}
	return true
}

func (c *cache) setAddr(host string, a netip.Addr, exp time.Time) {
	m := c.addrs[host]
	if m == nil {
		m = make(map[netip.Addr]time.Time)
		c.addrs[host] = m
	}
	if len(m) < 32 { // a host with more addresses than this is not one of ours
		m[a] = exp
	} else if _, ok := m[a]; ok {
		m[a] = exp
	}
}

func (c *cache) untarget(host, inst string) {
	delete(c.targets[host], inst)
	if len(c.targets[host]) == 0 {
		delete(c.targets, host)
		delete(c.addrs, host)
	}
}

// drop forgets inst and returns the id its TXT carried, if any.
func (c *cache) drop(inst string) (peerID, bool) {
	var id peerID
	e := c.entries[inst]
	if e == nil {
		return id, false
	}
	ok := false
	if e.txt != nil {
		if rec, err := decodeTXT(decodeTXTStrings(e.txt.strs)); err == nil {
			id, ok = rec.ID, true
		}
	}
	if e.srv != nil {
		c.untarget(e.srv.target, inst)
	}
	delete(c.entries, inst)
	c.all.remove(inst)
	if q := c.perIface[e.src.ifIndex]; q != nil {
		q.remove(inst)
		if q.len() == 0 {
			delete(c.perIface, e.src.ifIndex)
		}
	}
	st := srcType{e.src, e.key}
	if c.perType[st]--; c.perType[st] <= 0 {
		delete(c.perType, st)
	}
	return id, ok
}

// dropService forgets every instance of service key (no lookup left).
func (c *cache) dropService(key string) {
	for inst, e := range c.entries {
		if e.key == key {
			c.drop(inst) // deleting during range is allowed
		}
	}
}

// prune removes expired records, and instances left with none.
func (c *cache) prune(now time.Time) {
	for inst, e := range c.entries {
		if e.srv != nil && now.After(e.srv.expires) {
			c.untarget(e.srv.target, inst)
			e.srv = nil
		}
		if e.txt != nil && now.After(e.txt.expires) {
			e.txt = nil
		}
		if e.srv == nil && e.txt == nil {
			c.drop(inst)
		}
	}
	for host, m := range c.addrs {
		for a, exp := range m {
			if now.After(exp) {
				delete(m, a)
			}
		}
		if len(m) == 0 {
			delete(c.addrs, host)
		}
	}
}

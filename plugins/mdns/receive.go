package mdns

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"
)

// maxPacket is the largest mDNS packet (RFC 6762 §17); larger datagrams are
// dropped.
const maxPacket = 9000

// maxCacheInstances bounds the instances remembered at once.
const maxCacheInstances = 4096

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
			d.receive(buf[:n], idx)
		} // RFC 6762 §6: responses not from port 5353 are ignored
	}
}

// receive handles one datagram that arrived on interface ifIndex (-1:
// unknown). Datagrams from interfaces that are not ours are dropped (the
// socket is bound to the wildcard and hears every joined interface).
func (d *Discovery) receive(b []byte, ifIndex int) {
	if len(b) > maxPacket {
		return
	}
	zone := ""
	if ifIndex >= 0 {
		i := slices.IndexFunc(d.ifaces, func(it iface) bool { return it.ifc.Index == ifIndex })
		if i < 0 {
			return
		}
		zone = d.ifaces[i].ifc.Name
	} else if len(d.ifaces) == 1 {
		zone = d.ifaces[0].ifc.Name
	}
	resp, err := parseResponse(b)
	if err != nil {
		return // queries (pion answers them) and malformed packets
	}
	d.handleResponse(resp, zone, time.Now())
}

type peerReport struct {
	st   *topicState
	id   peerID
	best netip.Addr
	all  []netip.Addr
	port uint16
}

type peerForget struct {
	st *topicState
	id peerID
}

// handleResponse merges a response into the cache and reports the
// instances it completed or changed.
func (d *Discovery) handleResponse(resp *response, zone string, now time.Time) {
	var reports []peerReport
	var forgets []peerForget
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	c := &d.cache
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
		case c.setSRV(inst, s, now):
			touched[inst] = true
		}
	}
	for inst, t := range resp.txts {
		switch {
		case !relevant(inst):
		case t.ttl == 0:
			goodbye(inst)
		case c.setTXT(inst, t, now):
			touched[inst] = true
		}
	}
	flushed := make(map[string]bool)
	for _, a := range resp.addrs {
		insts := c.targets[a.host]
		if len(insts) == 0 {
			continue
		}
		addr := dialable(a.addr, zone)
		if !addr.IsValid() {
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
		r.st.found1(r.id, r.best, r.all, r.port)
	}
}

// resolveLocked appends the reports for inst if its SRV, TXT and an
// address are known. Caller holds d.mu.
func (d *Discovery) resolveLocked(inst string, now time.Time, out []peerReport) []peerReport {
	c := &d.cache
	srv, ok := c.srv[inst]
	if !ok || now.After(srv.expires) || srv.port == 0 {
		return out
	}
	txt, ok := c.txt[inst]
	if !ok || now.After(txt.expires) {
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
	key, _ := instanceService(inst)
	for _, st := range d.byType[key] {
		if st.req.Topic == rec.Topic {
			out = append(out, peerReport{st: st, id: rec.ID, best: all[0], all: all, port: srv.port})
		}
	}
	return out
}

// cache holds the records of instances of the service types we look up,
// across packets (a responder may split SRV, TXT and addresses).
type cache struct {
	srv     map[string]cachedSRV                // instance → SRV
	txt     map[string]cachedTXT                // instance → TXT
	addrs   map[string]map[netip.Addr]time.Time // target host → address → expiry
	targets map[string]map[string]bool          // target host → instances pointing at it
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
		srv:     make(map[string]cachedSRV),
		txt:     make(map[string]cachedTXT),
		addrs:   make(map[string]map[netip.Addr]time.Time),
		targets: make(map[string]map[string]bool),
	}
}

// room reports whether inst may be added (pruning expired entries first
// when the cache is full).
func (c *cache) room(inst string, now time.Time) bool {
	_, has1 := c.srv[inst]
	_, has2 := c.txt[inst]
	if has1 || has2 || len(c.srv)+len(c.txt) < 2*maxCacheInstances {
		return true
	}
	c.prune(now)
	return len(c.srv)+len(c.txt) < 2*maxCacheInstances
}

func (c *cache) setSRV(inst string, s srvData, now time.Time) bool {
	if !c.room(inst, now) {
		return false
	}
	if old, ok := c.srv[inst]; ok && old.target != s.target {
		c.untarget(old.target, inst)
	}
	c.srv[inst] = cachedSRV{s, now.Add(time.Duration(s.ttl) * time.Second)}
	if c.targets[s.target] == nil {
		c.targets[s.target] = make(map[string]bool)
	}
	c.targets[s.target][inst] = true
	return true
}

func (c *cache) setTXT(inst string, t txtData, now time.Time) bool {
	if !c.room(inst, now) {
		return false
	}
	c.txt[inst] = cachedTXT{t, now.Add(time.Duration(t.ttl) * time.Second)}
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
	ok := false
	if t, has := c.txt[inst]; has {
		if rec, err := decodeTXT(decodeTXTStrings(t.strs)); err == nil {
			id, ok = rec.ID, true
		}
	}
	if s, has := c.srv[inst]; has {
		c.untarget(s.target, inst)
	}
	delete(c.srv, inst)
	delete(c.txt, inst)
	return id, ok
}

// dropService forgets every instance of service key (no lookup left).
func (c *cache) dropService(key string) {
	for _, m := range []map[string]struct{}{keysOf(c.srv), keysOf(c.txt)} {
		for inst := range m {
			if k, _ := instanceService(inst); k == key {
				c.drop(inst)
			}
		}
	}
}

func keysOf[V any](m map[string]V) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// prune removes expired entries.
func (c *cache) prune(now time.Time) {
	for inst, s := range c.srv {
		if now.After(s.expires) {
			c.untarget(s.target, inst)
			delete(c.srv, inst)
		}
	}
	for inst, t := range c.txt {
		if now.After(t.expires) {
			delete(c.txt, inst)
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

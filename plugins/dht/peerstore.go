package dht

import (
	"container/list"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/jonboulle/clockwork"
)

// Peer store defaults.
const (
	DefaultPeerTTL             = 30 * time.Minute
	DefaultMaxPeersPerInfohash = 500
	DefaultMaxPeers            = 100_000
	DefaultMaxPeersReturned    = 50
	// DefaultMaxPeersPerIP is the share of one infohash's entries that one
	// IP address may hold: one host with many ports cannot fill the
	// infohash's slots and evict the other peers.
	DefaultMaxPeersPerIP = 8
)

// PeerStoreConfig configures a [PeerStore]. Zero values take the defaults.
type PeerStoreConfig struct {
	// TTL is how long an announce is kept (DefaultPeerTTL, BEP 5 practice).
	TTL time.Duration
	// MaxPerInfohash caps the peers kept for one infohash; a new peer
	// evicts the least recently announced one.
	MaxPerInfohash int
	// MaxTotal caps the peers kept over all infohashes; a new peer evicts
	// the least recently announced peer of any infohash.
	MaxTotal int
	// MaxReturned caps the peers returned by one get_peers (a random sample
	// when more are stored), so a reply fits in one UDP packet.
	MaxReturned int
	// MaxPerIP caps the entries of one IP address per infohash
	// (DefaultMaxPeersPerIP; negative: no cap): a new port of an IP at its
	// share evicts that IP's least recently announced entry, never another
	// IP's.
	MaxPerIP int
	// Exempt lists prefixes whose addresses MaxPerIP does not apply to (a
	// Discovery passes Limits.Exempt: by default its bootstrap nodes' IPs).
	Exempt []netip.Prefix
	// Clock is the time source (clockwork.NewRealClock() by default).
	Clock clockwork.Clock
}

func (c *PeerStoreConfig) setDefaults() {
	if c.TTL <= 0 {
		c.TTL = DefaultPeerTTL
	}
	if c.MaxPerInfohash <= 0 {
		c.MaxPerInfohash = DefaultMaxPeersPerInfohash
	}
	if c.MaxTotal <= 0 {
		c.MaxTotal = DefaultMaxPeers
	}
	if c.MaxReturned <= 0 {
		c.MaxReturned = DefaultMaxPeersReturned
	}
	if c.MaxPerIP == 0 {
		c.MaxPerIP = DefaultMaxPeersPerIP
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
}

// PeerStore keeps announced peers, keyed by infohash and ip:port, with a TTL
// and hard caps. It implements anacrolix's peer_store.Interface and is safe
// for concurrent use.
//
// Entries are kept in two lists ordered by their last announce: one over the
// whole store (used for expiry and for the total cap) and one per infohash
// (for the per-infohash cap). A re-announce refreshes an entry and moves it
// to the back of both.
type PeerStore struct {
	cfg PeerStoreConfig

	mu  sync.Mutex
	all *list.List // of *storeEntry, oldest first
	ihs map[peer_store.InfoHash]*ihPeers

	perIPEvicted, capEvicted uint64
}

type ihPeers struct {
	byAddr map[netip.AddrPort]*storeEntry
	order  *list.List // of *storeEntry, oldest first
	perIP  map[netip.Addr]int
}

type storeEntry struct {
	ih      peer_store.InfoHash
	addr    netip.AddrPort
	seen    time.Time
	allElem *list.Element
	ihElem  *list.Element
}

var _ peer_store.Interface = (*PeerStore)(nil)

// NewPeerStore returns an empty store.
func NewPeerStore(cfg PeerStoreConfig) *PeerStore {
	cfg.setDefaults()
	return &PeerStore{cfg: cfg, all: list.New(), ihs: make(map[peer_store.InfoHash]*ihPeers)}
}

// nodeAddrPort converts a krpc address, rejecting anything that is not a
// dialable IPv4/IPv6 address with a port.
func nodeAddrPort(na krpc.NodeAddr) (netip.AddrPort, bool) {
	if len(na.IP) != 4 && len(na.IP) != 16 {
		return netip.AddrPort{}, false
	}
	ip, _ := netip.AddrFromSlice(na.IP)
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return netip.AddrPort{}, false
	}
	if na.Port < 1 || na.Port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, uint16(na.Port)), true
}

// AddPeer records (or refreshes) an announce. Invalid addresses (no port,
// unspecified or multicast IP, odd IP length) are ignored.
func (ps *PeerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	ap, ok := nodeAddrPort(na)
	if !ok {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.cfg.Clock.Now()
	ps.expireLocked(now)
	set := ps.ihs[ih]
	if set == nil {
		set = &ihPeers{byAddr: make(map[netip.AddrPort]*storeEntry), order: list.New(), perIP: make(map[netip.Addr]int)}
		ps.ihs[ih] = set
	}
	if e := set.byAddr[ap]; e != nil {
		e.seen = now
		ps.all.MoveToBack(e.allElem)
		set.order.MoveToBack(e.ihElem)
		return
	}
	if ps.cfg.MaxPerIP >= 0 && set.perIP[ap.Addr()] >= ps.cfg.MaxPerIP && !exempt(ps.cfg.Exempt, ap.Addr()) {
		// The IP is at its share: its own oldest entry gives way.
		for el := set.order.Front(); el != nil; el = el.Next() {
			if e := el.Value.(*storeEntry); e.addr.Addr() == ap.Addr() {
				ps.removeLocked(e)
				ps.perIPEvicted++
				break
			}
		}
		if set.order.Len() == 0 { // it was the set's last entry: deleted
			ps.ihs[ih] = set
		}
	}
	if set.order.Len() >= ps.cfg.MaxPerInfohash {
		ps.removeLocked(set.order.Front().Value.(*storeEntry))
		ps.capEvicted++
	}
	if ps.all.Len() >= ps.cfg.MaxTotal {
		ps.removeLocked(ps.all.Front().Value.(*storeEntry))
		ps.capEvicted++
		// The eviction may have emptied and deleted this infohash's set.
		if ps.ihs[ih] == nil {
			ps.ihs[ih] = set
		}
	}
	e := &storeEntry{ih: ih, addr: ap, seen: now}
	e.allElem = ps.all.PushBack(e)
	e.ihElem = set.order.PushBack(e)
	set.byAddr[ap] = e
	set.perIP[ap.Addr()]++
}

// GetPeers returns the live peers of ih (at most MaxReturned, sampled at
// random when more are stored).
func (ps *PeerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expireLocked(ps.cfg.Clock.Now())
	set := ps.ihs[ih]
	if set == nil {
		return nil
	}
	ret := make([]krpc.NodeAddr, 0, min(set.order.Len(), ps.cfg.MaxReturned))
	n := 0
	for el := set.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*storeEntry)
		na := krpc.NodeAddr{IP: e.addr.Addr().AsSlice(), Port: int(e.addr.Port())}
		// Reservoir sampling keeps the sample uniform.
		if n < ps.cfg.MaxReturned {
			ret = append(ret, na)
		} else if j := rand.IntN(n + 1); j < ps.cfg.MaxReturned {
			ret[j] = na
		}
		n++
	}
	return ret
}

// Len returns the number of stored peers over all infohashes (expired
// entries included until the next access).
func (ps *PeerStore) Len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.all.Len()
}

// Infohashes returns the number of infohashes with at least one peer.
func (ps *PeerStore) Infohashes() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.ihs)
}

// Expire drops every expired entry now (the store also expires lazily on
// each access).
func (ps *PeerStore) Expire() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expireLocked(ps.cfg.Clock.Now())
}

func (ps *PeerStore) expireLocked(now time.Time) {
	for el := ps.all.Front(); el != nil; el = ps.all.Front() {
		e := el.Value.(*storeEntry)
		if now.Sub(e.seen) < ps.cfg.TTL {
			return
		}
		ps.removeLocked(e)
	}
}

func (ps *PeerStore) removeLocked(e *storeEntry) {
	ps.all.Remove(e.allElem)
	set := ps.ihs[e.ih]
	set.order.Remove(e.ihElem)
	delete(set.byAddr, e.addr)
	if set.perIP[e.addr.Addr()]--; set.perIP[e.addr.Addr()] <= 0 {
		delete(set.perIP, e.addr.Addr())
	}
	if set.order.Len() == 0 {
		delete(ps.ihs, e.ih)
	}
}

// Has reports whether addr announced ih and has not expired.
func (ps *PeerStore) Has(ih peer_store.InfoHash, addr netip.AddrPort) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expireLocked(ps.cfg.Clock.Now())
	set := ps.ihs[ih]
	if set == nil {
		return false
	}
	_, ok := set.byAddr[netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())]
	return ok
}

// Remove drops addr's record of ih, if any.
func (ps *PeerStore) Remove(ih peer_store.InfoHash, addr netip.AddrPort) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	set := ps.ihs[ih]
	if set == nil {
		return
	}
	if e := set.byAddr[netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())]; e != nil {
		ps.removeLocked(e)
	}
}

// Evictions returns how many entries were evicted to make room: by the
// per-IP share (MaxPerIP), and by MaxPerInfohash or MaxTotal.
func (ps *PeerStore) Evictions() (perIP, caps uint64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.perIPEvicted, ps.capEvicted
}

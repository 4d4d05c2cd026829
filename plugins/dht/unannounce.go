package dht

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	anacrolix "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/peer-store"
)

// Un-announce.
//
// Mainline has no un-announce: a record stays on the nodes that stored it
// until it expires. dwebswarm nodes honour one query of our own so that
// Leave takes effect at once where it can:
//
//	{"q": "dws_unannounce", "a": {"id": X, "info_hash": IH, "port": P}}
//
// sent at Leave to every node we sent announce_peer to for that topic. A
// node running this package drops the record (IH, source IP:P) from its
// peer store when the query comes from the IP of the record and answers
// {"y": "r"}; other nodes answer error 204 (method unknown), and their
// records expire (30 minutes on ours, typically 30 min–2 h elsewhere).
// Requests are rate-limited per source like hole-punch relays.

// UnannounceMethod is the KRPC query method of an un-announce.
const UnannounceMethod = "dws_unannounce"

// maxAnnouncedTo bounds the nodes remembered per topic.
const maxAnnouncedTo = 64

// rememberAnnounce records a node we announce to, now. Entries older than
// Limits.AnnouncedTTL are dropped; when maxAnnouncedTo remain, the oldest
// gives way.
func (j *join) rememberAnnounce(na krpc.NodeAddr) {
	ap, ok := nodeAddrPort(na)
	if !ok {
		return
	}
	now := j.d.clock.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.announcedTo == nil {
		j.announcedTo = make(map[netip.AddrPort]time.Time)
	}
	if _, ok := j.announcedTo[ap]; !ok && len(j.announcedTo) >= maxAnnouncedTo {
		var oldest netip.AddrPort
		var at time.Time
		for a, t := range j.announcedTo {
			if now.Sub(t) >= j.d.cfg.Limits.AnnouncedTTL {
				delete(j.announcedTo, a)
				continue
			}
			if !oldest.IsValid() || t.Before(at) {
				oldest, at = a, t
			}
		}
		if len(j.announcedTo) >= maxAnnouncedTo {
			delete(j.announcedTo, oldest)
		}
	}
	j.announcedTo[ap] = now
}

// announcedTo reports whether we sent announce_peer for ih to the node at
// ap within Limits.AnnouncedTTL, for a topic still joined.
func (d *Node) announcedTo(ih [20]byte, ap netip.AddrPort) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	now := d.clock.Now()
	d.mu.Lock()
	joins := make([]*join, 0, 1)
	for _, j := range d.joins {
		if j.req.Announce && j.ih == ih {
			joins = append(joins, j)
		}
	}
	d.mu.Unlock()
	for _, j := range joins {
		j.mu.Lock()
		t, ok := j.announcedTo[ap]
		j.mu.Unlock()
		if ok && now.Sub(t) < d.cfg.Limits.AnnouncedTTL {
			return true
		}
	}
	return false
}

// unannounce asks every node we announced to to drop our record, in
// parallel, bounded by ctx and the query timeout.
func (d *Node) unannounce(ctx context.Context, j *join) {
	srv := d.current()
	if srv == nil {
		return
	}
	j.mu.Lock()
	targets := make([]netip.AddrPort, 0, len(j.announcedTo))
	for ap := range j.announcedTo {
		targets = append(targets, ap)
	}
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.QueryTries)*d.cfg.QueryTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, ap := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			port := j.req.Port
			d.queries.Add(1)
			srv.s.Query(ctx, anacrolix.NewAddr(net.UDPAddrFromAddrPort(ap)), UnannounceMethod, anacrolix.QueryInput{
				MsgArgs:  krpc.MsgArgs{InfoHash: j.ih, Port: &port},
				NumTries: d.cfg.QueryTries,
			})
		}()
	}
	wg.Wait()
}

// handleUnannounce serves an un-announce query.
func (d *Node) handleUnannounce(m *krpc.Msg, src net.Addr) {
	srcAP, ok := addrPortOf(src)
	var zero krpc.ID
	if !ok || m.A == nil || m.A.InfoHash == zero || m.A.Port == nil || *m.A.Port < 1 || *m.A.Port > 65535 {
		d.reply(m, src, codeProtocol, "bad unannounce")
		return
	}
	if !d.punch.allowRelay(srcAP.Addr()) {
		d.reply(m, src, codeGeneric, "rate limited")
		return
	}
	d.store.Remove(peer_store.InfoHash(m.A.InfoHash), netip.AddrPortFrom(srcAP.Addr(), uint16(*m.A.Port)))
	d.reply(m, src, 0, "")
}

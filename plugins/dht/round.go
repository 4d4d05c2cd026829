package dht

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	anacrolix "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/dht/v2/types"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Traversal parameters (BEP 5 / anacrolix defaults).
const (
	traversalAlpha = 3 // parallel queries
	traversalK     = 8 // closest nodes kept, and announced to
)

var errNoResponse = errors.New("dht: no node answered")

// round runs one discovery round of a topic on the current server: an
// iterative get_peers traversal towards the topic's infohash (every "values"
// entry is reported as it arrives, with the answering node as referrer),
// then, when announce is set, announce_peer with the swarm's port to the K
// closest nodes that gave a token. It returns the generation of the server
// it ran on.
func (d *Node) round(j *join, announce bool) (uint64, error) {
	srv := d.current()
	if srv == nil {
		return 0, errClosed()
	}
	ctx := j.ctx

	lk := newLookup(&d.cfg.Limits, &d.limits)
	report := func(v krpc.NodeAddr, from krpc.NodeAddr, fromID krpc.ID) {
		ap, ok := nodeAddrPort(v)
		if !ok || d.self.isSelf(ap, j.req.Port) {
			return
		}
		refIP, _ := netip.AddrFromSlice(from.IP)
		refIP = refIP.Unmap()
		if !lk.takeValue(ap, refIP) {
			return
		}
		refHost := "<invalid>"
		if refIP.IsValid() {
			refHost = refIP.String()
		}
		p := framework.Peer{
			Host:     ap.Addr().String(),
			Port:     int(ap.Port()),
			Referrer: &framework.Referrer{Host: refHost, Port: from.Port, ID: append([]byte(nil), fromID[:]...)},
			Topic:    j.req.Topic,
			// a DHT entered only through non-global nodes is a private
			// network (a testnet, a private deployment): its peers' private
			// addresses are meant to be dialled
			PrivateNet: d.private,
		}
		j.deliver(func() { j.sink.Peer(p) })
	}

	// Queries of this round that outlived their traversal slot (see
	// softQuery) run on in the background under bg, cancelled when the
	// round ends; their late replies feed the traversal and lateClosest.
	bg, bgCancel := context.WithCancel(ctx)
	defer bgCancel()
	var (
		late        = softLate{max: traversalAlpha}
		lateMu      sync.Mutex // guards lateClosest and stopping
		lateClosest = k_nearest_nodes.New(int160.FromByteArray(j.ih), traversalK)
		stopping    bool // the traversal is stopping: late nodes are not added
	)
	soft := d.softSource()
	var op *traversal.Operation
	get := func(qctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
		d.queries.Add(1)
		// get_peers as anacrolix's GetPeers sends it, with our tries.
		res := d.query(qctx, srv, anacrolix.NewAddr(addr.UDP()), "get_peers", anacrolix.QueryInput{
			MsgArgs:  krpc.MsgArgs{InfoHash: j.ih, Want: []krpc.Want{krpc.WantNodes, krpc.WantNodes6}},
			NumTries: d.cfg.QueryTries,
		})
		if r := res.Reply.R; r != nil {
			if ip, ok := netip.AddrFromSlice(res.Reply.IP.IP); ok {
				d.self.observed(ip)
				d.mapping.observed(addr.String(), netip.AddrPortFrom(ip.Unmap(), uint16(res.Reply.IP.Port)))
			}
			if j.req.Lookup {
				for _, v := range lk.replyValues(r.Values) {
					report(v, addr, r.ID)
				}
			}
		}
		tr := res.TraversalQueryResult(addr)
		tr.Nodes, tr.Nodes6 = lk.replyNodes(tr.Nodes), lk.replyNodes(tr.Nodes6)
		return tr
	}
	// A late reply counts as an early one would have: its nodes join the
	// traversal and, with a token, it may be among the nodes announced to.
	onLate := func(tr traversal.QueryResult) {
		d.lateReplies.Add(1)
		lateMu.Lock()
		defer lateMu.Unlock()
		if stopping {
			return
		}
		op.AddNodes(types.AddrMaybeIdSliceFromNodeInfoSlice(tr.Nodes))
		op.AddNodes(types.AddrMaybeIdSliceFromNodeInfoSlice(tr.Nodes6))
		if _, ok := tr.ClosestData.(string); !ok {
			return
		}
		var n types.AddrMaybeId
		n.FromNodeInfo(*tr.ResponseFrom)
		if !srv.s.TraversalNodeFilter(n) {
			return
		}
		lateClosest = lateClosest.Push(k_nearest_nodes.Elem{Key: tr.ResponseFrom.ToNodeInfoAddrPort(), Data: tr.ClosestData})
	}
	op = traversal.Start(traversal.OperationInput{
		Target: j.ih,
		Alpha:  traversalAlpha,
		K:      traversalK,
		DoQuery: func(qctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			if !lk.admitQuery() {
				return traversal.QueryResult{}
			}
			return late.query(qctx, bg, soft, func(qctx context.Context) traversal.QueryResult {
				return get(qctx, addr)
			}, onLate)
		},
		NodeFilter: func(n types.AddrMaybeId) bool {
			return srv.s.TraversalNodeFilter(n) && lk.admitNode(n)
		},
		// Keep only nodes that gave an announce token.
		DataFilter: func(data any) bool {
			_, ok := data.(string)
			return ok
		},
	})
	nodes, err := srv.s.TraversalStartingNodes()
	if err != nil {
		op.Stop()
		<-op.Stopped()
		return srv.gen, err
	}
	op.AddNodes(nodes)
	// The traversal is over when it stalled with no late query left: a
	// late reply may bring closer nodes, which the traversal then queries.
wait:
	for {
		select {
		case <-op.Stalled():
			if late.pending() == 0 {
				break wait
			}
			select {
			case <-late.changed():
			case <-lk.capped:
				break wait
			case <-ctx.Done():
				break wait
			}
		case <-lk.capped: // LookupQueries sent: take what answered so far
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	lateMu.Lock()
	stopping = true
	lateMu.Unlock()
	op.Stop()
	<-op.Stopped()
	bgCancel()
	late.wait()
	d.queriesLate.Add(uint64(late.late()))
	if err := ctx.Err(); err != nil {
		return srv.gen, err
	}
	if op.Stats().NumResponses == 0 && late.answered() == 0 {
		return srv.gen, errNoResponse
	}
	closest := k_nearest_nodes.New(int160.FromByteArray(j.ih), traversalK)
	op.Closest().Range(func(e k_nearest_nodes.Elem) { closest = closest.Push(e) })
	lateClosest.Range(func(e k_nearest_nodes.Elem) { closest = closest.Push(e) })
	if announce {
		var wg sync.WaitGroup
		closest.Range(func(e k_nearest_nodes.Elem) {
			token, _ := e.Data.(string)
			j.rememberAnnounce(e.Addr.ToNodeAddr())
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.queries.Add(1)
				port := j.req.Port
				d.query(ctx, srv, anacrolix.NewAddr(e.Addr.UDP()), "announce_peer", anacrolix.QueryInput{
					MsgArgs:  krpc.MsgArgs{InfoHash: j.ih, Port: &port, Token: token},
					NumTries: d.cfg.QueryTries,
				})
			}()
		})
		wg.Wait()
	}
	return srv.gen, nil
}

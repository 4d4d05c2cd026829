package dht

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	anacrolix "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/log"
)

// server is one anacrolix server on the Node's socket. An adaptive
// Node replaces its read-only server by a full one (same node id, same
// socket, routing table carried over) when it switches mode.
type server struct {
	s       *anacrolix.Server
	conn    *guardConn
	passive bool
	gen     uint64        // increments with every replacement
	maint   chan struct{} // closed when the table maintainer returned; nil if not started
	quit    chan struct{} // closed by stop
}

// startServerLocked starts a server on d's socket. d.srvMu is held.
func (d *Node) startServerLocked(passive bool, gen uint64) (*server, error) {
	gc := newGuardConn(d.pc, &d.connStats)
	cfg := &anacrolix.ServerConfig{
		NodeId:     d.id,
		Conn:       gc,
		Passive:    passive,
		NoSecurity: true, // BEP 42 ids need a known public IP; loopback testnets have none
		StartingNodes: func() ([]anacrolix.Addr, error) {
			return resolveBootstrap(d.cfg.Bootstrap)
		},
		OnQuery:          d.onQuery,
		QueryResendDelay: d.resendDelay,
		Logger:           log.Default.WithFilterLevel(log.Critical),
		DefaultWant:      []krpc.Want{krpc.WantNodes, krpc.WantNodes6},
		Store:            bep44.NewMemory(),
		Exp:              2 * time.Hour,
		SendLimiter:      d.limiter,
	}
	if !passive {
		// A read-only node answers no query, so it stores nothing.
		cfg.PeerStore = d.store
	}
	s, err := anacrolix.NewServer(cfg)
	if err != nil {
		gc.Close()
		return nil, err
	}
	return &server{s: s, conn: gc, passive: passive, gen: gen, quit: make(chan struct{})}, nil
}

// startMaintenanceLocked runs anacrolix's table maintainer (bootstrap when
// the table is empty or every 30 min, ping questionable nodes, refresh
// buckets, every minute) once the routing table holds a node. d.srvMu is held.
//
// Waiting for a first node works around anacrolix/dht v2.23.0: its
// Bootstrap leaks a traversal goroutine whenever it finds no starting node
// (empty table and no bootstrap node, e.g. a lone bootstrap node), and the
// maintainer calls it every minute. anacrolix never removes nodes from the
// table, so once a node is in, Bootstrap always has somewhere to start.
func (d *Node) startMaintenanceLocked(srv *server) {
	if srv.maint != nil || d.srvClosed {
		return
	}
	srv.maint = make(chan struct{})
	go func() {
		defer close(srv.maint)
		for srv.s.NumNodes() == 0 {
			select {
			case <-srv.quit:
				return
			case <-d.clock.After(time.Second):
			}
		}
		srv.s.TableMaintainer()
	}()
}

// stop closes the server and waits until it no longer reads the socket.
func (srv *server) stop() {
	select {
	case <-srv.quit:
	default:
		close(srv.quit)
	}
	srv.s.Close()
	srv.conn.Close()
	if srv.maint != nil {
		<-srv.maint
	}
}

// current returns the running server, or nil after Close.
func (d *Node) current() *server {
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	if d.srvClosed {
		return nil
	}
	return d.srv
}

// becomeFull replaces the read-only server by a full node: the routing table
// is carried over, and a bootstrap (find_node towards our own id) makes the
// nodes near us add us to their routing tables.
func (d *Node) becomeFull() {
	d.srvMu.Lock()
	if d.srvClosed || !d.srv.passive {
		d.srvMu.Unlock()
		return
	}
	old := d.srv
	nodes := old.s.Nodes()
	old.stop()
	srv, err := d.startServerLocked(false, old.gen+1)
	if err != nil {
		// Cannot happen (NewServer fails only without a conn); stay read-only.
		srv, _ = d.startServerLocked(true, old.gen+1)
		d.srv = srv
		d.srvMu.Unlock()
		return
	}
	for _, n := range nodes {
		_ = srv.s.AddNode(n)
	}
	d.srv = srv
	d.srvMu.Unlock()
	d.bootstrap(srv)
	d.pingAll(srv)
	d.srvMu.Lock()
	if d.maintain {
		d.startMaintenanceLocked(srv)
	}
	d.srvMu.Unlock()
	close(d.modeChanged)
}

// pingAll pings every node of the routing table once (16 at a time), so
// that each can now add us: anacrolix's find_node replies do not always lead
// a bootstrap to the nodes closest to us, and those are the ones with room
// for us in their tables.
func (d *Node) pingAll(srv *server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(d.cfg.QueryTries+1)*d.cfg.QueryTimeout)
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, n := range srv.s.Nodes() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.query(ctx, srv, anacrolix.NewAddr(n.Addr.UDP()), "ping", anacrolix.QueryInput{NumTries: d.cfg.QueryTries})
		}()
	}
	wg.Wait()
}

// NodeInfo is a routing table entry.
type NodeInfo struct {
	Addr netip.AddrPort
	ID   [20]byte
}

// Nodes returns the non-bad nodes of the routing table.
func (d *Node) Nodes() []NodeInfo {
	srv := d.current()
	if srv == nil {
		return nil
	}
	var ret []NodeInfo
	for _, n := range srv.s.Nodes() {
		ret = append(ret, NodeInfo{Addr: n.Addr.ToNodeAddrPort().AddrPort, ID: n.ID})
	}
	return ret
}

// Ping sends a ping to the DHT node at addr (up to Config.QueryTries
// times) and waits for its reply; a node that answers enters the routing
// table as a good node.
func (d *Node) Ping(ctx context.Context, addr netip.AddrPort) error {
	srv := d.current()
	if srv == nil {
		return errClosed()
	}
	res := d.query(ctx, srv, anacrolix.NewAddr(net.UDPAddrFromAddrPort(addr)), "ping", anacrolix.QueryInput{NumTries: d.cfg.QueryTries})
	return res.ToError()
}

// AddNode inserts a node into the routing table without contacting it.
func (d *Node) AddNode(n NodeInfo) error {
	srv := d.current()
	if srv == nil {
		return errClosed()
	}
	return srv.s.AddNode(krpc.NodeInfo{ID: n.ID, Addr: krpc.NodeAddr{IP: n.Addr.Addr().AsSlice(), Port: int(n.Addr.Port())}})
}

// StartMaintenance starts routing-table maintenance when Config.NoMaintenance
// disabled it at first (testnets fill their tables by hand, then call this
// for long runs). Idempotent.
func (d *Node) StartMaintenance() {
	d.srvMu.Lock()
	defer d.srvMu.Unlock()
	d.maintain = true
	if !d.srvClosed {
		d.startMaintenanceLocked(d.srv)
	}
}

// BecameFull is closed when an adaptive node (Config.Ephemeral nil) has
// switched from read-only to full node and has announced itself to the
// nodes near its id. It is never closed for a node with a fixed mode.
func (d *Node) BecameFull() <-chan struct{} { return d.modeChanged }

// bootstrap runs anacrolix's Bootstrap only when it has a node to start
// from (see startMaintenanceLocked for the leak this avoids).
func (d *Node) bootstrap(srv *server) {
	if srv.s.NumNodes() == 0 {
		if addrs, err := resolveBootstrap(d.cfg.Bootstrap); err != nil || len(addrs) == 0 {
			return
		}
	}
	_, _ = srv.s.Bootstrap()
}

// Package dhttest runs local DHT testnets: N full nodes in one process on
// loopback, with filled routing tables, for tests, benchmarks and the
// `swarmhost testnet` command. Every socket it opens can only send to
// loopback addresses.
package dhttest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/int160"

	"github.com/dwebswarm/dwebswarm-go/internal/impair"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// Options configure a Testnet. The zero value is valid.
type Options struct {
	// Port of the first node (the one Bootstrap lists first); 0: any.
	Port int
	// Maintain runs routing-table maintenance on every node, for testnets
	// that run longer than 15 minutes (nodes stay "good" only while they
	// keep talking). Off by default: tests are short.
	Maintain bool
	// QueryTimeout of every node (default 1 s).
	QueryTimeout time.Duration
	// QueryTries of every node (default 4: loopback loses nothing, but a
	// busy CPU can make a reply later than QueryTimeout; resends are cheap
	// and a late reply to any send still counts).
	QueryTries int
	// PerBucket is how many nodes each node pings per routing-table bucket
	// when the tables are filled (default 8, the bucket size).
	PerBucket int
	// Impair, when set, is applied to everything the testnet's nodes send
	// once their routing tables are filled (the fill runs unimpaired): with
	// Delay R and Loss p, a node outside the testnet (ListenNode's, a
	// swarm's) sees a round-trip time of R and a loss of p per query
	// attempt to each live node.
	Impair *impair.Config
	// Dead is the fraction in [0, 1) of the testnet's nodes, the bootstrap
	// ones (the first three) excepted, that fall silent once the tables are
	// filled: they stay in every routing table and never answer (they send
	// nothing), like nodes that left.
	Dead float64
	// Seed makes the impairment's random decisions and the choice of dead
	// nodes reproducible.
	Seed uint64
}

// Testnet is a set of full DHT nodes on 127.0.0.1.
type Testnet struct {
	Nodes []*dht.Node
	conns []*LoopbackConn
	imps  []*impair.Conn // conns[i] wrapped; nil entries without Impair/Dead
	dead  []bool
	opts  Options

	mu     sync.Mutex
	extra  []*dht.Node
	xconns []*LoopbackConn
	closed bool
}

// Start creates n ≥ 1 full nodes and fills their routing tables: each node
// pings, for each bucket of its table, up to PerBucket other nodes in that
// bucket, so every node knows nodes at every distance (a Kademlia graph,
// not a star around a bootstrap node). It returns when every ping has been
// answered or has failed.
func Start(ctx context.Context, n int, opts Options) (*Testnet, error) {
	if n < 1 {
		return nil, errors.New("dhttest: need at least one node")
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = time.Second
	}
	if opts.QueryTries <= 0 {
		opts.QueryTries = 4
	}
	if opts.PerBucket <= 0 {
		opts.PerBucket = 8
	}
	if opts.Dead < 0 || opts.Dead >= 1 {
		return nil, errors.New("dhttest: Dead must be in [0, 1)")
	}
	t := &Testnet{opts: opts}
	for i := range n {
		port := 0
		if i == 0 {
			port = opts.Port
		}
		c, err := ListenLoopback(port)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("dhttest: node %d: %w", i, err)
		}
		t.conns = append(t.conns, c)
		var pc net.PacketConn = c
		if opts.Impair != nil || opts.Dead > 0 {
			// pass-through until the tables are filled
			ic, err := impair.Wrap(c, impair.Config{}, impair.Options{Seed: opts.Seed + uint64(i)})
			if err != nil {
				t.Close()
				return nil, fmt.Errorf("dhttest: node %d: %w", i, err)
			}
			t.imps = append(t.imps, ic)
			pc = ic
		}
		var boot []string
		if i > 0 {
			boot = []string{t.conns[0].LocalAddr().String()}
		} else {
			boot = []string{}
		}
		d, err := dht.ListenNode(dht.Config{
			PacketConn:    pc,
			Bootstrap:     boot,
			Ephemeral:     dht.Bool(false),
			SendRate:      -1,
			QueryTimeout:  opts.QueryTimeout,
			QueryTries:    opts.QueryTries,
			NoMaintenance: true,
			// Every node is on 127.0.0.1: no per-IP share among them.
			Limits: dht.Limits{Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		})
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("dhttest: node %d: %w", i, err)
		}
		t.Nodes = append(t.Nodes, d)
	}
	if err := t.fill(ctx); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.impair(); err != nil {
		t.Close()
		return nil, err
	}
	if opts.Maintain {
		for _, d := range t.Nodes {
			d.StartMaintenance()
		}
	}
	return t, nil
}

// impair applies Options.Impair and Options.Dead.
func (t *Testnet) impair() error {
	t.dead = make([]bool, len(t.Nodes))
	if len(t.imps) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(t.opts.Seed, 0xdead))
	cand := rng.Perm(len(t.Nodes))
	cand = slices.DeleteFunc(cand, func(i int) bool { return i < 3 })
	for _, i := range cand[:int(t.opts.Dead*float64(len(t.Nodes)))] {
		t.dead[i] = true
	}
	for i, ic := range t.imps {
		cfg := impair.Config{Loss: 1}
		if !t.dead[i] {
			cfg = impair.Config{}
			if t.opts.Impair != nil {
				cfg = *t.opts.Impair
			}
		}
		if err := ic.SetConfig(cfg); err != nil {
			return fmt.Errorf("dhttest: %w", err)
		}
	}
	return nil
}

// Dead reports which of Nodes fell silent (Options.Dead).
func (t *Testnet) Dead() []bool { return slices.Clone(t.dead) }

type ping struct {
	from *dht.Node
	to   netip.AddrPort
}

// fill makes every node ping a Kademlia-shaped selection of the others.
func (t *Testnet) fill(ctx context.Context) error {
	n := len(t.Nodes)
	ids := make([]int160.T, n)
	addrs := make([]netip.AddrPort, n)
	for i, d := range t.Nodes {
		ids[i] = int160.FromByteArray(d.ID())
		addrs[i] = d.Addr().(*net.UDPAddr).AddrPort()
	}
	var pings []ping
	for i := range n {
		perBucket := make(map[int]int)
		for _, j := range rand.Perm(n) {
			if j == i {
				continue
			}
			var x int160.T
			x.Xor(&ids[i], &ids[j])
			b := 160 - x.BitLen()
			if perBucket[b] >= t.opts.PerBucket {
				continue
			}
			perBucket[b]++
			pings = append(pings, ping{t.Nodes[i], addrs[j]})
		}
	}
	rand.Shuffle(len(pings), func(a, b int) { pings[a], pings[b] = pings[b], pings[a] })
	work := make(chan ping)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	failed := 0
	for range min(64, len(pings)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				var err error
				for range 3 { // loopback loses almost nothing; retry anyway
					if err = p.from.Ping(ctx, p.to); err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					errMu.Lock()
					failed++
					errMu.Unlock()
				}
			}
		}()
	}
	for _, p := range pings {
		select {
		case work <- p:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dhttest: filling routing tables: %w", err)
	}
	if failed*20 > len(pings) {
		return fmt.Errorf("dhttest: %d of %d pings failed", failed, len(pings))
	}
	return nil
}

// Bootstrap returns host:port of up to three nodes, for Config.Bootstrap.
func (t *Testnet) Bootstrap() []string {
	var ret []string
	for _, d := range t.Nodes[:min(3, len(t.Nodes))] {
		ret = append(ret, d.Addr().String())
	}
	return ret
}

// Addr is host:port of the first node.
func (t *Testnet) Addr() string { return t.Nodes[0].Addr().String() }

// Config completes cfg for a node joining this testnet: Bootstrap (when
// nil), an unlimited send rate (when 0) and the testnet's QueryTimeout and
// QueryTries (when 0). It does not set PacketConn.
func (t *Testnet) Config(cfg dht.Config) dht.Config {
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = t.Bootstrap()
	}
	if cfg.SendRate == 0 {
		cfg.SendRate = -1
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = t.opts.QueryTimeout
	}
	if cfg.QueryTries == 0 {
		cfg.QueryTries = t.opts.QueryTries
	}
	return cfg
}

// ListenNode starts a Node on a new loopback-only socket, configured
// by Config(cfg). Testnet.Close closes it (closing it earlier is fine).
func (t *Testnet) ListenNode(cfg dht.Config) (*dht.Node, error) {
	c, err := ListenLoopback(0)
	if err != nil {
		return nil, err
	}
	cfg = t.Config(cfg)
	cfg.PacketConn = c
	d, err := dht.ListenNode(cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		d.Close()
		c.Close()
		return nil, errors.New("dhttest: testnet closed")
	}
	t.extra = append(t.extra, d)
	t.xconns = append(t.xconns, c)
	return d, nil
}

// PacketsSent counts the packets sent by the testnet's own nodes.
func (t *Testnet) PacketsSent() uint64 {
	var n uint64
	for _, c := range t.conns {
		n += c.Sent()
	}
	return n
}

// Close stops every node (and every Node made by ListenNode) and
// closes their sockets.
func (t *Testnet) Close() error {
	t.mu.Lock()
	t.closed = true
	extra, xconns := t.extra, t.xconns
	t.extra, t.xconns = nil, nil
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range append(append([]*dht.Node(nil), t.Nodes...), extra...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Close()
		}()
	}
	wg.Wait()
	for _, c := range t.imps {
		c.Close() // closes its LoopbackConn too
	}
	for _, c := range append(t.conns, xconns...) {
		c.Close()
	}
	t.Nodes, t.conns, t.imps = nil, nil, nil
	return nil
}

// Package dhttest runs local DHT testnets: N full nodes in one process on
// loopback, with filled routing tables, for tests, benchmarks and the
// `swarmhost testnet` command. Every socket it opens can only send to
// loopback addresses.
//
// A testnet is a simulation: its routing tables are filled by pinging a
// Kademlia-shaped selection of nodes chosen in process (every node knows
// up to PerBucket nodes at every distance at once, as a long-running
// network's nodes would), not by each node bootstrapping and traversing.
// With Options.Memory the nodes talk over an in-memory network
// ([MemNetwork]) instead of UDP sockets, which scales to 10 000 nodes in
// one process; the default, sockets on 127.0.0.1, is what swarms and
// other processes can reach.
package dhttest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

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
	// QueryTimeout of every node (default 1 s; 5 s with Memory).
	QueryTimeout time.Duration
	// QueryTries of every node (default 4: loopback loses nothing, but a
	// busy CPU can make a reply later than QueryTimeout; resends are cheap
	// and a late reply to any send still counts). With Memory the default
	// is 1: the in-memory network loses nothing either, and with thousands
	// of nodes on a starved CPU every resend of a late query is one more
	// reply to compute, which makes the next ones later still.
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
	// Seed makes the impairment's random decisions, the choice of dead
	// nodes and of the nodes each node pings reproducible.
	Seed uint64
	// Memory runs the testnet on an in-memory network (a [MemNetwork]:
	// no sockets, one address per node in 127.77.0.0/16) instead of UDP
	// sockets on 127.0.0.1. Only nodes made by ListenNode (and conns made
	// by ListenPacket) reach it: a swarm's own socket cannot. For large
	// simulations; the socket mode is the realistic one.
	Memory bool
}

// packetConn is a testnet node's conn: a *LoopbackConn or a *MemConn.
type packetConn interface {
	net.PacketConn
	Sent() uint64
}

// Testnet is a set of full DHT nodes on 127.0.0.1.
type Testnet struct {
	Nodes []*dht.Node
	conns []packetConn
	mem   *MemNetwork    // Options.Memory
	imps  []*impair.Conn // conns[i] wrapped; nil entries without Impair/Dead
	dead  []bool
	opts  Options

	mu     sync.Mutex
	extra  []*dht.Node
	xconns []packetConn
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
		if opts.Memory {
			opts.QueryTimeout = 5 * time.Second
		}
	}
	if opts.QueryTries <= 0 {
		opts.QueryTries = 4
		if opts.Memory {
			opts.QueryTries = 1
		}
	}
	if opts.PerBucket <= 0 {
		opts.PerBucket = 8
	}
	if opts.Dead < 0 || opts.Dead >= 1 {
		return nil, errors.New("dhttest: Dead must be in [0, 1)")
	}
	t := &Testnet{opts: opts}
	if opts.Memory {
		t.mem = NewMemNetwork()
	}
	for i := range n {
		port := 0
		if i == 0 {
			port = opts.Port
		}
		c, err := t.listen(port)
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
			// Every socket node is on 127.0.0.1: no per-IP share among
			// them (in memory, each node has an IP of its own).
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

// listen opens a node's conn: on the in-memory network, or a loopback
// socket on port (0: any).
func (t *Testnet) listen(port int) (packetConn, error) {
	if t.mem != nil {
		return t.mem.Listen()
	}
	return ListenLoopback(port)
}

// ListenPacket opens a conn on the testnet's network (a loopback socket,
// or an address of the in-memory network with Options.Memory), for a
// Config.PacketConn of one's own. The caller closes it.
func (t *Testnet) ListenPacket() (net.PacketConn, error) { return t.listen(0) }

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

// fill makes every node ping a Kademlia-shaped selection of the others:
// for each bucket of its table (the nodes sharing exactly b leading id
// bits with it), up to PerBucket nodes of that bucket at random. The nodes
// are sorted by id once, so that a bucket is a range of that order found
// by binary search: O(N log N) to choose, O(N · PerBucket · log N) pings.
func (t *Testnet) fill(ctx context.Context) error {
	n := len(t.Nodes)
	ids := make([][20]byte, n)
	addrs := make([]netip.AddrPort, n)
	for i, d := range t.Nodes {
		ids[i] = d.ID()
		addrs[i] = d.Addr().(*net.UDPAddr).AddrPort()
	}
	rng := rand.New(rand.NewPCG(t.opts.Seed, 0xf111))
	edges := choosePings(ids, t.opts.PerBucket, rng)
	pings := make([]ping, len(edges))
	for k, e := range edges {
		pings[k] = ping{t.Nodes[e[0]], addrs[e[1]]}
	}
	rng.Shuffle(len(pings), func(a, b int) { pings[a], pings[b] = pings[b], pings[a] })
	// The workers take the pings in order by an atomic index: no channel
	// hand-off (and goroutine switch) per ping.
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range min(64, len(pings)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= int64(len(pings)) {
					return
				}
				p := pings[k]
				var err error
				for range 3 { // loopback loses almost nothing; retry anyway
					if err = p.from.Ping(ctx, p.to); err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dhttest: filling routing tables: %w", err)
	}
	if n := int(failed.Load()); n*20 > len(pings) {
		return fmt.Errorf("dhttest: %d of %d pings failed", n, len(pings))
	}
	return nil
}

// choosePings returns the pings of fill as (from, to) indices into ids:
// for every node i and every bucket b of i's table (the nodes sharing
// exactly b leading bits with i), min(perBucket, size of the bucket)
// distinct nodes of that bucket at random.
func choosePings(ids [][20]byte, perBucket int, rng *rand.Rand) [][2]int {
	n := len(ids)
	order := make([]int, n) // node indices by id
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ids[a][:], ids[b][:]) })
	sorted := make([][20]byte, n)
	for k, i := range order {
		sorted[k] = ids[i]
	}
	// perBucket pings for each of the ≈ log2(n/perBucket) buckets that
	// are full, and fewer than 2·perBucket in the deeper ones
	ret := make([][2]int, 0, n*perBucket*(bits.Len(uint(n/max(perBucket, 1)))+2))
	for i := range n {
		lo, hi := 0, n // the nodes sharing ≥ b leading bits with i
		for b := 0; b < 160 && hi-lo > 1; b++ {
			nlo, nhi := prefixRange(sorted, ids[i], b+1, lo, hi)
			// bucket b: [lo, nlo) ∪ [nhi, hi), one of them empty
			for _, k := range pick(rng, nlo-lo+hi-nhi, perBucket) {
				if k < nlo-lo {
					k += lo
				} else {
					k += nhi - (nlo - lo)
				}
				ret = append(ret, [2]int{i, order[k]})
			}
			lo, hi = nlo, nhi
		}
	}
	return ret
}

// prefixRange narrows [lo, hi) of sorted (ids in order) to the ids that
// share their first bits bits with x.
func prefixRange(sorted [][20]byte, x [20]byte, bits, lo, hi int) (int, int) {
	nlo := lo + sort.Search(hi-lo, func(k int) bool { return cmpPrefix(sorted[lo+k], x, bits) >= 0 })
	nhi := nlo + sort.Search(hi-nlo, func(k int) bool { return cmpPrefix(sorted[nlo+k], x, bits) > 0 })
	return nlo, nhi
}

// cmpPrefix compares the first bits bits of a and x.
func cmpPrefix(a, x [20]byte, bits int) int {
	full := bits / 8
	if c := bytes.Compare(a[:full], x[:full]); c != 0 || bits%8 == 0 {
		return c
	}
	mask := byte(0xff) << (8 - bits%8)
	return cmp.Compare(a[full]&mask, x[full]&mask)
}

// pick returns min(k, n) distinct numbers in [0, n) at random.
func pick(rng *rand.Rand, n, k int) []int {
	if n <= k {
		ret := make([]int, n)
		for i := range ret {
			ret[i] = i
		}
		return ret
	}
	ret := make([]int, 0, k)
	for len(ret) < k {
		if x := rng.IntN(n); !slices.Contains(ret, x) {
			ret = append(ret, x)
		}
	}
	return ret
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
	c, err := t.listen(0)
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

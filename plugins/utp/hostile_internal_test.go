package utp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

func TestSynBucket(t *testing.T) {
	cfg := &Config{}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	cfg.SynRate, cfg.SynBurst, cfg.MaxSynSources = 2, 3, 2
	var l synLimiter
	t0 := time.Unix(1000, 0)
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	for i := range 3 {
		if !l.allow(a, t0, cfg) {
			t.Fatalf("SYN %d of the burst refused", i+1)
		}
	}
	if l.allow(a, t0, cfg) {
		t.Fatal("SYN beyond the burst allowed")
	}
	if !l.allow(a, t0.Add(500*time.Millisecond), cfg) || l.allow(a, t0.Add(500*time.Millisecond), cfg) {
		t.Fatal("want exactly one token after 0.5 s at 2/s")
	}
	// another source has its own bucket; a third shares the overflow one
	if !l.allow(b, t0, cfg) {
		t.Fatal("second source refused")
	}
	for range 3 {
		l.allow(c, t0, cfg)
	}
	if l.allow(c, t0, cfg) || len(l.buckets) != 2 {
		t.Fatalf("overflow source beyond the shared burst allowed (%d buckets)", len(l.buckets))
	}
	// once a's bucket refilled, a sweep makes room for c
	later := t0.Add(time.Hour)
	if !l.allow(c, later, cfg) || l.buckets[c] == nil {
		t.Fatal("refilled buckets not swept for a new source")
	}
}

// countingPC records what a socket writes.
type countingPC struct {
	discardPC
	sent map[string][]header
}

func (p *countingPC) WriteTo(b []byte, to net.Addr) (int, error) {
	h, _, err := parseHeader(b)
	if err == nil {
		p.sent[to.String()] = append(p.sent[to.String()], h)
	}
	return len(b), nil
}

func testSocket(t *testing.T, cfg Config) (*socket, *countingPC) {
	t.Helper()
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	pc := &countingPC{sent: map[string][]header{}}
	s := &socket{pc: pc, cfg: &cfg, conns: make(map[connKey]*Conn), done: make(chan struct{})}
	s.ln = newListener(&Transport{cfg: cfg}, "127.0.0.1", 1)
	t.Cleanup(func() { s.shutdown(net.ErrClosed) })
	return s, pc
}

func synPacket(id, seq uint16) []byte {
	var b [headerLen]byte
	h := header{typ: stSyn, connID: id, seq: seq, wnd: 1 << 20}
	putHeader(b[:], &h)
	return b[:]
}

// A half-open connection is not in the backlog, answers repeated SYNs at
// most maxSynAcks times, sends nothing else, and enters the backlog when
// the peer acks the SYN-ACK's seq_nr.
func TestHalfOpenWaitsForTheAnswer(t *testing.T) {
	s, pc := testSocket(t, Config{})
	from := netip.MustParseAddrPort("127.0.0.2:5000")
	for range 10 {
		s.handle(synPacket(7, 100), from)
	}
	if got := len(pc.sent[from.String()]); got != maxSynAcks {
		t.Fatalf("%d packets for 10 SYNs, want %d SYN-ACKs", got, maxSynAcks)
	}
	if len(s.ln.backlog) != 0 || s.half.Len() != 1 {
		t.Fatalf("backlog %d half-open %d, want 0 and 1", len(s.ln.backlog), s.half.Len())
	}
	synAck := pc.sent[from.String()][0]
	// a blind answer (wrong ack_nr) does not open it
	var b [headerLen]byte
	// the dialler sends with the SYN's id + 1
	h := header{typ: stState, connID: 8, ack: synAck.seq + 5, seq: 101}
	putHeader(b[:], &h)
	s.handle(b[:], from)
	if len(s.ln.backlog) != 0 {
		t.Fatal("an answer that does not ack the SYN-ACK opened the connection")
	}
	h.ack = synAck.seq - 1
	putHeader(b[:], &h)
	s.handle(b[:], from)
	if len(s.ln.backlog) != 1 || s.half.Len() != 0 || s.synsAnswered.Load() != 1 {
		t.Fatalf("backlog %d half-open %d: the answer did not open the connection", len(s.ln.backlog), s.half.Len())
	}
}

// Half-open connections are bounded per source (further SYNs dropped) and
// in total (the oldest gives way).
func TestHalfOpenBounds(t *testing.T) {
	s, pc := testSocket(t, Config{MaxHalfOpen: 4, MaxHalfOpenPerIP: 2})
	a := netip.MustParseAddrPort("127.0.0.2:5000")
	for i := range 5 {
		s.handle(synPacket(uint16(10*i), 1), a)
	}
	if s.half.Len() != 2 || s.synsOverCap.Load() != 3 || len(pc.sent[a.String()]) != 2 {
		t.Fatalf("half-open %d over cap %d sent %d, want 2, 3, 2", s.half.Len(), s.synsOverCap.Load(), len(pc.sent[a.String()]))
	}
	var first *Conn
	for i := range 3 {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(3 + i)}), 5000)
		s.handle(synPacket(1, 1), from)
		if i == 0 {
			first = s.half.Back().Value.(*Conn)
		}
	}
	if s.half.Len() != 4 || s.halfEvicted.Load() != 1 {
		t.Fatalf("half-open %d evicted %d, want 4 and 1", s.half.Len(), s.halfEvicted.Load())
	}
	if len(s.conns) != 4 {
		t.Fatalf("%d conns, want the 4 half-open", len(s.conns))
	}
	if first.halfElem == nil {
		t.Fatal("a newer connection than the oldest was evicted")
	}
}

// A half-open connection whose peer never answers ends at HalfOpenTimeout
// without any packet beyond its SYN-ACK (no keep-alive, no RESET).
func TestHalfOpenExpiresSilently(t *testing.T) {
	s, pc := testSocket(t, Config{HalfOpenTimeout: 20 * time.Millisecond, KeepAlive: time.Millisecond, IdleTimeout: 5 * time.Millisecond})
	from := netip.MustParseAddrPort("127.0.0.2:5000")
	s.handle(synPacket(7, 100), from)
	s.mu.Lock()
	var c *Conn
	for _, x := range s.conns {
		c = x
	}
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("half-open connection never expired")
	}
	c.mu.Lock() // fail, which closed done, has returned
	err := c.err
	c.mu.Unlock()
	s.mu.Lock()
	half := s.half.Len()
	s.mu.Unlock()
	if !errors.Is(err, errHalfOpenExpired) || s.halfExpired.Load() != 1 || half != 0 {
		t.Fatalf("err %v expired %d half-open %d", err, s.halfExpired.Load(), half)
	}
	if got := pc.sent[from.String()]; len(got) != 1 {
		t.Fatalf("%d packets sent to a peer that never answered, want the SYN-ACK alone", len(got))
	}
}

// FuzzHalfOpen feeds datagrams from a few sources to a listening socket
// with small half-open bounds: the books stay consistent and bounded, and
// no source receives more than maxSynAcks packets per SYN it sent plus
// RESETs for unknown connections.
func FuzzHalfOpen(f *testing.F) {
	f.Add(append(append([]byte{0}, synPacket(7, 1)...), append([]byte{1}, synPacket(9, 3)...)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := testSocket(t, Config{MaxHalfOpen: 3, MaxHalfOpenPerIP: 2, SynBurst: 4})
		for len(data) > 1 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 2 + data[0]%3}), 5000+uint16(data[0]%2))
			n := min(headerLen+int(data[1]%8), len(data)-1)
			s.handle(data[1:1+n], src)
			data = data[1+n:]
			s.mu.Lock()
			total := 0
			for _, k := range s.halfPerIP {
				total += k
				if k > 2 {
					t.Fatalf("%d half-open from one source", k)
				}
			}
			if total != s.half.Len() || s.half.Len() > 3 {
				t.Fatalf("half-open books: %d per source, %d listed", total, s.half.Len())
			}
			s.mu.Unlock()
		}
	})
}

// ---- hostile: a SYN flood on loopback against a swarm ----

// testTransport builds a transport with cfg (defaults for zero fields).
func testTransport(t testing.TB, cfg Config) *Transport {
	t.Helper()
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	return &Transport{cfg: cfg}
}

func utpSwarm(t testing.TB, tr *Transport) *framework.Swarm {
	t.Helper()
	sw, err := framework.New(framework.WithTransport(tr), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithAllowNoTopic(true),
		framework.WithConnectionHandler(func(c *framework.Conn) {
			if c.Client() {
				return // the test's own: it reads the answer
			}
			defer c.Close()
			b := make([]byte, 4)
			if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
				return
			}
			c.Write([]byte("pong"))
			io.Copy(io.Discard, c)
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

func pingPong(c net.Conn) error {
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != "pong" {
		return errors.New("no pong")
	}
	return nil
}

// flooder is a SYN flood's sockets and, per socket, the connection ids it
// sent with their index among the SYNs of its address.
type flooder struct {
	conns []*net.UDPConn
	sent  []map[uint16]int // per socket: connID → index within its address
}

// synFlood sends perIP SYNs from each of ips loopback addresses
// (127.0.0.2…), spread over ports sockets per address, to port. The
// sockets are closed at cleanup.
func synFlood(t testing.TB, port, ips, ports, perIP int) *flooder {
	t.Helper()
	f := &flooder{}
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for ip := range ips {
		var socks []*net.UDPConn
		for range ports {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+ip))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			socks = append(socks, c)
			f.conns = append(f.conns, c)
			f.sent = append(f.sent, map[uint16]int{})
		}
		base := len(f.conns) - ports
		for i := range perIP {
			k := i % ports
			id := uint16(2 * i) // distinct per socket (and not adjacent)
			if _, err := socks[k].WriteToUDP(synPacket(id, uint16(i)), to); err != nil {
				t.Fatal(err)
			}
			f.sent[base+k][id] = i
		}
	}
	return f
}

func (f *flooder) close() {
	for _, c := range f.conns {
		c.Close()
	}
}

// replies drains what each flooding socket received (everything sent to
// it is already queued: loopback delivers at once).
func (f *flooder) replies(t testing.TB) [][]header {
	out := make([][]header, len(f.conns))
	buf := make([]byte, maxPacket)
	for i, c := range f.conns {
		for {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			h, _, err := parseHeader(buf[:n])
			if err != nil {
				t.Fatalf("flooder %d got a non-uTP packet", i)
			}
			out[i] = append(out[i], h)
		}
	}
	return out
}

// TestSynFloodCannotLockOut: 1 000 raw SYNs from 10 loopback addresses and
// 100 source ports aimed at a uTP swarm. A legitimate peer still connects
// and is answered, and the swarm dials out; the flooders receive one
// SYN-ACK per SYN the swarm admitted and nothing else (no keep-alive, no
// RESET, even with a 10 ms keep-alive interval), no source more than its
// SYN burst (the rest of its SYNs get nothing), and the half-open
// connections never reach the swarm.
func TestSynFloodCannotLockOut(t *testing.T) {
	const ips, ports, perIP = 10, 10, 100
	cfg := Config{SynBurst: 16, SynRate: 1e-6, MaxHalfOpenPerIP: 64, HalfOpenTimeout: 300 * time.Millisecond, KeepAlive: 10 * time.Millisecond}
	ttr := testTransport(t, cfg)
	target := utpSwarm(t, ttr)
	legit := utpSwarm(t, testTransport(t, Config{}))
	// the swarm dials out to another peer: a dial back to legit would be
	// the duplicate of legit's open session, refused by legit (S5)
	other := utpSwarm(t, testTransport(t, Config{}))

	f := synFlood(t, target.Port(), ips, ports, perIP)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := legit.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: target.Port()})
	if err != nil {
		t.Fatalf("legitimate peer: %v", err)
	}
	if err := pingPong(c); err != nil {
		t.Fatalf("legitimate peer not answered: %v", err)
	}
	out, err := target.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: other.Port()})
	if err != nil {
		t.Fatalf("target cannot dial out: %v", err)
	}
	if err := pingPong(out); err != nil {
		t.Fatal(err)
	}

	// every half-open connection expires (bounded wait)
	deadline := time.Now().Add(20 * time.Second)
	for ttr.Stats().HalfOpen > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("half-open connections left: %+v", ttr.Stats())
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, bounded
	}
	st := ttr.Stats()
	replies := f.replies(t)
	total := 0
	perSource := make([]int, ips)
	for i, hs := range replies {
		seen := map[uint16]bool{}
		for _, h := range hs {
			_, ok := f.sent[i][h.connID]
			if h.typ != stState || !ok {
				t.Fatalf("flooder %d got a %d packet for conn %d: not a SYN-ACK of one of its SYNs", i, h.typ, h.connID)
			}
			if seen[h.connID] {
				t.Fatalf("flooder %d got two packets for one SYN", i)
			}
			seen[h.connID] = true
			if perSource[i/ports]++; perSource[i/ports] > cfg.SynBurst {
				t.Fatalf("source %d answered beyond its rate (burst %d)", i/ports, cfg.SynBurst)
			}
			total++
		}
	}
	admitted := int(st.HalfOpenExpired + st.HalfOpenEvicted)
	// (UDP on a loaded machine may drop a SYN-ACK or some of the burst:
	// the flooders may hear fewer SYN-ACKs than were sent, never more, and
	// not every SYN over the rate is counted)
	if total > admitted || total < admitted*9/10 || total > ips*cfg.SynBurst || st.SynsRateLimited == 0 {
		t.Fatalf("%d SYN-ACKs for %d admitted SYNs (at most %d); stats %+v", total, admitted, ips*cfg.SynBurst, st)
	}
	if ts := target.Stats(); ts.Servers != 1 || ts.Displaced != 0 {
		t.Fatalf("swarm stats %+v: half-open connections reached the swarm", ts)
	}
	t.Logf("flood: %d SYN-ACKs for %d SYNs; utp %+v", total, ips*perIP, st)
}

// BenchmarkConnectUnderSynFlood reports how long a legitimate uTP peer
// takes to connect and be answered (ms-to-connect) right after 1 000 SYNs
// from 10 loopback addresses (default limits).
func BenchmarkConnectUnderSynFlood(b *testing.B) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		target := utpSwarm(b, testTransport(b, Config{}))
		legit := utpSwarm(b, testTransport(b, Config{}))
		f := synFlood(b, target.Port(), 10, 10, 100)
		b.StartTimer()
		start := time.Now()
		c, err := legit.Connect(context.Background(), framework.Peer{Host: "127.0.0.1", Port: target.Port()})
		if err != nil {
			b.Fatal(err)
		}
		if err := pingPong(c); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		f.close()
		target.Close()
		legit.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(time.Millisecond)/float64(b.N), "ms-to-connect")
}

// Drain does not wait for half-open connections: they have nothing to
// deliver (a swarm's Close waited for them until its drain timeout).
func TestDrainSkipsHalfOpen(t *testing.T) {
	s, _ := testSocket(t, Config{})
	s.handle(synPacket(7, 100), netip.MustParseAddrPort("127.0.0.2:5000"))
	tr := &Transport{cfg: *s.cfg, sock: s}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Drain(ctx); err != nil {
		t.Fatalf("drain with a half-open connection: %v", err)
	}
}

package utp

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recordingPC keeps the datagrams a socket writes.
type recordingPC struct {
	discardPC
	mu   sync.Mutex
	sent [][]byte
}

func (p *recordingPC) WriteTo(b []byte, _ net.Addr) (int, error) {
	p.mu.Lock()
	p.sent = append(p.sent, append([]byte(nil), b...))
	p.mu.Unlock()
	return len(b), nil
}

func (p *recordingPC) datagrams() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.sent...)
}

func recordingSocket(t *testing.T, cfg Config) (*socket, *recordingPC) {
	t.Helper()
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	pc := &recordingPC{}
	s := &socket{pc: pc, cfg: &cfg, conns: make(map[connKey]*Conn), done: make(chan struct{})}
	s.ln = newListener(&Transport{cfg: cfg}, "127.0.0.1", 1)
	t.Cleanup(func() { s.shutdown(net.ErrClosed) })
	return s, pc
}

// acceptFrom plays a dialler at from: SYN (announcing maxDgram unless 0),
// then the answer to the SYN-ACK. It returns the accepted connection and
// the SYN-ACK.
func acceptFrom(t *testing.T, s *socket, pc *recordingPC, from netip.AddrPort, maxDgram uint32) (*Conn, header) {
	t.Helper()
	var b [headerLen + extDatagramLen]byte
	h := header{typ: stSyn, connID: 7, seq: 100, wnd: 1 << 20, maxDgram: maxDgram}
	s.handle(b[:putHeader(b[:], &h)], from)
	sent := pc.datagrams()
	if len(sent) != 1 {
		t.Fatalf("%d datagrams for a SYN", len(sent))
	}
	synAck, _, err := parseHeader(sent[0])
	if err != nil {
		t.Fatal(err)
	}
	h = header{typ: stState, connID: 8, seq: 101, ack: synAck.seq - 1, wnd: 1 << 20}
	s.handle(b[:putHeader(b[:], &h)], from)
	c := s.conns[connKey{from, 8}]
	if c == nil || len(s.ln.backlog) != 1 {
		t.Fatal("the connection was not accepted")
	}
	return c, synAck
}

// A loopback peer that did not say it reads large datagrams (libutp,
// anacrolix/utp: the latter reads 8 KiB and gets truncated data) gets
// PacketSize datagrams; one that said so (ours) gets LoopbackPacketSize
// ones. Our SYN-ACK says what we read.
func TestDatagramsFitWhatThePeerReads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxDgram uint32
		want     int
	}{
		{"BEP 29 peer", 0, DefaultPacketSize},
		{"peer reading 8 KiB", 8 << 10, DefaultPacketSize},
		{"our peer", maxPacket, DefaultLoopbackPacketSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pc := recordingSocket(t, Config{})
			c, synAck := acceptFrom(t, s, pc, netip.MustParseAddrPort("127.0.0.1:5000"), tc.maxDgram)
			if synAck.maxDgram != maxPacket {
				t.Errorf("the SYN-ACK says we read %d bytes, want %d", synAck.maxDgram, maxPacket)
			}
			if _, err := c.Write(make([]byte, 256<<10)); err != nil {
				t.Fatal(err)
			}
			largest := 0
			for _, d := range pc.datagrams() {
				largest = max(largest, len(d))
			}
			if largest != tc.want {
				t.Fatalf("largest datagram %d bytes, want %d", largest, tc.want)
			}
		})
	}
}

// Our dialler announces what it reads in its SYN, and two of our peers on
// loopback use LoopbackPacketSize.
func TestDiallerAnnouncesItsDatagramSize(t *testing.T) {
	s, pc := recordingSocket(t, Config{})
	c := newConn(s, connKey{netip.MustParseAddrPort("127.0.0.1:5000"), 9}, 10, true)
	c.mu.Lock()
	c.sendSyn()
	c.mu.Unlock()
	t.Cleanup(func() { c.mu.Lock(); c.fail(net.ErrClosed); c.mu.Unlock() })
	h, _, err := parseHeader(pc.datagrams()[0])
	if err != nil || h.typ != stSyn || h.maxDgram != maxPacket {
		t.Fatalf("SYN %+v, %v: want maxDgram %d", h, err, maxPacket)
	}
}

// The dialler answers the SYN-ACK with an empty DATA packet, kept in
// flight until acked: libutp's acceptor can send nothing before a DATA
// packet arrives (a STATE leaves it in SYN_RECV), so a server that speaks
// first would hang.
func TestDiallerAnswersTheSynAckWithData(t *testing.T) {
	s, pc := recordingSocket(t, Config{})
	c := newConn(s, connKey{netip.MustParseAddrPort("127.0.0.1:5000"), 9}, 10, true)
	t.Cleanup(func() { c.mu.Lock(); c.fail(net.ErrClosed); c.mu.Unlock() })
	c.mu.Lock()
	c.sendSyn()
	c.mu.Unlock()
	syn, _, _ := parseHeader(pc.datagrams()[0])
	c.receive(&header{typ: stState, connID: 9, seq: 500, ack: syn.seq, wnd: 1 << 20}, nil, time.Now())
	sent := pc.datagrams()
	if len(sent) != 2 {
		t.Fatalf("%d datagrams after the SYN-ACK, want the SYN and one answer", len(sent))
	}
	h, payload, err := parseHeader(sent[1])
	if err != nil || h.typ != stData || len(payload) != 0 || h.seq != syn.seq+1 || h.ack != 499 {
		t.Fatalf("answer %+v (%d bytes), %v: want an empty DATA, seq %d, ack 499", h, len(payload), err, syn.seq+1)
	}
	c.mu.Lock()
	inflight := len(c.inflight)
	c.mu.Unlock()
	if inflight != 1 {
		t.Fatalf("%d packets in flight, want the empty DATA until acked", inflight)
	}
}

// Packets beyond a hole are acked by a selective ack every
// ackEvery packets (or after the delayed-ack timer), not one
// ack each; the packet that fills the hole is acked at once.
func TestOutOfOrderAcksAreCoalesced(t *testing.T) {
	s, pc := recordingSocket(t, Config{})
	s.ackDelay = time.Hour // only the packet counts send acks here
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	c, _ := acceptFrom(t, s, pc, from, 0)
	before := len(pc.datagrams())
	var b [headerLen + 100]byte
	data := func(seq uint16) {
		h := header{typ: stData, connID: 8, seq: seq, ack: c.isn - 1, wnd: 1 << 20}
		putHeader(b[:], &h)
		s.handle(b[:], from)
	}
	// the dialler's first data packet is 101; it is lost, 102–201 arrive
	const n = 100
	for i := range n {
		data(102 + uint16(i))
	}
	acks := pc.datagrams()[before:]
	if want := n / ackEvery; len(acks) != want {
		t.Fatalf("%d acks for %d packets beyond a hole, want %d", len(acks), n, want)
	}
	last, _, err := parseHeader(acks[len(acks)-1])
	if err != nil || last.ack != 100 || len(last.sack) == 0 || last.sack[0]&1 == 0 {
		t.Fatalf("last ack %+v, %v: want ack_nr 100 and a selective ack from 102", last, err)
	}
	data(101) // the hole is filled: acked at once
	acks = pc.datagrams()[before+len(acks):]
	if len(acks) != 1 {
		t.Fatalf("%d acks for the packet that filled the hole, want 1", len(acks))
	}
	if h, _, _ := parseHeader(acks[0]); h.ack != 101+n || h.sack != nil {
		t.Fatalf("ack %+v: want ack_nr %d and no selective ack", h, 101+n)
	}
}

// In-order data is acked every ackEvery (8) packets (fewer wait for the
// delayed-ack timer), not every second one.
func TestInOrderAcksAreCoalesced(t *testing.T) {
	s, pc := recordingSocket(t, Config{})
	s.ackDelay = time.Hour // only the packet counts send acks here
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	c, _ := acceptFrom(t, s, pc, from, 0)
	before := len(pc.datagrams())
	var b [headerLen + 100]byte
	const n = 100
	for i := range n {
		h := header{typ: stData, connID: 8, seq: 101 + uint16(i), ack: c.isn - 1, wnd: 1 << 20}
		putHeader(b[:], &h)
		s.handle(b[:], from)
	}
	const want = n / 8 // one ack per 8 packets (every second before)
	if acks := pc.datagrams()[before:]; len(acks) != want {
		t.Fatalf("%d acks for %d packets in order, want %d", len(acks), n, want)
	}
}

// queueLen is a bufferedReader whose backlog the test sets.
type queueLen struct{ n int }

func (q *queueLen) Buffered() int { return q.n }

// While the read loop takes in a burst (more datagrams queued), acks wait
// for its end: one ack for a burst of 40 in-order packets, as libutp
// acks once per burst read (an ack per 8 packets before); the reader is
// woken once, at the burst's end, too.
func TestAcksWaitForTheEndOfABurst(t *testing.T) {
	s, pc := recordingSocket(t, Config{})
	s.ackDelay = time.Hour
	q := &queueLen{}
	s.br = q
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	c, _ := acceptFrom(t, s, pc, from, 0)
	before := len(pc.datagrams())
	select {
	case <-c.readNotify:
	default:
	}
	var b [headerLen + 100]byte
	const n = 40
	for i := range n {
		q.n = n - 1 - i // what is still queued behind this packet
		h := header{typ: stData, connID: 8, seq: 101 + uint16(i), ack: c.isn - 1, wnd: 1 << 20}
		putHeader(b[:], &h)
		s.handle(b[:], from)
		s.flushAcks()
		if woken := len(c.readNotify) > 0; woken != (i == n-1) {
			t.Fatalf("packet %d of %d: reader woken %v, want only at the burst's end", i+1, n, woken)
		}
	}
	acks := pc.datagrams()[before:]
	if len(acks) != 1 {
		t.Fatalf("%d acks for a burst of %d packets, want 1", len(acks), n)
	}
	if h, _, _ := parseHeader(acks[0]); h.ack != 100+n {
		t.Fatalf("ack_nr %d, want %d", h.ack, 100+n)
	}
	// a burst longer than maxAckBurst is acked at least every maxAckBurst
	before = len(pc.datagrams())
	q.n = 1 << 20
	for i := range 3 * maxAckBurst {
		h := header{typ: stData, connID: 8, seq: 101 + n + uint16(i), ack: c.isn - 1, wnd: 1 << 20}
		putHeader(b[:], &h)
		s.handle(b[:], from)
		s.flushAcks()
	}
	if got := len(pc.datagrams()) - before; got < 2 || got > 4 {
		t.Fatalf("%d acks for %d packets of an endless burst, want 2–4", got, 3*maxAckBurst)
	}
}

package utp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := header{typ: stState, connID: 0xbeef, ts: 1, tsDiff: 2, wnd: 3, seq: 4, ack: 5, sack: []byte{1, 0, 0, 0x80}, maxDgram: 0x10000}
	var b [headerLen + 2 + maxSackBytes + extDatagramLen]byte
	n := putHeader(b[:], &h)
	got, payload, err := parseHeader(append(b[:n:n], "data"...))
	if err != nil {
		t.Fatal(err)
	}
	if got.typ != h.typ || got.connID != h.connID || got.ts != 1 || got.tsDiff != 2 || got.wnd != 3 ||
		got.seq != 4 || got.ack != 5 || !bytes.Equal(got.sack, h.sack) || got.maxDgram != 0x10000 || string(payload) != "data" {
		t.Fatalf("got %+v %q", got, payload)
	}
	// the first byte of a uTP packet is never 'd': udpmux routes it to us
	for typ := range uint8(numTypes) {
		if typ<<4|version == 'd' {
			t.Fatalf("type %d collides with KRPC", typ)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	var b [headerLen + 2 + maxSackBytes]byte
	for _, h := range []header{
		{typ: stSyn, connID: 7},
		{typ: stData, seq: 9, ack: 3},
		{typ: stState, sack: []byte{0xff, 0, 0, 1}},
	} {
		n := putHeader(b[:], &h)
		f.Add(append([]byte(nil), b[:n]...))
	}
	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	f.Add([]byte{0x21, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := parseHeader(data)
		if err != nil {
			return
		}
		if len(payload) > len(data)-headerLen {
			t.Fatal("payload longer than the packet")
		}
		if h.sack != nil && (len(h.sack) == 0 || len(h.sack)%4 != 0) {
			t.Fatalf("bad sack length %d", len(h.sack))
		}
		// re-encoding a parsed header parses back to the same fields
		if len(h.sack) > 255 {
			t.Fatal("sack longer than its length byte")
		}
		buf := make([]byte, headerLen+2+len(h.sack))
		n := putHeader(buf, &h)
		h2, rest, err := parseHeader(buf[:n])
		if err != nil || len(rest) != 0 || h2.typ != h.typ || h2.connID != h.connID || h2.seq != h.seq ||
			h2.ack != h.ack || h2.wnd != h.wnd || !bytes.Equal(h2.sack, h.sack) {
			t.Fatalf("round trip: %+v → %+v (%v)", h, h2, err)
		}
	})
}

// discardPC is a PacketConn that drops what is written and never reads.
type discardPC struct{}

func (discardPC) ReadFrom([]byte) (int, net.Addr, error)    { return 0, nil, net.ErrClosed }
func (discardPC) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (discardPC) Close() error                              { return nil }
func (discardPC) LocalAddr() net.Addr                       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (discardPC) SetDeadline(time.Time) error               { return nil }
func (discardPC) SetReadDeadline(time.Time) error           { return nil }
func (discardPC) SetWriteDeadline(time.Time) error          { return nil }

// FuzzSocketHandle feeds arbitrary datagrams (length-prefixed in the
// input) to a listening socket with one client connection: nothing may
// panic, whatever the packets say.
func FuzzSocketHandle(f *testing.F) {
	var b [headerLen + 2 + maxSackBytes]byte
	var seed []byte
	for _, h := range []header{
		{typ: stSyn, connID: 7, seq: 100},
		{typ: stData, connID: 8, seq: 101, ack: 0},
		{typ: stState, connID: 8, seq: 101, ack: 5, sack: []byte{0xff, 0, 0, 1}},
		{typ: stFin, connID: 8, seq: 103},
		{typ: stReset, connID: 8},
	} {
		n := putHeader(b[:], &h)
		seed = append(seed, byte(n+3))
		seed = append(seed, b[:n]...)
		seed = append(seed, "abc"...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{}
		if err := cfg.setDefaults(); err != nil {
			t.Fatal(err)
		}
		s := &socket{pc: discardPC{}, cfg: &cfg, conns: make(map[connKey]*Conn), done: make(chan struct{})}
		s.ln = newListener(&Transport{cfg: cfg}, "127.0.0.1", 1)
		from := netip.MustParseAddrPort("127.0.0.1:2")
		client, _ := s.newClientConn(from)
		client.mu.Lock()
		client.sendSyn()
		client.mu.Unlock()
		for len(data) > 0 {
			n := min(int(data[0]), len(data)-1)
			s.handle(data[1:1+n], from)
			data = data[1+n:]
		}
		for _, c := range s.conns {
			c.SetDeadline(time.Now())
			c.Write([]byte("x"))
			c.Read(make([]byte, 1<<16))
			c.Close()
		}
		s.shutdown(net.ErrClosed)
	})
}

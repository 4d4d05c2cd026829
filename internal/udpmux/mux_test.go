package udpmux

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listen(t testing.TB) *Mux {
	t.Helper()
	m, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func sender(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t testing.TB, c net.PacketConn) ([]byte, net.Addr) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n], from
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Kind
	}{
		{"", KindOther},
		{"d", KindKRPC},
		{"d1:y1:qe", KindKRPC},
		{"\x01\x00", KindOther},
		{"\x41\x00", KindOther}, // uTP ST_DATA v1
		{"l1:ae", KindOther},
		{"D", KindOther},
	} {
		if got := Classify([]byte(tc.in)); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDemux(t *testing.T) {
	m := listen(t)
	s := sender(t)
	dst := m.LocalAddr().(*net.UDPAddr)
	msgs := [][]byte{[]byte("d1:y1:qe"), {0x41, 0x00, 1, 2}, []byte("dxyz"), []byte("hello")}
	for _, b := range msgs {
		if _, err := s.WriteToUDP(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range [][]byte{msgs[0], msgs[2]} {
		got, from := read(t, m.KRPC())
		if !bytes.Equal(got, want) {
			t.Fatalf("krpc got %q want %q", got, want)
		}
		if from.String() != s.LocalAddr().String() {
			t.Fatalf("from %v want %v", from, s.LocalAddr())
		}
	}
	for _, want := range [][]byte{msgs[1], msgs[3]} {
		got, _ := read(t, m.Other())
		if !bytes.Equal(got, want) {
			t.Fatalf("other got %q want %q", got, want)
		}
	}
}

func TestWriteBothConns(t *testing.T) {
	m := listen(t)
	s := sender(t)
	for i, c := range []net.PacketConn{m.KRPC(), m.Other()} {
		if _, err := c.WriteTo([]byte{byte(i)}, s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		// A non-*net.UDPAddr address works too.
		if _, err := c.WriteTo([]byte{byte(i)}, fakeAddr(s.LocalAddr().String())); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 10)
			n, from, err := s.ReadFromUDP(buf)
			if err != nil || n != 1 || buf[0] != byte(i) || from.Port != m.Port() {
				t.Fatalf("got %v %v %v %v", n, buf[:n], from, err)
			}
		}
	}
	if _, err := m.KRPC().WriteTo([]byte("x"), nil); err == nil {
		t.Fatal("nil addr accepted")
	}
	if _, err := m.KRPC().WriteTo([]byte("x"), fakeAddr("nonsense")); err == nil {
		t.Fatal("bad addr accepted")
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "udp" }
func (a fakeAddr) String() string  { return string(a) }

func TestReadDeadline(t *testing.T) {
	m := listen(t)
	c := m.KRPC()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, _, err := c.ReadFrom(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want timeout", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("deadline too late")
	}
	// Past deadline fails immediately; clearing it makes reads work again.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	c.SetReadDeadline(time.Time{})
	s := sender(t)
	s.WriteToUDP([]byte("dd"), m.LocalAddr().(*net.UDPAddr))
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read blocked")
	}
	// A deadline set while a read is blocked wakes it.
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		done <- err
	}()
	c.SetDeadline(time.Now().Add(10 * time.Millisecond))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestWriteDeadline(t *testing.T) {
	m := listen(t)
	c := m.Other()
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.WriteTo([]byte("x"), m.LocalAddr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The other virtual conn is unaffected.
	if _, err := m.KRPC().WriteTo([]byte("x"), m.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Time{})
	if _, err := c.WriteTo([]byte("x"), m.LocalAddr()); err != nil {
		t.Fatal(err)
	}
}

func TestCloseVirtualKeepsSocket(t *testing.T) {
	m := listen(t)
	s := sender(t)
	blocked := make(chan error, 1)
	go func() {
		_, _, err := m.KRPC().ReadFrom(make([]byte, 10))
		blocked <- err
	}()
	m.KRPC().Close()
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := m.KRPC().WriteTo([]byte("d"), s.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	// Packets for the closed conn are dropped; the other conn still works.
	s.WriteToUDP([]byte("de"), m.LocalAddr().(*net.UDPAddr))
	s.WriteToUDP([]byte("xx"), m.LocalAddr().(*net.UDPAddr))
	got, _ := read(t, m.Other())
	if string(got) != "xx" {
		t.Fatalf("got %q", got)
	}
	if _, err := m.Other().WriteTo([]byte("x"), s.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := m.KRPC().Close(); err != nil {
		t.Fatal("second close:", err)
	}
}

func TestMuxClose(t *testing.T) {
	m, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, c := range []net.PacketConn{m.KRPC(), m.Other()} {
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 10))
			errs <- err
		}()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err = %v", err)
		}
	}
	select {
	case <-m.Done():
	default:
		t.Fatal("not done")
	}
	if m.Err() == nil {
		t.Fatal("no reader error after close")
	}
	m.Close() // idempotent
}

func TestTruncateAndQueueOverflow(t *testing.T) {
	m, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Fill the queue directly (no network timing involved).
	from := netip.MustParseAddrPort("127.0.0.1:9")
	for range DefaultQueueLen + 10 {
		m.dispatch([]byte("d123456789"), from)
	}
	if got := m.krpc.Dropped(); got != 10 {
		t.Fatalf("dropped %d, want 10", got)
	}
	buf := make([]byte, 3)
	n, addr, err := m.KRPC().ReadFrom(buf)
	if err != nil || n != 3 || string(buf) != "d12" || addr.String() != "127.0.0.1:9" {
		t.Fatalf("got %d %q %v %v", n, buf, addr, err)
	}
}

func TestListenErrors(t *testing.T) {
	if _, err := Listen("udp4", "not an address"); err == nil {
		t.Fatal("bad address accepted")
	}
	m := listen(t)
	if _, err := Listen("udp4", m.LocalAddr().String()); err == nil {
		t.Fatal("port in use accepted")
	}
}

func FuzzDispatch(f *testing.F) {
	for _, s := range []string{"", "d", "d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe", "\x41\x00\x00\x01", "\x00", "e", "l"} {
		f.Add([]byte(s))
	}
	m, err := Listen("udp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	from := netip.MustParseAddrPort("127.0.0.1:7")
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxPacket {
			return
		}
		m.dispatch(b, from)
		want, other := m.krpc, m.other
		if len(b) == 0 || b[0] != 'd' {
			want, other = other, want
		}
		select {
		case p := <-want.queue:
			if !bytes.Equal(p.data, b) || p.from != from {
				t.Fatalf("got %q from %v", p.data, p.from)
			}
		default:
			t.Fatalf("packet %q not routed to its conn", b)
		}
		select {
		case p := <-other.queue:
			t.Fatalf("packet %q also routed to the other conn", p.data)
		default:
		}
	})
}

// WriteBatch delivers every datagram intact, in order and at its own
// size (on Linux runs of equal sizes leave as one GSO send and the
// receiving Mux splits what UDP_GRO coalesced); KRPC packets in a batch
// still reach the KRPC side.
func TestWriteBatchDeliversEachDatagram(t *testing.T) {
	a, b := listen(t), listen(t)
	to := netip.MustParseAddrPort(b.LocalAddr().String())
	var msgs [][]byte
	sizes := []int{}
	for range 100 {
		sizes = append(sizes, 1400)
	}
	sizes = append(sizes, 700, 1400, 1400, 20, 20, 9000, 1)
	for i, n := range sizes {
		m := bytes.Repeat([]byte{byte(i)}, n)
		m[0] = 0x41 // a uTP-like first byte: not KRPC
		msgs = append(msgs, m)
	}
	msgs = append(msgs, []byte("d1:ai1ee"))
	other := b.Other().(*Conn)
	sent, err := a.Other().(*Conn).WriteBatch(msgs, to)
	if err != nil || sent != len(msgs) {
		t.Fatalf("WriteBatch: %d, %v", sent, err)
	}
	buf := make([]byte, maxPacket)
	for i, want := range msgs[:len(msgs)-1] {
		if err := other.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, from, err := other.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("datagram %d: %d bytes, want %d of %#x", i, n, len(want), want[len(want)-1])
		}
		if from.Port() != uint16(a.Port()) {
			t.Fatalf("datagram %d from %v", i, from)
		}
	}
	if got, _ := read(t, b.KRPC()); string(got) != "d1:ai1ee" {
		t.Fatalf("KRPC side got %q", got)
	}
	if d := other.Dropped(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
}

// A datagram read with ReadFromUDPAddrPort costs no allocation.
func TestReadFromUDPAddrPortDoesNotAllocate(t *testing.T) {
	a, b := listen(t), listen(t)
	to := netip.MustParseAddrPort(b.LocalAddr().String())
	src, dst := a.Other().(*Conn), b.Other().(*Conn)
	msg := make([]byte, 1400)
	buf := make([]byte, maxPacket)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := src.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := dst.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 1 {
		t.Fatalf("%.1f allocations per datagram", allocs)
	}
}

// ReadBufferSize tells what the kernel granted (uTP bounds its receive
// window by it): at least the default buffer, since New asks for more.
func TestReadBufferSize(t *testing.T) {
	m := listen(t)
	got := m.Other().(*Conn).ReadBufferSize()
	if got < 100<<10 {
		t.Fatalf("ReadBufferSize = %d", got)
	}
	if k := m.KRPC().(*Conn).ReadBufferSize(); k != got {
		t.Fatalf("the virtual conns disagree: %d, %d", got, k)
	}
}

package udpmux

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recHandler records what a Handler is given. Its calls come from the
// Mux's read loop, one at a time; the test reads under mu.
type recHandler struct {
	mu       sync.Mutex
	packets  [][]byte
	from     []netip.AddrPort
	drained  []int // len(packets) at each Drained
	closed   []error
	got      chan struct{} // signalled after every call
	inFlight bool          // a call is running (to catch overlaps)
	overlap  bool
}

func newRecHandler() *recHandler { return &recHandler{got: make(chan struct{}, 1)} }

func (h *recHandler) enter() {
	h.mu.Lock()
	if h.inFlight {
		h.overlap = true
	}
	h.inFlight = true
}

func (h *recHandler) leave() {
	h.inFlight = false
	h.mu.Unlock()
	select {
	case h.got <- struct{}{}:
	default:
	}
}

func (h *recHandler) HandlePacket(b []byte, from netip.AddrPort) {
	h.enter()
	defer h.leave()
	h.packets = append(h.packets, bytes.Clone(b))
	h.from = append(h.from, from)
}

func (h *recHandler) Drained() {
	h.enter()
	defer h.leave()
	h.drained = append(h.drained, len(h.packets))
}

func (h *recHandler) Closed(err error) {
	h.enter()
	defer h.leave()
	h.closed = append(h.closed, err)
}

// await waits (bounded) until cond holds under h.mu.
func (h *recHandler) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.got:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A handler gets every non-KRPC datagram in order, GSO/GRO runs split
// back into datagrams, each burst ended by Drained; KRPC datagrams still
// go to the KRPC conn's queue, and nothing is queued or dropped on the
// handler's conn.
func TestHandlerTakesTheDatagrams(t *testing.T) {
	a, b := listen(t), listen(t)
	to := netip.MustParseAddrPort(b.LocalAddr().String())
	other := b.Other().(*Conn)
	h := newRecHandler()
	if err := other.SetHandler(h); err != nil {
		t.Fatal(err)
	}
	if err := other.SetHandler(newRecHandler()); !errors.Is(err, ErrHandlerSet) {
		t.Fatalf("a second handler: %v, want ErrHandlerSet", err)
	}
	var msgs [][]byte
	for i := range 150 {
		m := bytes.Repeat([]byte{byte(i)}, 1400)
		m[0] = 0x41
		msgs = append(msgs, m)
	}
	msgs = append(msgs, []byte("d1:ai1ee"))
	if n, err := a.Other().(*Conn).WriteBatch(msgs, to); err != nil || n != len(msgs) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	want := msgs[:150]
	h.await(t, "150 datagrams and a Drained after them", func() bool {
		return len(h.packets) == len(want) && len(h.drained) > 0 && h.drained[len(h.drained)-1] == len(want)
	})
	h.mu.Lock()
	for i, p := range h.packets {
		if !bytes.Equal(p, want[i]) {
			t.Fatalf("datagram %d: %d bytes of %#x, want %#x", i, len(p), p[len(p)-1], want[i][len(want[i])-1])
		}
		if h.from[i].Port() != uint16(a.Port()) {
			t.Fatalf("datagram %d from %v", i, h.from[i])
		}
	}
	prev := 0
	for _, d := range h.drained {
		if d-prev > maxBurstPackets || d <= prev {
			t.Fatalf("bursts %v: one over %d datagrams, or empty", h.drained, maxBurstPackets)
		}
		prev = d
	}
	if h.overlap {
		t.Fatal("handler calls overlapped")
	}
	h.mu.Unlock()
	if got, _ := read(t, b.KRPC()); string(got) != "d1:ai1ee" {
		t.Fatalf("KRPC side got %q", got)
	}
	if other.Buffered() != 0 || other.Dropped() != 0 {
		t.Fatalf("%d queued, %d dropped on the handler's conn", other.Buffered(), other.Dropped())
	}
}

// SetHandler(nil) returns with no call in progress and none to come; the
// conn's queue takes the datagrams again.
func TestRemoveHandlerQueuesAgain(t *testing.T) {
	m := listen(t)
	s := sender(t)
	other := m.Other().(*Conn)
	h := newRecHandler()
	if err := other.SetHandler(h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo([]byte("\x41one"), m.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	h.await(t, "the first datagram", func() bool { return len(h.packets) == 1 })
	if err := other.SetHandler(nil); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	calls := len(h.packets) + len(h.drained) + len(h.closed)
	h.mu.Unlock()
	if _, err := s.WriteTo([]byte("\x41two"), m.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, other); string(got) != "\x41two" {
		t.Fatalf("queued %q", got)
	}
	m.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.packets) + len(h.drained) + len(h.closed); n != calls {
		t.Fatalf("%d calls after SetHandler(nil)", n-calls)
	}
	// a new handler may be set after a removal
	if err := other.SetHandler(newRecHandler()); err != nil {
		t.Fatal(err)
	}
}

// Closed is called once: when the virtual conn is closed, when the Mux
// is, or at once for a handler set on a closed conn; nothing follows it.
func TestHandlerClosed(t *testing.T) {
	t.Run("conn closed", func(t *testing.T) {
		m := listen(t)
		h := newRecHandler()
		other := m.Other().(*Conn)
		if err := other.SetHandler(h); err != nil {
			t.Fatal(err)
		}
		other.Close()
		other.Close()
		m.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.closed) != 1 || !errors.Is(h.closed[0], net.ErrClosed) {
			t.Fatalf("Closed calls: %v", h.closed)
		}
	})
	t.Run("mux closed", func(t *testing.T) {
		m := listen(t)
		h := newRecHandler()
		if err := m.Other().(*Conn).SetHandler(h); err != nil {
			t.Fatal(err)
		}
		m.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.closed) != 1 || !errors.Is(h.closed[0], net.ErrClosed) {
			t.Fatalf("Closed calls: %v", h.closed)
		}
	})
	t.Run("set on a closed conn", func(t *testing.T) {
		m := listen(t)
		m.Close()
		h := newRecHandler()
		if err := m.Other().(*Conn).SetHandler(h); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.closed) != 1 {
			t.Fatalf("Closed calls: %v", h.closed)
		}
	})
}

// WriteBatch's segmented send (its iovecs point at the datagrams) reaches
// IPv4 and IPv6 peers from IPv4, IPv6 and dual-stack sockets, in order.
func TestWriteBatchFamilies(t *testing.T) {
	for _, tc := range []struct{ name, network, from, to string }{
		{"v4 to v4", "udp4", "127.0.0.1:0", "udp4"},
		{"v6 to v6", "udp6", "[::1]:0", "udp6"},
		{"dual-stack to v4", "udp", "[::]:0", "udp4"},
		{"dual-stack to v6", "udp", "[::]:0", "udp6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Listen(tc.network, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			addr := "127.0.0.1:0"
			if tc.to == "udp6" {
				addr = "[::1]:0"
			}
			dst, err := Listen(tc.to, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			to := netip.MustParseAddrPort(dst.LocalAddr().String())
			var msgs [][]byte
			for i := range 100 {
				m := bytes.Repeat([]byte{byte(i)}, 1400)
				m[0] = 0x41
				msgs = append(msgs, m)
			}
			msgs = append(msgs, []byte("\x41short"))
			if n, err := src.Other().(*Conn).WriteBatch(msgs, to); err != nil || n != len(msgs) {
				t.Fatalf("WriteBatch: %d, %v", n, err)
			}
			for i, want := range msgs {
				got, _ := read(t, dst.Other())
				if !bytes.Equal(got, want) {
					t.Fatalf("datagram %d: %d bytes, want %d", i, len(got), len(want))
				}
			}
			if src.noGSO.Load() {
				t.Fatal("segmentation was switched off")
			}
		})
	}
}

// Datagrams queued before the handler was set go to it first, in order,
// when it is set (uTP's socket arrives after the swarm's first packets
// may have), and the queue is left empty.
func TestSetHandlerTakesWhatWasQueued(t *testing.T) {
	m := listen(t)
	s := sender(t)
	other := m.Other().(*Conn)
	for _, p := range []string{"\x41one", "\x41two"} {
		if _, err := s.WriteTo([]byte(p), m.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for other.Buffered() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d queued", other.Buffered())
		}
		time.Sleep(time.Millisecond)
	}
	h := newRecHandler()
	if err := other.SetHandler(h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo([]byte("\x41three"), m.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	h.await(t, "three datagrams", func() bool { return len(h.packets) == 3 })
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, want := range []string{"\x41one", "\x41two", "\x41three"} {
		if string(h.packets[i]) != want {
			t.Fatalf("datagram %d: %q, want %q", i, h.packets[i], want)
		}
	}
	if len(h.drained) == 0 || h.drained[0] != 2 {
		t.Fatalf("Drained after %v datagrams, want the queued 2 first", h.drained)
	}
	if other.Buffered() != 0 {
		t.Fatalf("%d left queued", other.Buffered())
	}
}

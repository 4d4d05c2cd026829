package udpmux

import (
	"bytes"
	"net"
	"runtime"
	"testing"
)

// An idle Mux costs little Go memory: no read buffer while nothing is
// waiting on the socket (the buffers are shared, see spareBufs on Linux)
// and queues of pointers. Before, each Mux kept a 64 KiB read buffer and
// two 32 KiB queues: ≈ 128 KiB.
func TestIdleMuxMemory(t *testing.T) {
	const muxes = 40
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	s := sender(t)
	h0 := heap()
	var ms []*Mux
	for range muxes {
		m, err := Listen("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
		// one datagram through each, so that every read loop has read
		if _, err := s.WriteToUDP([]byte("d1:y1:qe"), m.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		if got, _ := read(t, m.KRPC()); !bytes.Equal(got, []byte("d1:y1:qe")) {
			t.Fatalf("got %q", got)
		}
	}
	perMux := (float64(heap()) - float64(h0)) / muxes / 1024
	for _, m := range ms {
		m.Close()
	}
	t.Logf("%.1f KiB per idle Mux", perMux)
	if perMux > 24 {
		t.Fatalf("%.1f KiB per idle Mux, want ≤ 24", perMux)
	}
}

// Senders' addresses are reported as net.UDPConn reports them, on IPv6
// sockets too.
func TestSenderAddressIPv6(t *testing.T) {
	m, err := Listen("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteToUDP([]byte("hello"), m.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	got, from := read(t, m.Other())
	if string(got) != "hello" || from.String() != s.LocalAddr().String() {
		t.Fatalf("got %q from %v, want hello from %v", got, from, s.LocalAddr())
	}
}

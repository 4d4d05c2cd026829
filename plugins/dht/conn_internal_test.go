package dht

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// TestGuardConnClose: Close ends blocked readers and waits for them,
// later reads and writes fail, concurrent Closes all return, and the
// shared socket stays usable by the next guardConn.
func TestGuardConnClose(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var stats connStats
	gc := newGuardConn(pc, &stats)
	const readers = 3
	ended := make(chan error, readers)
	for range readers {
		go func() {
			_, _, err := gc.ReadFrom(make([]byte, 2048))
			ended <- err
		}()
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gc.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for range readers {
		if err := <-ended; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("reader: %v", err)
		}
	}
	if _, _, err := gc.ReadFrom(make([]byte, 2048)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := gc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	next := newGuardConn(pc, &stats)
	defer next.Close()
	msg := []byte(validMessages[0])
	if _, err := next.WriteTo(msg, pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, _, err := next.ReadFrom(buf)
	if err != nil || string(buf[:n]) != string(msg) {
		t.Fatalf("next reader: %q, %v", buf[:n], err)
	}
	if stats.sent.Load() != 1 || stats.received.Load() != 1 {
		t.Fatalf("stats sent %d received %d", stats.sent.Load(), stats.received.Load())
	}
}

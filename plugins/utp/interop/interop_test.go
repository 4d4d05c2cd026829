// Package interop tests plugins/utp against uTP implementations we did not
// write: libutp (BitTorrent's C++ reference, through the cgo binding
// github.com/anacrolix/go-libutp) and the pure-Go github.com/anacrolix/utp.
// It is a module of its own so that their dependencies (and cgo) stay out
// of the main module; run it with
//
//	(cd plugins/utp/interop && go test -count=1 ./...)
//
// Everything runs on 127.0.0.1.
package interop

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	libutp "github.com/anacrolix/go-libutp"
	anautp "github.com/anacrolix/utp"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// testTimeout bounds every test: a hang is a failure, not a stuck CI run.
const testTimeout = 45 * time.Second

// bulk is the data sent each way.
const bulk = 16 << 20

// other is a uTP implementation that is not ours: a socket on 127.0.0.1
// that accepts and dials.
type other interface {
	addr() string
	accept() (net.Conn, error)
	dial(ctx context.Context, addr string) (net.Conn, error)
	close()
}

type libutpPeer struct{ s *libutp.Socket }

func (p libutpPeer) addr() string              { return p.s.Addr().String() }
func (p libutpPeer) accept() (net.Conn, error) { return p.s.Accept() }
func (p libutpPeer) dial(ctx context.Context, a string) (net.Conn, error) {
	return p.s.DialContext(ctx, "udp4", a)
}
func (p libutpPeer) close() { p.s.Close() }

type anaPeer struct{ s *anautp.Socket }

func (p anaPeer) addr() string              { return p.s.Addr().String() }
func (p anaPeer) accept() (net.Conn, error) { return p.s.Accept() }
func (p anaPeer) dial(ctx context.Context, a string) (net.Conn, error) {
	return p.s.DialContext(ctx, "udp4", a)
}
func (p anaPeer) close() { p.s.Close() }

var impls = []struct {
	name string
	open func(t *testing.T) other
}{
	{"libutp", func(t *testing.T) other {
		s, err := libutp.NewSocket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return libutpPeer{s}
	}},
	{"anacrolix-utp", func(t *testing.T) other {
		s, err := anautp.NewSocket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return anaPeer{s}
	}},
}

// watchPC watches our side of the wire for one event: the peer acking
// our first DATA packet (the empty one that answers the SYN-ACK).
type watchPC struct {
	net.PacketConn
	mu       sync.Mutex
	firstSeq int // seq_nr of our first DATA packet (-1: not sent yet)
	acked    chan struct{}
	once     sync.Once
}

func (p *watchPC) WriteTo(b []byte, to net.Addr) (int, error) {
	if len(b) >= 20 && b[0]>>4 == 0 { // ST_DATA
		p.mu.Lock()
		if p.firstSeq < 0 {
			p.firstSeq = int(binary.BigEndian.Uint16(b[16:]))
		}
		p.mu.Unlock()
	}
	return p.PacketConn.WriteTo(b, to)
}

func (p *watchPC) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := p.PacketConn.ReadFrom(b)
	if err == nil && n >= 20 && b[0]>>4 == 2 { // ST_STATE
		p.mu.Lock()
		seq := p.firstSeq
		p.mu.Unlock()
		if seq >= 0 && !seqBefore(binary.BigEndian.Uint16(b[18:]), uint16(seq)) {
			p.once.Do(func() { close(p.acked) })
		}
	}
	return n, from, err
}

func seqBefore(a, b uint16) bool { return int16(a-b) < 0 }

// ours is our transport on a plain UDP socket on 127.0.0.1.
type ours struct {
	pc *watchPC
	tr *utp.Transport
	ln net.Listener
}

// openOurs is our transport on a plain UDP socket (the kernel's default
// buffer, which a watchPC does not tell: uTP assumes 208 KiB).
func openOurs(t testing.TB, cfg utp.Config) *ours { return openOursOn(t, cfg, 0) }

// bufferedPC is a watchPC that tells its socket's receive buffer, as the
// swarm's udpmux socket does (uTP bounds its receive window by it).
type bufferedPC struct {
	*watchPC
	size int
}

func (p bufferedPC) ReadBufferSize() int { return p.size }

// openOursOn is openOurs on a socket asking for a socketBuffer-byte
// receive buffer, when not 0 (the swarm's socket asks for 4 MiB), and
// telling uTP what it got.
func openOursOn(t testing.TB, cfg utp.Config, socketBuffer int) *ours {
	t.Helper()
	raw, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc := &watchPC{PacketConn: raw, firstSeq: -1, acked: make(chan struct{})}
	var upc net.PacketConn = pc
	if socketBuffer > 0 {
		if err := raw.(*net.UDPConn).SetReadBuffer(socketBuffer); err != nil {
			t.Fatal(err)
		}
		upc = bufferedPC{pc, rcvBuf(t, raw.(*net.UDPConn))}
	}
	tr, err := utp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.UsePacketConn(upc); err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen(context.Background(), "127.0.0.1", pc.LocalAddr().(*net.UDPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	o := &ours{pc: pc, tr: tr, ln: ln}
	t.Cleanup(func() { ln.Close(); tr.Close(); pc.Close() })
	return o
}

func (o *ours) addr() string { return o.pc.LocalAddr().String() }

func (o *ours) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	return o.tr.Dial(ctx, framework.Peer{Host: host, Port: p})
}

// pair connects our transport and impl, dialled by whichever weDial says,
// and returns our end and theirs.
func pair(t *testing.T, ctx context.Context, o *ours, peer other, weDial bool) (mine, theirs net.Conn) {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	if weDial {
		go func() { c, err := peer.accept(); ch <- res{c, err} }()
		c, err := o.dial(ctx, peer.addr())
		if err != nil {
			t.Fatalf("our dial: %v", err)
		}
		mine = c
		// libutp's acceptor cannot send before our first DATA packet
		// arrived (it stays in SYN_RECV until then), and a write it is
		// asked for meanwhile waits for a "writable" event that libutp
		// never raises for that transition (go-libutp's own dialler has
		// the same race: it also answers with an empty write). So the
		// acceptor writes once the peer acked that packet.
		select {
		case <-o.pc.acked:
		case <-ctx.Done():
			t.Fatal("the peer never acked our first DATA packet")
		}
	} else {
		go func() { c, err := o.ln.Accept(); ch <- res{c, err} }()
		c, err := peer.dial(ctx, o.addr())
		if err != nil {
			t.Fatalf("their dial: %v", err)
		}
		theirs = c
		// A BEP 29 acceptor (libutp's as well as ours) knows the
		// connection is real only once the initiator sent a packet after
		// the SYN-ACK: libutp's initiator does so at once, anacrolix/utp's
		// only with its first data. So the dialler speaks first here.
		if _, err := c.Write([]byte{'h'}); err != nil {
			t.Fatalf("their hello: %v", err)
		}
	}
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		if weDial {
			theirs = r.c
		} else {
			mine = r.c
			b := make([]byte, 1)
			mine.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := io.ReadFull(mine, b); err != nil || b[0] != 'h' {
				t.Fatalf("their hello: %q, %v", b, err)
			}
			mine.SetReadDeadline(time.Time{})
		}
	case <-ctx.Done():
		t.Fatalf("accept: %v", ctx.Err())
	}
	t.Cleanup(func() { mine.Close(); theirs.Close() })
	return mine, theirs
}

// watchdog closes the connections when ctx ends, so that a blocked Read or
// Write returns and the test fails instead of hanging.
func watchdog(ctx context.Context, cs ...net.Conn) {
	go func() {
		<-ctx.Done()
		for _, c := range cs {
			c.Close()
		}
	}()
}

// stream returns n bytes of a deterministic pseudo-random stream.
func stream(seed byte, n int) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// writeAll writes b in chunks of various sizes.
func writeAll(w io.Writer, b []byte) error {
	for len(b) > 0 {
		k := min(len(b), 100_000+len(b)%70_000)
		if _, err := w.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

func check(what string, got []byte, want []byte) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: got %d bytes, want %d", what, len(got), len(want))
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		for i := range got {
			if got[i] != want[i] {
				return fmt.Errorf("%s: %d bytes, but they differ from byte %d", what, len(got), i)
			}
		}
	}
	return nil
}

// TestBulkAndHalfClose sends 16 MiB each way at once, both directions of
// dialling, with our side half-closing: we write 16 MiB and CloseWrite; the
// other side reads to io.EOF, writes the second half of its 16 MiB only
// after that EOF (so the reverse direction flows after our FIN) and
// closes; we read its 16 MiB, then io.EOF.
func TestBulkAndHalfClose(t *testing.T) {
	up, down := stream(1, bulk), stream(2, bulk)
	for _, impl := range impls {
		for _, weDial := range []bool{true, false} {
			name := impl.name + "/they-dial"
			if weDial {
				name = impl.name + "/we-dial"
			}
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				peer := impl.open(t)
				defer peer.close()
				o := openOurs(t, utp.Config{})
				mine, theirs := pair(t, ctx, o, peer, weDial)
				watchdog(ctx, mine, theirs)

				errs := make(chan error, 4)
				gotEOF := make(chan struct{})
				go func() { // theirs: read to EOF
					b, err := io.ReadAll(theirs)
					if err == nil {
						err = check("they received", b, up)
					}
					close(gotEOF)
					errs <- err
				}()
				go func() { // theirs: write half, await our FIN, write half, close
					err := writeAll(theirs, down[:bulk/2])
					if err == nil {
						<-gotEOF
						err = writeAll(theirs, down[bulk/2:])
					}
					if cerr := theirs.Close(); err == nil {
						err = cerr
					}
					errs <- err
				}()
				go func() { // ours: write, half-close
					err := writeAll(mine, up)
					if err == nil {
						err = mine.(interface{ CloseWrite() error }).CloseWrite()
					}
					errs <- err
				}()
				go func() { // ours: read everything, then EOF
					b, err := io.ReadAll(mine)
					if err == nil {
						err = check("we received", b, down)
					}
					errs <- err
				}()
				for range 4 {
					if err := <-errs; err != nil {
						t.Error(err)
					}
				}
				if ctx.Err() != nil {
					t.Fatal("timed out")
				}
			})
		}
	}
}

// TestReset: closing our end with unread data resets the connection (as
// TCP does); the other side's reads fail with an error, not a clean EOF.
func TestReset(t *testing.T) {
	for _, impl := range impls {
		for _, weDial := range []bool{true, false} {
			name := impl.name + "/they-dial"
			if weDial {
				name = impl.name + "/we-dial"
			}
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				peer := impl.open(t)
				defer peer.close()
				o := openOurs(t, utp.Config{})
				mine, theirs := pair(t, ctx, o, peer, weDial)
				watchdog(ctx, mine, theirs)

				if _, err := theirs.Write([]byte("unread")); err != nil {
					t.Fatal(err)
				}
				// await the data on our side (unread), then close
				if err := awaitBuffered(ctx, mine); err != nil {
					t.Fatal(err)
				}
				mine.Close()
				_, err := io.ReadAll(theirs)
				if err == nil {
					t.Fatal("their read ended with a clean EOF after our reset")
				}
				if ctx.Err() != nil {
					t.Fatal("timed out")
				}
				t.Logf("their read: %v", err)
			})
		}
	}
}

// TestTheyClose: the other side's Close ends our reads with io.EOF after
// its data, both ways of dialling.
func TestTheyClose(t *testing.T) {
	for _, impl := range impls {
		for _, weDial := range []bool{true, false} {
			name := impl.name + "/they-dial"
			if weDial {
				name = impl.name + "/we-dial"
			}
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				peer := impl.open(t)
				defer peer.close()
				o := openOurs(t, utp.Config{})
				mine, theirs := pair(t, ctx, o, peer, weDial)
				watchdog(ctx, mine, theirs)
				msg := stream(3, 100_000)
				if err := writeAll(theirs, msg); err != nil {
					t.Fatal(err)
				}
				theirs.Close()
				b, err := io.ReadAll(mine)
				if err != nil {
					t.Fatal(err)
				}
				if err := check("we received", b, msg); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestAcceptorSpeaksFirst: we dial, the other side accepts and writes
// first (a server that greets); we read the greeting without having sent
// anything.
func TestAcceptorSpeaksFirst(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			peer := impl.open(t)
			defer peer.close()
			o := openOurs(t, utp.Config{})
			mine, theirs := pair(t, ctx, o, peer, true)
			watchdog(ctx, mine, theirs)
			if _, err := theirs.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 5)
			if _, err := io.ReadFull(mine, b); err != nil {
				t.Fatal(err)
			}
			if string(b) != "hello" {
				t.Fatalf("read %q", b)
			}
		})
	}
}

// awaitBuffered waits until c has data to read, without reading it: our
// Conn answers a zero-length Read with (0, nil) once data is buffered and
// blocks until then (the watchdog ends it when the test times out).
func awaitBuffered(ctx context.Context, c net.Conn) error {
	if _, err := c.Read(nil); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("no data arrived")
	}
	return nil
}

// rcvBuf returns SO_RCVBUF of c.
func rcvBuf(t testing.TB, c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if cerr := rc.Control(func(fd uintptr) {
		n, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	return n
}

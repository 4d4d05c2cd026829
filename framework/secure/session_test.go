package secure

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/jonboulle/clockwork"
)

var topicA = [32]byte{'a', 1}
var topicB = [32]byte{'b', 2}

func TestRoundTrip(t *testing.T) {
	ck, sk := mustKey(t), mustKey(t)
	c, s := mustPair(t, topicA, Config{KeyPair: ck}, Config{KeyPair: sk, Topics: func() [][32]byte { return [][32]byte{topicB, topicA} }}, nil)
	if c.RemotePublicKey() != sk.Public || s.RemotePublicKey() != ck.Public {
		t.Fatal("remote keys wrong")
	}
	if c.Topic() != topicA || s.Topic() != topicA || !c.Initiator() || s.Initiator() {
		t.Fatal("topic or role wrong")
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("server read %q %v", buf, err)
	}
	if _, err := s.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "world" {
		t.Fatalf("client read %q %v", buf, err)
	}
	if c.NetConn() == nil || c.LocalAddr() == nil || c.RemoteAddr() == nil {
		t.Fatal("addresses")
	}
}

func TestNoTopic(t *testing.T) {
	c, s := handshake(t, Config{KeyPair: mustKey(t)}, Config{KeyPair: mustKey(t), AllowNoTopic: true}, nil)
	if c.err != nil || s.err != nil {
		t.Fatalf("no topic, allowed: %v %v", c.err, s.err)
	}
	if s.c.Topic() != ([32]byte{}) {
		t.Fatal("topic not zero")
	}
	c, s = handshake(t, Config{KeyPair: mustKey(t)}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }}, nil)
	if !errors.Is(c.err, ErrTopic) || !errors.Is(s.err, ErrTopic) {
		t.Fatalf("no topic, not allowed: %v %v", c.err, s.err)
	}
}

// stream is a deterministic pseudo-random byte source: a seeded pattern
// of a prime length, so that frame boundaries never line up with it.
func stream(seed uint64, n int) io.Reader {
	r := rand.New(rand.NewPCG(seed, seed))
	pat := make([]byte, 1<<20+7)
	for i := range pat {
		pat[i] = byte(r.Uint32())
	}
	off := 0
	return io.LimitReader(readerFunc(func(b []byte) (int, error) {
		n := 0
		for n < len(b) {
			k := copy(b[n:], pat[off:])
			n += k
			off = (off + k) % len(pat)
		}
		return n, nil
	}), int64(n))
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

func digest(r io.Reader) ([]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return h.Sum(nil), n, err
}

func TestLargeTransferBothWays(t *testing.T) {
	const size = 64 << 20
	c, s := mustPair(t, topicA, Config{}, Config{}, nil)
	want, _, _ := digest(stream(1, size))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, w := range []*Conn{c, s} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := io.CopyBuffer(w, stream(1, size), make([]byte, 200<<10)); err != nil {
				errs <- err
			}
			errs <- w.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			got, n, err := digest(w)
			if err != nil || n != size || !bytes.Equal(got, want) {
				t.Errorf("received %d bytes, err %v, digest match %v", n, err, bytes.Equal(got, want))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	await(t, c.Done(), "client done after both FINs")
	await(t, s.Done(), "server done after both FINs")
	if c.Err() != nil || s.Err() != nil {
		t.Fatalf("graceful end: %v %v", c.Err(), s.Err())
	}
}

func TestCloseWrite(t *testing.T) {
	c, s := mustPair(t, topicA, Config{}, Config{}, nil)
	c.Write([]byte("request"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("second CloseWrite: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q %v", got, err)
	}
	select {
	case <-s.Done():
		t.Fatal("session ended on a half-close")
	default:
	}
	if _, err := s.Write([]byte("response")); err != nil {
		t.Fatalf("write after the peer's FIN: %v", err)
	}
	s.CloseWrite()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "response" {
		t.Fatalf("client read %q %v", got, err)
	}
	await(t, c.Done(), "client done")
	await(t, s.Done(), "server done")
	if c.Err() != nil || s.Err() != nil {
		t.Fatalf("errors after both FINs: %v %v", c.Err(), s.Err())
	}
}

func TestRemoteCloseNoticedWithoutReading(t *testing.T) {
	for _, how := range []string{"close", "reset"} {
		t.Run(how, func(t *testing.T) {
			closed := make(chan error, 1)
			c, s := mustPair(t, topicA, Config{}, Config{OnClose: func(err error) { closed <- err }}, nil)
			c.Write([]byte("unread"))
			if how == "close" {
				c.Close()
			} else {
				c.NetConn().Close()
			}
			var err error
			select {
			case err = <-closed:
			case <-time.After(guard):
				t.Fatal("OnClose never fired")
			}
			await(t, s.Done(), "Done")
			if !errors.Is(err, ErrClosedByPeer) || !errors.Is(s.Err(), ErrClosedByPeer) {
				t.Fatalf("OnClose(%v), Err %v: want ErrClosedByPeer", err, s.Err())
			}
			// The data sent before the close is still readable.
			got, rerr := io.ReadAll(s)
			if string(got) != "unread" {
				t.Fatalf("read %q %v", got, rerr)
			}
			if how == "close" && rerr != nil {
				t.Fatalf("after a close frame Read ends with %v, want io.EOF", rerr)
			}
			if how == "reset" && !errors.Is(rerr, ErrClosedByPeer) {
				t.Fatalf("after a reset Read ends with %v, want ErrClosedByPeer", rerr)
			}
		})
	}
}

func TestLocalClose(t *testing.T) {
	onClose := make(chan error, 2)
	c, _ := mustPair(t, topicA, Config{OnClose: func(err error) { onClose <- err }}, Config{}, nil)
	readErr := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); readErr <- err }()
	c.Close()
	c.Close()
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read after Close: %v", err)
	}
	await(t, c.Done(), "Done")
	if err := <-onClose; err != nil || c.Err() != nil {
		t.Fatalf("OnClose(%v) Err %v after a local Close, want nil", err, c.Err())
	}
	if len(onClose) != 0 {
		t.Fatal("OnClose called twice")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestCloseUnblocksWriter(t *testing.T) {
	stall := make(chan struct{}, 1)
	c, _ := mustPair(t, topicA, Config{}, Config{onStall: func() { signal(stall) }}, nil)
	werr := make(chan error, 1)
	go func() {
		big := make([]byte, 1<<20)
		for {
			if _, err := c.Write(big); err != nil {
				werr <- err
				return
			}
		}
	}()
	// The server never reads: once its buffer is full the writer fills the
	// TCP buffers and blocks.
	await(t, stall, "the server's buffer fills")
	c.Close()
	select {
	case err := <-werr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Close did not unblock Write")
	}
}

func TestBackpressureBoundsTheReceiveBuffer(t *testing.T) {
	stall := make(chan struct{}, 1)
	c, s := mustPair(t, topicA, Config{}, Config{onStall: func() { signal(stall) }}, nil)
	const total = 8 << 20
	wdone := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, stream(2, total))
		wdone <- err
	}()
	await(t, stall, "the reader stops for backpressure")
	s.mu.Lock()
	buffered := s.buffered
	s.mu.Unlock()
	if buffered > recvBufMax+maxBody {
		t.Fatalf("%d bytes buffered, bound %d", buffered, recvBufMax+maxBody)
	}
	got, n, err := digest(io.LimitReader(s, total))
	want, _, _ := digest(stream(2, total))
	if err != nil || n != total || !bytes.Equal(got, want) {
		t.Fatalf("read %d %v", n, err)
	}
	if err := <-wdone; err != nil {
		t.Fatal(err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, s := mustPair(t, topicA, Config{}, Config{}, nil)
	s.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("passing deadline: %v", err)
	}
	s.SetDeadline(time.Time{})
	c.Write([]byte("z"))
	b := make([]byte, 1)
	if _, err := s.Read(b); err != nil || b[0] != 'z' {
		t.Fatalf("after clearing the deadline: %q %v", b, err)
	}
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past deadline: %v", err)
	}
	c.SetWriteDeadline(time.Time{})
	c.Write([]byte("y"))
	if _, err := s.Read(b); err != nil || b[0] != 'y' {
		t.Fatalf("after a write timeout that wrote nothing the session goes on: %q %v", b, err)
	}
}

// waiters awaits n timers on the fake clock.
func waiters(t *testing.T, clk *clockwork.FakeClock, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("awaiting %d timers: %v", n, err)
	}
}

func TestKeepAliveKeepsAnIdleSessionAlive(t *testing.T) {
	clk := clockwork.NewFakeClock()
	kaC, kaS := make(chan struct{}, 1), make(chan struct{}, 1)
	cfg := func(ch chan struct{}) Config {
		return Config{Clock: clk, KeepAlive: 5 * time.Second, Timeout: 15 * time.Second, onFrame: func(typ byte) {
			if typ == frameKeepAlive {
				signal(ch)
			}
		}}
	}
	c, s := mustPair(t, topicA, cfg(kaC), cfg(kaS), nil)
	// the responder's confirmation is a keep-alive frame: take it first,
	// so each one awaited below is a keep-alive the clock made
	await(t, c.Confirmed(), "the confirmation")
	select {
	case <-kaC:
	default:
	}
	waiters(t, clk, 4)
	for range 12 { // a minute of silence from the application
		clk.Advance(5 * time.Second)
		await(t, kaC, "client got a keep-alive")
		await(t, kaS, "server got a keep-alive")
		waiters(t, clk, 4)
	}
	select {
	case <-c.Done():
		t.Fatalf("client ended: %v", c.Err())
	case <-s.Done():
		t.Fatalf("server ended: %v", s.Err())
	default:
	}
	c.Write([]byte("still here"))
	b := make([]byte, 10)
	if _, err := io.ReadFull(s, b); err != nil {
		t.Fatal(err)
	}
}

func TestSilenceEndsWithErrTimeout(t *testing.T) {
	clk := clockwork.NewFakeClock()
	silent := Config{Clock: clockwork.NewFakeClock(), KeepAlive: time.Hour, Timeout: time.Hour} // never advanced
	closed := make(chan error, 1)
	c, _ := mustPair(t, topicA, Config{Clock: clk, KeepAlive: 5 * time.Second, Timeout: 15 * time.Second, OnClose: func(err error) { closed <- err }}, silent, nil)
	// the responder's confirmation is the last frame it sends; received
	// after the clock moved, it would restart the silence
	await(t, c.Confirmed(), "the confirmation")
	waiters(t, clk, 2)
	clk.Advance(10 * time.Second)
	waiters(t, clk, 2)
	select {
	case <-c.Done():
		t.Fatalf("ended early: %v", c.Err())
	default:
	}
	clk.Advance(5 * time.Second)
	await(t, c.Done(), "timeout")
	if err := <-closed; !errors.Is(err, ErrTimeout) || !errors.Is(c.Err(), ErrTimeout) {
		t.Fatalf("OnClose(%v), Err %v: want ErrTimeout", err, c.Err())
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Read after the timeout: %v", err)
	}
}

// flipAt flips one byte of message i in direction dir at offset off from the end.
func flipAt(dir, i, fromEnd int) hook {
	return func(d, j int, msg []byte) ([]byte, bool) {
		if d == dir && j == i {
			msg[len(msg)-fromEnd] ^= 0x40
		}
		return msg, false
	}
}

// Message numbering per direction: client→server 0 msg1, 1 msg3, 2… frames;
// server→client 0 msg2, 1… frames.

func TestTamperedFrameIsNeverDelivered(t *testing.T) {
	for _, off := range []int{1, 10, 20} { // in the tag, in the data, in the type byte
		c, s := mustPair(t, topicA, Config{}, Config{}, flipAt(0, 2, off))
		c.Write([]byte("attack at dawn"))
		n, err := s.Read(make([]byte, 64))
		if n != 0 || !errors.Is(err, ErrTampered) {
			t.Fatalf("flip at -%d: read %d bytes, %v; want ErrTampered and nothing", off, n, err)
		}
		await(t, s.Done(), "Done")
		if !errors.Is(s.Err(), ErrTampered) {
			t.Fatalf("Err %v", s.Err())
		}
	}
}

func TestTamperedLengthField(t *testing.T) {
	c, s := mustPair(t, topicA, Config{}, Config{}, func(d, j int, msg []byte) ([]byte, bool) {
		if d == 0 && j == 2 {
			binary.BigEndian.PutUint16(msg, uint16(len(msg)-3)) // one byte short
		}
		return msg, false
	})
	c.Write([]byte("attack at dawn"))
	if n, err := s.Read(make([]byte, 64)); n != 0 || !errors.Is(err, ErrTampered) {
		t.Fatalf("read %d, %v", n, err)
	}
}

func TestTamperedHandshake(t *testing.T) {
	cases := []struct {
		name           string
		dir, i, offset int
	}{
		{"msg1 ephemeral", 0, 0, 60}, // 2+32+1+1+1+32 = 69 bytes: offset 60 from the end is in e
		{"msg1 version count", 0, 0, 35},
		{"msg1 version", 0, 0, 34},
		{"msg1 capability", 0, 0, 5},
		{"msg2 ephemeral", 1, 0, 120},
		{"msg2 static", 1, 0, 90},
		{"msg2 payload", 1, 0, 20},
		{"msg3 static", 0, 1, 40},
		{"msg3 tag", 0, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ccfg, scfg := Config{KeyPair: mustKey(t), Topic: topicA}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }}
			c, s := handshake(t, ccfg, scfg, flipAt(tc.dir, tc.i, tc.offset))
			if s.err == nil {
				t.Fatalf("server completed a tampered handshake (client %v)", c.err)
			}
			msg3 := tc.dir == 0 && tc.i == 1
			if !msg3 && c.err == nil {
				t.Fatalf("client completed a tampered handshake (server %v)", s.err)
			}
			for _, err := range []error{c.err, s.err} {
				if err != nil && !(errors.Is(err, ErrHandshake) || errors.Is(err, ErrTopic) || errors.Is(err, ErrVersion)) {
					t.Fatalf("error %v wraps no handshake sentinel", err)
				}
			}
			if msg3 {
				// Client returned after sending msg3 and cannot know it
				// was altered; the responder drops the connection, which
				// ends the session.
				if c.err != nil {
					t.Fatalf("client: %v", c.err)
				}
				await(t, c.c.Done(), "client notices the responder left")
				if !errors.Is(c.c.Err(), ErrClosedByPeer) {
					t.Fatalf("client session ended with %v, want ErrClosedByPeer", c.c.Err())
				}
			}
		})
	}
}

func TestReplayedFrame(t *testing.T) {
	c, s := mustPair(t, topicA, Config{}, Config{}, func(d, j int, msg []byte) ([]byte, bool) {
		if d == 0 && j == 2 {
			return append(append([]byte(nil), msg...), msg...), false
		}
		return msg, false
	})
	c.Write([]byte("pay 10"))
	b := make([]byte, 64)
	n, err := s.Read(b)
	if err != nil || string(b[:n]) != "pay 10" {
		t.Fatalf("first copy: %q %v", b[:n], err)
	}
	if n, err := s.Read(b); n != 0 || !errors.Is(err, ErrTampered) {
		t.Fatalf("replayed copy: %d bytes %q, %v; want ErrTampered", n, b[:n], err)
	}
}

func TestTruncatedFrameIsNotACleanEOF(t *testing.T) {
	c, s := mustPair(t, topicA, Config{}, Config{}, func(d, j int, msg []byte) ([]byte, bool) {
		if d == 0 && j == 2 {
			return msg[:len(msg)/2], true
		}
		return msg, false
	})
	// the relay has passed the responder's confirmation on: closing its
	// side with that frame unread would reset the responder's socket
	await(t, c.Confirmed(), "the confirmation")
	c.Write([]byte("the whole message"))
	n, err := s.Read(make([]byte, 64))
	if n != 0 || err == nil || err == io.EOF || !errors.Is(err, ErrTampered) {
		t.Fatalf("truncated: %d bytes, %v; want ErrTampered", n, err)
	}
}

func TestWrongTopic(t *testing.T) {
	c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicB} }}, nil)
	if !errors.Is(c.err, ErrTopic) || !errors.Is(s.err, ErrTopic) {
		t.Fatalf("client %v, server %v: want ErrTopic", c.err, s.err)
	}
}

func TestResponderThatCannotProveTheTopic(t *testing.T) {
	// A responder that accepts every initiator without knowing the topic
	// (it echoes a capability it cannot compute) is refused by the
	// initiator. Build it by hand: answer msg1 with a topic reply whose
	// proof is made with the wrong topic.
	ck := mustKey(t)
	cn, sn := tcpPair(t)
	defer sn.Close()
	srvErr := make(chan error, 1)
	go func() {
		msg1, _, err := readMsg(sn)
		if err != nil {
			srvErr <- err
			return
		}
		cfg := Config{KeyPair: mustKey(t)}
		cfg.fill()
		hs, _ := newHandshakeRandom(&cfg)
		hs.ReadMessage(nil, msg1)
		r := reply{version: 1, kind: kindTopic, proof: capResponder(topicB, hs.ChannelBinding())}
		msg2, _, _, _ := hs.WriteMessage(nil, r.marshal())
		writeMsg(sn, msg2)
		msg3, _, err := readMsg(sn)
		if err != nil {
			srvErr <- err
			return
		}
		p3, _, _, err := hs.ReadMessage(nil, msg3)
		if err != nil {
			srvErr <- err
			return
		}
		if st, _ := parseFinish(p3); st != statusTopic {
			srvErr <- errors.New("msg3 status not 'topic'")
			return
		}
		srvErr <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	_, err := Client(ctx, cn, Config{KeyPair: ck, Topic: topicA})
	if !errors.Is(err, ErrTopic) {
		t.Fatalf("client: %v, want ErrTopic", err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
}

func TestInfohashOnlyAttackerIsNotAccepted(t *testing.T) {
	// What a DHT node near the topic knows.
	ih := sha256.Sum256(append([]byte("dwebswarm:topic:"), topicA[:]...))
	s1 := sha1.Sum(topicA[:])
	var guesses [][32]byte
	var g1, g2, g3 [32]byte
	copy(g1[:], ih[:20])
	copy(g2[:], s1[:])
	g3 = sha256.Sum256(topicA[:])
	guesses = append(guesses, g1, g2, g3, ih)
	for _, g := range guesses {
		c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: g}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }}, nil)
		if c.err == nil || s.err == nil || !errors.Is(s.err, ErrTopic) {
			t.Fatalf("attacker with %x accepted: %v %v", g[:4], c.err, s.err)
		}
	}

	// Replaying an observed msg1 (a valid capability) does not help: the
	// capability binds the initiator's ephemeral key, whose private half
	// the attacker lacks, so msg3 cannot be made.
	var seen []byte
	_, _ = mustPair(t, topicA, Config{}, Config{}, func(d, j int, msg []byte) ([]byte, bool) {
		if d == 0 && j == 0 {
			seen = append([]byte(nil), msg...)
		}
		return msg, false
	})
	an, sn := tcpPair(t)
	defer an.Close()
	ch := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		_, err := Server(ctx, sn, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }})
		ch <- err
	}()
	an.Write(seen)
	if _, _, err := readMsg(an); err != nil {
		t.Fatalf("msg2: %v", err)
	}
	// Without the ephemeral private key the attacker cannot derive the
	// keys msg3 is encrypted under: its best msg3 is a guess.
	fake := make([]byte, 48+16+1)
	writeMsg(an, fake)
	if err := <-ch; !errors.Is(err, ErrHandshake) {
		t.Fatalf("replayed msg1: server %v, want ErrHandshake", err)
	}
}

func newHandshakeRandom(cfg *Config) (*noise.HandshakeState, error) {
	return newHandshake(cfg, false, crand.Reader, new(dh25519))
}

func TestMITM(t *testing.T) {
	// 1. A relay that swaps the initiator's ephemeral key for its own (the
	// only way to read the session) breaks the capability: the responder
	// refuses, nothing is accepted.
	mk := mustKey(t)
	c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }},
		func(d, j int, msg []byte) ([]byte, bool) {
			if d == 0 && j == 0 {
				copy(msg[2:34], mk.Public[:])
			}
			return msg, false
		})
	if c.err == nil || !errors.Is(s.err, ErrTopic) {
		t.Fatalf("ephemeral swap: client %v, server %v", c.err, s.err)
	}

	// 2. A MITM that knows the topic and terminates both sessions with its
	// own key: each side completes, but sees the MITM's key, so a pinned
	// key (Accept) catches it.
	ck, sk, mitm := mustKey(t), mustKey(t), mustKey(t)
	cn, mn1 := tcpPair(t)
	mn2, sn := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var wg sync.WaitGroup
	var m1, m2 *Conn
	var e1, e2, se error
	var srv *Conn
	wg.Add(3)
	go func() {
		defer wg.Done()
		m1, e1 = Server(ctx, mn1, Config{KeyPair: mitm, Topics: func() [][32]byte { return [][32]byte{topicA} }})
	}()
	go func() {
		defer wg.Done()
		m2, e2 = Client(ctx, mn2, Config{KeyPair: mitm, Topic: topicA})
	}()
	go func() {
		defer wg.Done()
		srv, se = Server(ctx, sn, Config{KeyPair: sk, Topics: func() [][32]byte { return [][32]byte{topicA} }})
	}()
	cli, ce := Client(ctx, cn, Config{KeyPair: ck, Topic: topicA})
	wg.Wait()
	for _, x := range []*Conn{m1, m2, srv, cli} {
		if x != nil {
			defer func() { x.Close(); <-x.Done() }()
		}
	}
	if ce != nil || se != nil || e1 != nil || e2 != nil {
		t.Fatalf("terminating MITM: %v %v %v %v", ce, se, e1, e2)
	}
	if cli.RemotePublicKey() != mitm.Public || srv.RemotePublicKey() != mitm.Public {
		t.Fatal("the sides do not see the MITM's key")
	}
	// With the server's key pinned the client refuses the MITM.
	cn, mn1 = tcpPair(t)
	mitmErr := make(chan error, 1)
	go func() {
		_, err := Server(ctx, mn1, Config{KeyPair: mitm, Topics: func() [][32]byte { return [][32]byte{topicA} }})
		mitmErr <- err
	}()
	defer func() {
		if err := <-mitmErr; !errors.Is(err, ErrRefused) {
			t.Errorf("MITM's server side: %v, want ErrRefused", err)
		}
	}()
	_, err := Client(ctx, cn, Config{KeyPair: ck, Topic: topicA, Accept: func(remote PublicKey, _ [32]byte) error {
		if remote != sk.Public {
			return errors.New("not the pinned key")
		}
		return nil
	}})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("pinned client: %v, want ErrRefused", err)
	}
}

func TestVersionMismatch(t *testing.T) {
	c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA, versions: []byte{2}}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }}, nil)
	if !errors.Is(c.err, ErrVersion) || !errors.Is(s.err, ErrVersion) {
		t.Fatalf("client %v, server %v: want ErrVersion", c.err, s.err)
	}
	// Both speak 1 and 2: they agree on 2.
	c2, s2 := mustPair(t, topicA, Config{versions: []byte{1, 2}}, Config{versions: []byte{1, 2}}, nil)
	_, _ = c2, s2
}

func TestDowngradeFails(t *testing.T) {
	// Both speak versions 1 and 2; a relay strips 2 from msg1. The list is
	// in the handshake hash, so msg2 no longer authenticates.
	strip := func(d, j int, msg []byte) ([]byte, bool) {
		if d == 0 && j == 0 {
			body := msg[2:]
			if body[32] != 2 {
				panic("unexpected msg1 layout")
			}
			nb := append(append(append([]byte{}, body[:32]...), 1, 1), body[35:]...)
			out := binary.BigEndian.AppendUint16(nil, uint16(len(nb)))
			return append(out, nb...), false
		}
		return msg, false
	}
	c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA, versions: []byte{1, 2}}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }, versions: []byte{1, 2}}, strip)
	if !errors.Is(c.err, ErrHandshake) || s.err == nil {
		t.Fatalf("downgrade: client %v, server %v", c.err, s.err)
	}
}

func TestAcceptRefusal(t *testing.T) {
	no := func(PublicKey, [32]byte) error { return errors.New("banned") }
	var sawKey PublicKey
	var sawTopic [32]byte
	ck := mustKey(t)
	closed := make(chan error, 1)
	var serverFrames atomic.Int64
	c, s := handshake(t, Config{KeyPair: ck, Topic: topicA, OnClose: func(err error) { closed <- err }},
		Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} },
			onFrame: func(byte) { serverFrames.Add(1) },
			Accept:  func(k PublicKey, tp [32]byte) error { sawKey, sawTopic = k, tp; return no(k, tp) }}, nil)
	// The responder refuses after msg3: Client has already returned, the
	// refusal ends its session.
	if c.err != nil || !errors.Is(s.err, ErrRefused) {
		t.Fatalf("responder refuses: client %v, server %v", c.err, s.err)
	}
	if sawKey != ck.Public || sawTopic != topicA {
		t.Fatal("responder's Accept saw the wrong key or topic")
	}
	c.c.Write([]byte("early data")) // may fail if the refusal is already in: either is fine
	if n, err := c.c.Read(make([]byte, 64)); n != 0 || !errors.Is(err, ErrRefused) {
		t.Fatalf("initiator Read after the refusal: %d bytes, %v; want ErrRefused", n, err)
	}
	await(t, c.c.Done(), "initiator session ends")
	if !errors.Is(c.c.Err(), ErrRefused) {
		t.Fatalf("initiator Err %v, want ErrRefused", c.c.Err())
	}
	if err := <-closed; !errors.Is(err, ErrRefused) {
		t.Fatalf("initiator OnClose(%v), want ErrRefused", err)
	}
	if n := serverFrames.Load(); n != 0 {
		t.Fatalf("the refusing responder opened %d frames of the initiator's", n)
	}

	c, s = handshake(t, Config{KeyPair: ck, Topic: topicA, Accept: no}, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} }}, nil)
	if !errors.Is(c.err, ErrRefused) || !errors.Is(s.err, ErrRefused) {
		t.Fatalf("initiator refuses: client %v, server %v", c.err, s.err)
	}
}

// TestRefusalWhileTheInitiatorStreams: an initiator that writes as fast
// as it can from the moment Client returns still learns of the refusal
// as ErrRefused, not as a reset.
func TestRefusalWhileTheInitiatorStreams(t *testing.T) {
	c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA},
		Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} },
			Accept: func(PublicKey, [32]byte) error { return errors.New("full") }}, nil)
	if c.err != nil || !errors.Is(s.err, ErrRefused) {
		t.Fatalf("client %v, server %v", c.err, s.err)
	}
	buf := make([]byte, 32<<10)
	for i := 0; i < 1000; i++ { // 32 MiB at most: far beyond what TCP buffers hold
		if _, err := c.c.Write(buf); err != nil {
			break
		}
	}
	await(t, c.c.Done(), "initiator session ends")
	if !errors.Is(c.c.Err(), ErrRefused) {
		t.Fatalf("initiator Err %v, want ErrRefused", c.c.Err())
	}
}

// TestClientReturnsBeforeTheResponderAccepts: the initiator's handshake
// takes one round trip: Client returns, and its first data goes out,
// while the responder's Accept is still running; the data reaches the
// responder's application once Accept says yes.
func TestClientReturnsBeforeTheResponderAccepts(t *testing.T) {
	clientDone := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cn, sn := tcpPair(t)
	ch := make(chan result, 1)
	go func() {
		c, err := Server(ctx, sn, Config{KeyPair: mustKey(t), Topics: func() [][32]byte { return [][32]byte{topicA} },
			Accept: func(PublicKey, [32]byte) error {
				select { // holds the handshake until Client has returned
				case <-clientDone:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}})
		ch <- result{c, err}
	}()
	c, err := Client(ctx, cn, Config{KeyPair: mustKey(t), Topic: topicA})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); <-c.Done() }()
	if _, err := c.Write([]byte("first data")); err != nil {
		t.Fatal(err)
	}
	close(clientDone)
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer func() { r.c.Close(); <-r.c.Done() }()
	b := make([]byte, 64)
	n, err := io.ReadAtLeast(r.c, b, len("first data"))
	if err != nil || string(b[:n]) != "first data" {
		t.Fatalf("responder read %q, %v", b[:n], err)
	}
}

func TestHandshakeBoundedByContext(t *testing.T) {
	cn, sn := tcpPair(t)
	defer cn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { _, err := Server(ctx, sn, Config{KeyPair: mustKey(t)}); ch <- err }()
	cancel() // the peer never speaks
	if err := <-ch; !errors.Is(err, ErrHandshake) || !errors.Is(err, context.Canceled) {
		t.Fatalf("silent initiator: %v", err)
	}
}

func TestBadKeyPair(t *testing.T) {
	good := mustKey(t)
	bad := good
	bad.Public[0] ^= 1
	for _, kp := range []KeyPair{{}, bad} {
		cn, sn := tcpPair(t)
		sn.Close()
		if _, err := Client(context.Background(), cn, Config{KeyPair: kp, Topic: topicA}); !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrBadKey) {
			t.Fatalf("key pair %v: %v, want ErrBadKey", kp.Public.Short(), err)
		}
	}
}

// The responder's first frame is its confirmation: the initiator's
// Confirmed closes when Accept agreed, never when it refused (then Done
// closes with ErrRefused), and the responder's is closed once Server
// returns. No data has to flow for it.
func TestConfirmedTellsTheInitiatorTheResponderAccepted(t *testing.T) {
	topics := func() [][32]byte { return [][32]byte{topicA} }
	c, s := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA}, Config{KeyPair: mustKey(t), Topics: topics}, nil)
	if c.err != nil || s.err != nil {
		t.Fatalf("client %v, server %v", c.err, s.err)
	}
	defer c.c.Close()
	defer s.c.Close()
	await(t, s.c.Confirmed(), "the responder's Confirmed")
	await(t, c.c.Confirmed(), "the initiator's Confirmed")

	c, s = handshake(t, Config{KeyPair: mustKey(t), Topic: topicA},
		Config{KeyPair: mustKey(t), Topics: topics, Accept: func(PublicKey, [32]byte) error { return errors.New("no") }}, nil)
	if c.err != nil || !errors.Is(s.err, ErrRefused) {
		t.Fatalf("client %v, server %v", c.err, s.err)
	}
	await(t, c.c.Done(), "the refused initiator's Done")
	select {
	case <-c.c.Confirmed():
		t.Fatal("a refused session was confirmed")
	default:
	}
	if !errors.Is(c.c.Err(), ErrRefused) {
		t.Fatalf("Err %v, want ErrRefused", c.c.Err())
	}
}

package framework_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// Hostile-network tests of sessions (issue 14): a man in the middle that
// flips bytes, one that terminates both sessions with its own key, a
// downgrade to plaintext, handshakes that never finish. Loopback only.

// Wire sizes of a version-1 handshake for a dial with a topic (see
// framework/secure's doc.go): msg1 = 2-byte length, e (32), n, version,
// kind, cap1 (32); msg3 = 2-byte length, s (32+16), status (1+16).
const (
	msg1Len = 2 + 32 + 1 + 1 + 1 + 32
	msg3Len = 2 + 48 + 1 + 16
	// offsets in msg1 of the version count and the version
	msg1VersionCount = 2 + 32
	msg1Version      = 2 + 32 + 1
)

// tamperFunc may change b, the bytes of one direction at stream offset
// off, before the relay forwards them.
type tamperFunc func(off int64, b []byte)

// flipAt returns a tamperFunc that flips the byte at stream offset at.
func flipAt(at int64) tamperFunc {
	return setAt(at, func(b byte) byte { return b ^ 0x01 })
}

// setAt returns a tamperFunc that replaces the byte at stream offset at.
func setAt(at int64, f func(byte) byte) tamperFunc {
	return func(off int64, b []byte) {
		if at >= off && at < off+int64(len(b)) {
			b[at-off] = f(b[at-off])
		}
	}
}

// relay is a man in the middle on 127.0.0.1: each connection it accepts
// is relayed to target, both directions recorded and passed through the
// tamper functions.
type relay struct {
	l            net.Listener
	target       string
	up, down     tamperFunc // client → server, server → client
	mu           sync.Mutex
	sentUp, sent []byte // recorded: client → server, server → client
	wg           sync.WaitGroup
	conns        []net.Conn
	silent       atomic.Bool // drop everything from now on, both ways
}

func newRelay(t testing.TB, target string, up, down tamperFunc) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{l: l, target: target, up: up, down: down}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(r.close)
	return r
}

func (r *relay) port() int { return r.l.Addr().(*net.TCPAddr).Port }

func (r *relay) peer(topic framework.Topic) framework.Peer {
	return framework.Peer{Host: "127.0.0.1", Port: r.port(), Topic: topic, PrivateNet: true}
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		a, err := r.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", r.target)
		if err != nil {
			a.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, a, b)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(a, b, r.up, &r.sentUp)
		go r.pipe(b, a, r.down, &r.sent)
	}
}

func (r *relay) pipe(from, to net.Conn, tamper tamperFunc, rec *[]byte) {
	defer r.wg.Done()
	defer to.Close()
	defer from.Close()
	buf := make([]byte, 32<<10)
	var off int64
	for {
		k, err := from.Read(buf)
		if k > 0 && !r.silent.Load() {
			if tamper != nil {
				tamper(off, buf[:k])
			}
			r.mu.Lock()
			*rec = append(*rec, buf[:k]...)
			r.mu.Unlock()
			off += int64(k)
			if _, werr := to.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// recorded returns what went client → server and server → client.
func (r *relay) recorded() (up, down []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.sentUp), bytes.Clone(r.sent)
}

func (r *relay) close() {
	r.l.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// connect dials p from n, bounded by DefaultWait.
func (n *node) connectTo(t testing.TB, p framework.Peer) (*framework.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), swarmtest.DefaultWait)
	defer cancel()
	return n.Connect(ctx, p)
}

// A relay that flips one byte of the handshake, in any of its three
// messages: no side reports a connection it could use — the responder
// never reports one, the initiator's Connect fails (msg1, msg2) or its
// session ends at once (msg3: the initiator is done after writing msg3
// and only learns from the responder's close) — and both count a failed
// handshake.
func TestMITMFlippingAHandshakeByteIsNeverAccepted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		up, down tamperFunc
		msg3     bool
	}{
		{name: "msg1 ephemeral key", up: flipAt(2 + 5)},
		{name: "msg1 capability", up: flipAt(msg1Len - 3)},
		{name: "msg2", down: flipAt(2 + 40)},
		{name: "msg3", up: flipAt(msg1Len + 20), msg3: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := newNode(t), newNode(t)
			r := newRelay(t, srv.addr(), tc.up, tc.down)
			c, err := cli.connectTo(t, r.peer(topicA))
			if !tc.msg3 {
				if err == nil {
					t.Fatal("Connect succeeded through a relay that flipped a handshake byte")
				}
				if !errors.Is(err, secure.ErrHandshake) && !errors.Is(err, secure.ErrTopic) && !errors.Is(err, secure.ErrClosedByPeer) {
					t.Fatalf("Connect: %v, want a handshake failure", err)
				}
			} else {
				if err != nil {
					// a responder that closes before the initiator returned
					if !errors.Is(err, secure.ErrClosedByPeer) && !errors.Is(err, secure.ErrHandshake) {
						t.Fatalf("Connect: %v", err)
					}
				} else {
					// what the initiator wrote is never delivered; its
					// session ends by itself, without the app reading
					c.Write([]byte("secret"))
					ev := cli.waitDisconn(t, c)
					if ev.Err == nil {
						t.Fatalf("disconnection %+v without an error", ev)
					}
					if _, err := c.Read(make([]byte, 1)); err == nil {
						t.Fatal("Read returned data from a session whose msg3 was altered")
					}
				}
			}
			awaitStats(t, srv, "responder's failed handshake", func(st framework.Stats) bool {
				return st.Handshakes.Failed == 1 && st.Handshakes.InProgress == 0
			})
			if st := srv.Stats(); st.Servers != 0 || st.Handshakes.Completed != 0 {
				t.Fatalf("responder stats %+v", st)
			}
			swarmtest.None[*framework.ConnectionEvent](srv.rec, 20*time.Millisecond)
			if !tc.msg3 {
				if st := cli.Stats(); st.Handshakes.Failed != 1 || st.Handshakes.Completed != 0 || st.Clients != 0 {
					t.Fatalf("initiator stats %+v", st)
				}
			}
		})
	}
}

// A relay that flips one byte of a transport frame after the handshake:
// the receiving session ends with ErrTampered (DisconnectionEvent
// io_error), the frame is never delivered — Read returns the bytes of the
// frames before it, then the error, never the altered frame's — and the
// sender's session ends too.
func TestMITMFlippingAFrameByteEndsTheSessionUndelivered(t *testing.T) {
	srvConns := make(chan *framework.Conn, 1)
	srv := newNode(t, framework.WithConnectionHandler(func(c *framework.Conn) { srvConns <- c }))
	cli := newNode(t)
	first := []byte("first frame")
	// frame 1: 2-byte length, type + body, 16-byte tag; flip frame 2's body
	frame1 := int64(2 + 1 + len(first) + 16)
	r := newRelay(t, srv.addr(), flipAt(msg1Len+msg3Len+frame1+2+3), nil)
	c, err := cli.connectTo(t, r.peer(topicA))
	if err != nil {
		t.Fatal(err)
	}
	s := <-srvConns
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first frame: %q, %v", got, err)
	}
	if _, err := c.Write([]byte("second frame, altered on the way")); err != nil {
		t.Fatal(err)
	}
	ev := srv.waitDisconn(t, s)
	if !errors.Is(ev.Err, secure.ErrTampered) || ev.Reason != framework.ReasonIOError {
		t.Fatalf("disconnection reason %q err %v, want io_error with ErrTampered", ev.Reason, ev.Err)
	}
	// the app's Read: nothing of the altered frame, the error
	k, err := s.Read(make([]byte, 64))
	if k != 0 || !errors.Is(err, secure.ErrTampered) {
		t.Fatalf("Read after the altered frame: %d bytes, %v; want 0 and ErrTampered", k, err)
	}
	// the receiver closed: the sender's session ends as well
	cli.waitDisconn(t, c)
	if st := srv.Stats(); st.Servers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// mitm terminates both sessions with its own key pair: it accepts as a
// responder for topic and dials target for the same topic, then relays
// plaintext between the two sessions. It knows the topic: the capability
// does not stop it, the keys do.
type mitm struct {
	key secure.KeyPair
	l   net.Listener
	wg  sync.WaitGroup
	// errs receives the error of each side's handshake (nil on success)
	errs chan error
}

func newMITM(t testing.TB, target string, topic framework.Topic) *mitm {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{key: keyPair(t), l: l, errs: make(chan error, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.relay(ctx, a, target, topic)
			}()
		}
	}()
	t.Cleanup(func() { cancel(); l.Close(); m.wg.Wait() })
	return m
}

func (m *mitm) relay(ctx context.Context, a net.Conn, target string, topic framework.Topic) {
	defer a.Close()
	ctx, cancel := context.WithTimeout(ctx, swarmtest.DefaultWait)
	defer cancel()
	in, err := secure.Server(ctx, a, secure.Config{KeyPair: m.key, Topics: func() [][32]byte { return [][32]byte{topic} }})
	m.errs <- err
	if err != nil {
		return
	}
	defer in.Close()
	b, err := net.Dial("tcp", target)
	if err != nil {
		m.errs <- err
		return
	}
	defer b.Close()
	out, err := secure.Client(ctx, b, secure.Config{KeyPair: m.key, Topic: topic})
	m.errs <- err
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); out.Close(); done <- struct{}{} }()
	go func() { io.Copy(in, out); in.Close(); done <- struct{}{} }()
	left := 2
	select {
	case <-done:
		left--
	case <-ctx.Done():
	}
	in.Close()
	out.Close()
	for ; left > 0; left-- {
		<-done
	}
}

func (m *mitm) nextErr(t testing.TB) error {
	t.Helper()
	select {
	case err := <-m.errs:
		return err
	case <-time.After(swarmtest.DefaultWait):
		t.Fatal("the MITM ran no handshake")
		return nil
	}
}

func (m *mitm) peer(topic framework.Topic) framework.Peer {
	return framework.Peer{Host: "127.0.0.1", Port: m.l.Addr().(*net.TCPAddr).Port, Topic: topic, PrivateNet: true}
}

// A man in the middle that knows the topic and terminates both sessions
// with its own key pair: each swarm sees the MITM's key, never the real
// peer's, so key pinning (a firewall that allows only the expected key)
// refuses it, on the dialling side and on the accepting side.
func TestMITMWithItsOwnKeyIsSeenAndRefusedByKeyPinning(t *testing.T) {
	t.Run("unpinned, the keys give it away", func(t *testing.T) {
		srvConns := make(chan *framework.Conn, 1)
		srv := newNode(t, framework.WithConnectionHandler(func(c *framework.Conn) { srvConns <- c }))
		cli := newNode(t)
		m := newMITM(t, srv.addr(), topicA)
		c, err := cli.connectTo(t, m.peer(topicA))
		if err != nil {
			t.Fatal(err)
		}
		s := <-srvConns
		if c.RemotePublicKey() != m.key.Public || s.RemotePublicKey() != m.key.Public {
			t.Fatalf("keys seen: dialler %s, acceptor %s; want the MITM's %s on both", c.RemotePublicKey().Short(), s.RemotePublicKey().Short(), m.key.Public.Short())
		}
		if c.RemotePublicKey() == srv.PublicKey() || s.RemotePublicKey() == cli.PublicKey() {
			t.Fatal("a swarm saw the real peer's key through the MITM")
		}
	})
	t.Run("dialler pins the server's key", func(t *testing.T) {
		srv := newNode(t)
		var want secure.PublicKey = srv.PublicKey()
		cli := newNode(t, framework.WithFirewall(func(k secure.PublicKey, _ framework.FirewallInfo) bool { return k == want }))
		m := newMITM(t, srv.addr(), topicA)
		if _, err := cli.connectTo(t, m.peer(topicA)); !errors.Is(err, framework.ErrFirewalled) {
			t.Fatalf("Connect through the MITM: %v, want ErrFirewalled", err)
		}
		if err := m.nextErr(t); !errors.Is(err, secure.ErrRefused) {
			t.Fatalf("MITM's responder handshake: %v, want ErrRefused", err)
		}
		if st := cli.Stats(); st.Handshakes.Refused != 1 || st.Clients != 0 {
			t.Fatalf("dialler stats %+v", st)
		}
		if st := srv.Stats(); st.Handshakes.Completed != 0 {
			t.Fatalf("the MITM reached the server: %+v", st)
		}
	})
	t.Run("acceptor pins the client's key", func(t *testing.T) {
		cli := newNode(t)
		want := cli.PublicKey()
		srv := newNode(t, framework.WithFirewall(func(k secure.PublicKey, _ framework.FirewallInfo) bool { return k == want }))
		m := newMITM(t, srv.addr(), topicA)
		c, err := cli.connectTo(t, m.peer(topicA))
		if err != nil {
			t.Fatalf("dialler to the MITM: %v", err) // it accepts anyone
		}
		if err := m.nextErr(t); err != nil {
			t.Fatalf("MITM's responder: %v", err)
		}
		if err := m.nextErr(t); !errors.Is(err, secure.ErrRefused) {
			// the MITM's Client returns once msg3 is written; the refusal
			// then arrives as a close frame: accept either here
			if err != nil {
				t.Fatalf("MITM's initiator: %v", err)
			}
		}
		awaitStats(t, srv, "refused", func(st framework.Stats) bool { return st.Handshakes.Refused == 1 })
		if st := srv.Stats(); st.Servers != 0 || st.Handshakes.Completed != 0 {
			t.Fatalf("acceptor stats %+v", st)
		}
		swarmtest.None[*framework.ConnectionEvent](srv.rec, 20*time.Millisecond)
		// the dialler's session through the MITM ends: nothing behind it
		cli.waitDisconn(t, c)
	})
}

// An encrypted swarm dialled by a plaintext one: the encrypted side reads
// the application's bytes as a handshake, never reports a connection and
// never sends a byte; its handshake fails (garbage) or times out (a length
// prefix it waits for), and the plaintext side's connection ends.
func TestDowngradePlaintextDiallerToEncryptedSwarm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    string
		timeout bool
	}{
		// "GE" reads as a 18245-byte msg1: the responder waits for it
		{name: "waits for the rest", data: "GET /secret HTTP/1.1\r\n", timeout: true},
		// a 5-byte "msg1" is not a Noise message
		{name: "malformed", data: "\x00\x05hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newNode(t)
			cli := newPlainNode(t)
			r := newRelay(t, srv.addr(), nil, nil)
			c, err := cli.connectTo(t, r.peer(topicA))
			if err != nil {
				t.Fatal(err) // plaintext: a raw socket, nothing to agree on
			}
			if _, err := c.Write([]byte(tc.data)); err != nil {
				t.Fatal(err)
			}
			awaitStats(t, srv, "handshake started", func(st framework.Stats) bool {
				return st.Handshakes.InProgress+int(st.Handshakes.Failed) == 1
			})
			if tc.timeout {
				// the handshake's timer may be armed after InProgress shows
				// it: step the fake clock until it fired (bounded)
				for i := 0; i < 200 && srv.Stats().Handshakes.TimedOut == 0; i++ {
					srv.clk.Advance(framework.DefaultHandshakeTimeout)
					time.Sleep(5 * time.Millisecond)
				}
			}
			st := awaitStats(t, srv, "handshake failure", func(st framework.Stats) bool {
				return st.Handshakes.Failed+st.Handshakes.TimedOut == 1 && st.Handshakes.InProgress == 0
			})
			if tc.timeout != (st.Handshakes.TimedOut == 1) || st.Servers != 0 || st.Handshakes.Completed != 0 {
				t.Fatalf("encrypted side stats %+v", st)
			}
			// the plaintext side's connection ends without a byte back (a
			// plaintext connection is not watched: its Read tells)
			c.SetReadDeadline(time.Now().Add(swarmtest.DefaultWait))
			if k, err := c.Read(make([]byte, 64)); k != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("plaintext side's Read: %d bytes, %v; want the close", k, err)
			}
			c.Close()
			if ev := cli.waitDisconn(t, c); ev.Reason != framework.ReasonClosedByPeer && ev.Reason != framework.ReasonIOError {
				t.Fatalf("plaintext side: %+v", ev)
			}
			if _, down := r.recorded(); len(down) != 0 {
				t.Fatalf("the encrypted side sent %q to a plaintext dialler", down)
			}
			swarmtest.None[*framework.ConnectionEvent](srv.rec, 20*time.Millisecond)
		})
	}
}

// A plaintext swarm dialled by an encrypted one: the encrypted dialler
// sends msg1 only (its ephemeral key and the topic capability: no
// application data, not the topic) and fails its handshake on whatever
// comes back; the plaintext side's application sees only that msg1.
func TestDowngradeEncryptedDiallerToPlaintextSwarm(t *testing.T) {
	secret := []byte("application data that must not travel in clear")
	// the plaintext side echoes what it reads: the dialler takes its own
	// msg1 for msg2
	srv := newPlainNode(t, framework.WithConnectionHandler(func(c *framework.Conn) {
		defer c.Close()
		io.Copy(c, c)
	}))
	cli := newNode(t)
	r := newRelay(t, srv.addr(), nil, nil)
	c, err := cli.connectTo(t, r.peer(topicA))
	if err == nil {
		c.Write(secret)
		t.Fatal("an encrypted swarm connected to a plaintext one")
	}
	if !errors.Is(err, secure.ErrHandshake) {
		t.Fatalf("Connect: %v, want ErrHandshake", err)
	}
	if st := cli.Stats(); st.Handshakes.Failed != 1 || st.Clients != 0 {
		t.Fatalf("dialler stats %+v", st)
	}
	up, _ := r.recorded()
	if len(up) != msg1Len || bytes.Contains(up, topicA[:]) || bytes.Contains(up, secret) {
		t.Fatalf("dialler sent %d bytes (want msg1's %d), topic or data in clear: %x", len(up), msg1Len, up)
	}
}

// A relay that alters the version list in msg1: the responder sees no
// common version (ErrVersion, on both sides, as its reject says) or a
// malformed msg1 (ErrHandshake); no side reports a connection.
func TestDowngradeRelayAlteringTheVersionListFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   tamperFunc
		want error
	}{
		{name: "version 1 replaced", up: setAt(msg1Version, func(byte) byte { return 9 }), want: secure.ErrVersion},
		{name: "no versions", up: setAt(msg1VersionCount, func(byte) byte { return 0 }), want: secure.ErrHandshake},
		{name: "count beyond the payload", up: setAt(msg1VersionCount, func(byte) byte { return 16 }), want: secure.ErrHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := newNode(t), newNode(t)
			r := newRelay(t, srv.addr(), tc.up, nil)
			_, err := cli.connectTo(t, r.peer(topicA))
			if !errors.Is(err, secure.ErrVersion) && !errors.Is(err, secure.ErrHandshake) {
				t.Fatalf("Connect: %v, want ErrVersion or ErrHandshake", err)
			}
			if tc.want == secure.ErrVersion && !errors.Is(err, secure.ErrVersion) {
				t.Fatalf("Connect: %v, want ErrVersion", err)
			}
			awaitStats(t, srv, "responder's failure", func(st framework.Stats) bool {
				return st.Handshakes.Failed == 1 && st.Handshakes.InProgress == 0
			})
			if st := srv.Stats(); st.Servers != 0 || st.Handshakes.Completed != 0 {
				t.Fatalf("responder stats %+v", st)
			}
			swarmtest.None[*framework.ConnectionEvent](srv.rec, 20*time.Millisecond)
		})
	}
}

// partialMsg1 is the start of a plausible msg1: the length of a whole one
// and 20 bytes of it.
func partialMsg1() []byte {
	b := make([]byte, 2+20)
	b[0], b[1] = 0, msg1Len-2
	return b
}

// 1 000 inbound TCP sockets that never finish the handshake — most send
// nothing, some a partial msg1 — from a few attacker addresses: they hold
// no maxPeers slot (maxPeers 4 here), at most the handshake limits wait,
// the rest are closed at once; a legitimate peer connects meanwhile; at
// the handshake timeout (swarm clock) every waiting one is closed; the
// counters say all of it.
func TestHandshakeFloodIsBoundedAndTimesOut(t *testing.T) {
	const (
		attackers = 4 // source IPs 127.0.0.10..13: 4 × 8 handshakes, under the 64 in total
		partial   = 100
	)
	srv := newNode(t, framework.WithMaxPeers(4))
	var socks []net.Conn
	for i := range idleFlood {
		src := "127.0.0." + strconv.Itoa(10+i%attackers)
		c := dialFrom(t, src, srv.addr())
		if i < partial {
			c.Write(partialMsg1()) // may fail: the swarm closed it already
		}
		socks = append(socks, c)
	}
	perIP := framework.DefaultPendingHandshakesPerIP
	st := awaitStats(t, srv, "flood taken in", func(st framework.Stats) bool {
		return st.Handshakes.Overflow+uint64(st.Handshakes.InProgress) == idleFlood
	})
	if st.Handshakes.InProgress != attackers*perIP || st.Servers != 0 || st.Handshakes.Overflow != uint64(idleFlood-attackers*perIP) {
		t.Fatalf("stats %+v: want %d handshakes waiting, no server", st, attackers*perIP)
	}
	if e := swarmtest.Wait(srv.rec, func(*framework.InboundRefusedEvent) bool { return true }); e.Limit != "handshakesPerIP" {
		t.Fatalf("event %+v", e)
	}
	// a legitimate peer meanwhile
	legit := newNode(t)
	c, err := legit.connectTo(t, srv.peer(topicA))
	if err != nil {
		t.Fatalf("legitimate peer during the flood: %v", err)
	}
	awaitStats(t, srv, "legitimate session", func(st framework.Stats) bool { return st.Servers == 1 })
	if st := srv.Stats(); st.Handshakes.InProgress != attackers*perIP || st.Handshakes.Completed != 1 {
		t.Fatalf("stats %+v", st)
	}

	srv.clk.Advance(framework.DefaultHandshakeTimeout)
	st = awaitStats(t, srv, "timeouts", func(st framework.Stats) bool { return st.Handshakes.InProgress == 0 })
	if st.Handshakes.TimedOut != uint64(attackers*perIP) || st.Servers != 1 || st.Handshakes.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// every attacker socket is closed by now, none answered a byte
	for i, s := range socks {
		if !closedAtOnce(s) {
			t.Fatalf("attacker socket %d still open", i)
		}
	}
	// the legitimate session outlived the flood
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatalf("legitimate session after the flood: %v", err)
	}
}

// 8 attacker IPs (127.0.0.10..17) hold 8 handshakes each that never
// finish: together the default cap of 64. An honest peer from another IP
// still gets in: its handshake takes the oldest slot of an IP with the
// most pending, at once, not after the 10 s handshake timeout. When every
// slot is held by a distinct IP, a newcomer evicts the oldest.
func TestManyIPHandshakeFloodCannotLockOutAnHonestPeer(t *testing.T) {
	const attackers = 8
	perIP := framework.DefaultPendingHandshakesPerIP
	srv := newNode(t)
	var socks []net.Conn
	for i := range attackers * perIP {
		socks = append(socks, dialFrom(t, "127.0.0.1"+strconv.Itoa(i%attackers), srv.addr()))
		awaitStats(t, srv, "one more handshake", func(st framework.Stats) bool { return st.Handshakes.InProgress == i+1 })
	}
	if st := srv.Stats(); st.Handshakes.InProgress != framework.DefaultPendingHandshakes || st.Handshakes.Overflow != 0 {
		t.Fatalf("stats %+v: want the cap full", st)
	}
	legit := newNode(t)
	if _, err := legit.connectTo(t, srv.peer(topicA)); err != nil {
		t.Fatalf("honest peer with the cap full: %v", err)
	}
	st := awaitStats(t, srv, "honest session", func(st framework.Stats) bool { return st.Servers == 1 })
	if st.Handshakes.Evicted != 1 || st.Handshakes.InProgress != framework.DefaultPendingHandshakes-1 {
		t.Fatalf("stats %+v: want one eviction", st)
	}
	// the oldest of the busiest IPs (all hold 8): the first socket
	if !closedAtOnce(socks[0]) {
		t.Fatal("the oldest attacker handshake is still open")
	}

	// every slot held by a distinct IP: the oldest goes
	srv2 := newNode(t, framework.WithHandshakeLimits(framework.HandshakeLimits{Pending: 4}))
	var distinct []net.Conn
	for i := range 4 {
		distinct = append(distinct, dialFrom(t, "127.0.0.3"+strconv.Itoa(i), srv2.addr()))
		awaitStats(t, srv2, "one more handshake", func(st framework.Stats) bool { return st.Handshakes.InProgress == i+1 })
	}
	dialFrom(t, "127.0.0.40", srv2.addr())
	if !closedAtOnce(distinct[0]) {
		t.Fatal("the oldest handshake was not evicted")
	}
	if st := awaitStats(t, srv2, "evicted", func(st framework.Stats) bool { return st.Handshakes.Evicted == 1 }); st.Handshakes.InProgress != 4 || st.Handshakes.Overflow != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A peer that falls silent — here a relay that stops forwarding, both
// ways, while both ends stay open — is detected by the keep-alive timeout
// (S4: secure.DefaultTimeout, 15 s, on the swarm's clock): not a moment
// before it, and then the DisconnectionEvent fires with reason timeout
// without the application reading, the slot is freed and the peer
// requeued.
func TestSilentPeerIsDetectedByKeepAliveTimeoutAndRequeued(t *testing.T) {
	srv := newNode(t)
	r := newRelay(t, srv.addr(), nil, nil)
	cli := newNode(t)
	cli.join(t, topicA)
	cli.disc.Emit(r.peer(topicA))
	c := cli.waitConn(t, true)
	srv.waitConn(t, false)
	r.silent.Store(true)

	cli.clk.Advance(secure.DefaultTimeout - time.Millisecond)
	swarmtest.None[*framework.DisconnectionEvent](cli.rec, 20*time.Millisecond)
	if st := cli.Stats(); st.Clients != 1 {
		t.Fatalf("stats %+v: the session ended before the timeout", st)
	}
	cli.clk.Advance(time.Millisecond)
	d := cli.waitDisconn(t, c)
	if d.Reason != framework.ReasonTimeout || !errors.Is(d.Err, secure.ErrTimeout) {
		t.Fatalf("disconnection %s %v, want timeout", d.Reason, d.Err)
	}
	if len(cli.Connections()) != 0 || cli.Stats().Clients != 0 {
		t.Fatalf("the silent session stays: %+v", cli.Stats())
	}
	r.silent.Store(false)
	cli.advance(t, 1, time.Second) // the first requeue step
	if c2 := cli.waitConn(t, true); c2 == c {
		t.Fatal("same conn")
	}
}

package forward

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// recorder keeps every byte an attacker saw, both directions.
type recorder struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

func (r *recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.b.Bytes())
}

// recConn records what is read from it.
type recConn struct {
	net.Conn
	rec *recorder
}

func (c recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.Write(b[:n])
	return n, err
}

// infohashGuesses are the 32-byte values an attacker who knows only the
// topic's DHT infohash can build from it.
func infohashGuesses(topic framework.Topic) [][32]byte {
	ih := dht.Infohash(topic)
	var padded [32]byte
	copy(padded[:], ih[:])
	return [][32]byte{padded, sha256.Sum256(ih[:]), {}}
}

// assertNothingReadable fails if rec holds the forwarding magic, the topic
// or any of the payloads.
func assertNothingReadable(t *testing.T, who string, rec []byte, topic framework.Topic, name string, payloads []string) {
	t.Helper()
	if len(rec) == 0 {
		t.Fatalf("%s saw no bytes at all (the test did not reach it)", who)
	}
	for what, b := range map[string][]byte{
		"the magic DWSF": []byte("DWSF"), "the topic": topic[:8], "the topic's name": []byte(name),
	} {
		if bytes.Contains(rec, b) {
			t.Errorf("%s read %s in %d bytes", who, what, len(rec))
		}
	}
	for _, p := range payloads {
		if bytes.Contains(rec, []byte(p)) {
			t.Errorf("%s read the payload %q", who, p)
		}
	}
}

// TestMITMWithTheInfohashGetsNothing is issue 14's scenario: an attacker
// who knows only the infohash of a connect service's topic announces two
// fake peers for it (added as the DHT's PeerEvents would): one that
// answers as a serving daemon, one that relays to the real one and reads
// both directions. No forwarded connection ends at the attacker (its
// handshake cannot prove the topic), every one reaches the real service,
// and the attacker reads neither the header, nor the topic, nor the data.
func TestMITMWithTheInfohashGetsNothing(t *testing.T) {
	const name = "mitm-service-topic"
	topic := framework.TopicFromString(name)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	// the real serving daemon
	b := newSwarm(t)
	mb := newManager(t, b, Options{})
	if err := mb.Add(ctx, Service{Name: "s", Topic: topic, Serve: echoServer(t)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	bAddr := "127.0.0.1:" + strconv.Itoa(b.Port())

	// impersonator: answers as a responder for every topic it can build
	// from the infohash
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	var impRec recorder
	var impTried, impAccepted atomic.Int64
	imp := tcpServer(t, func(c net.Conn) {
		impTried.Add(1)
		c.SetDeadline(time.Now().Add(wait))
		sess, err := secure.Server(ctx, recConn{c, &impRec}, secure.Config{
			KeyPair: kp, AllowNoTopic: true,
			Topics: func() [][32]byte { return infohashGuesses(topic) },
		})
		if err == nil {
			impAccepted.Add(1)
			io.Copy(&impRec, sess)
			sess.Close()
			return
		}
		if !errors.Is(err, secure.ErrTopic) {
			t.Errorf("impersonator's handshake: %v, want ErrTopic", err)
		}
		io.Copy(&impRec, c)
	})
	// relay: forwards to the real daemon and reads both directions
	var relRec recorder
	var relayed atomic.Int64
	relay := tcpServer(t, func(c net.Conn) {
		up, err := net.DialTimeout("tcp", bAddr, wait)
		if err != nil {
			t.Errorf("relay: %v", err)
			return
		}
		defer up.Close()
		relayed.Add(1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.Copy(c, recConn{up, &relRec})
			c.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(up, recConn{c, &relRec})
		up.(*net.TCPConn).CloseWrite()
		<-done
	})

	// the connecting daemon knows the real peer and the two fake ones
	a := newSwarm(t)
	ma := newManager(t, a, Options{})
	if err := ma.Add(ctx, Service{Name: "s", Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{imp, relay, bAddr} {
		p, err := framework.ParsePeerAddr(addr, topic)
		if err != nil {
			t.Fatal(err)
		}
		ma.AddPeer(p)
	}
	var payloads []string
	for i := range 10 {
		msg := fmt.Sprintf("secret payload number %d", i)
		payloads = append(payloads, msg)
		c := dial(t, ma.Addr("s").String())
		roundTrip(t, c, msg) // reached the echo service behind B
		c.CloseWrite()
		expectClosed(t, c)
	}
	if impTried.Load() == 0 || relayed.Load() == 0 {
		t.Fatalf("attackers not tried: impersonator %d, relay %d", impTried.Load(), relayed.Load())
	}
	if n := impAccepted.Load(); n != 0 {
		t.Fatalf("the impersonator completed %d handshakes", n)
	}
	if s := ma.Metrics("s").Snapshot(); s.Connections != 10 || s.Failed != 0 {
		t.Fatalf("connect service %+v, want 10 connections, none failed", s)
	}
	// the records are complete once both swarms closed their sessions
	a.Close()
	b.Close()
	assertNothingReadable(t, "the impersonator", impRec.Bytes(), topic, name, payloads)
	assertNothingReadable(t, "the relay", relRec.Bytes(), topic, name, payloads)
}

// TestServeServiceNeedsTheTopic: someone who knows only the infohash of a
// serve service's topic cannot reach the service: a session for any topic
// built from the infohash is refused in the handshake, the old clear
// header is not a handshake, and a session that proved no topic (allowed
// by this swarm) gets no service, whatever its header says.
func TestServeServiceNeedsTheTopic(t *testing.T) {
	topic := framework.TopicFromString(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b := newSwarm(t)
	mb := newManager(t, b, Options{HeaderTimeout: time.Second})
	var reached atomic.Int64
	target := tcpServer(t, func(c net.Conn) { reached.Add(1) })
	if err := mb.Add(ctx, Service{Name: "s", Topic: topic, Serve: target}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	bAddr := "127.0.0.1:" + strconv.Itoa(b.Port())
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ih := dht.Infohash(topic)
	var padded framework.Topic
	copy(padded[:], ih[:])

	for i, guess := range infohashGuesses(topic)[:2] {
		c := dial(t, bAddr)
		if _, err := secure.Client(ctx, c, secure.Config{KeyPair: kp, Topic: guess}); !errors.Is(err, secure.ErrTopic) {
			t.Errorf("session for guess %d: %v, want ErrTopic", i, err)
		}
	}
	for name, h := range map[string][]byte{
		"version 1 header":     append([]byte("DWSF1"), padded[:]...),
		"version 2 plain form": AppendHeader(nil, Header{Named: true, Topic: padded}),
	} {
		c := dial(t, bAddr)
		c.Write(h)
		c.CloseWrite()
		got, _ := io.ReadAll(c)
		if bytes.Contains(got, []byte{byte(StatusOK)}) && len(got) == 1 {
			t.Errorf("%s: answered %x", name, got)
		}
	}
	// a session without a topic: no service, and naming the topic's
	// infohash form in the header is a bad header
	for name, h := range map[string]Header{"session form": {}, "named": {Named: true, Topic: padded}} {
		c := dial(t, bAddr)
		sess, err := secure.Client(ctx, c, secure.Config{KeyPair: kp})
		if err != nil {
			t.Fatalf("%s: session without a topic: %v", name, err)
		}
		sess.Write(AppendHeader(nil, h))
		sess.SetReadDeadline(time.Now().Add(wait))
		got, _ := io.ReadAll(sess)
		if bytes.Equal(got, []byte{byte(StatusOK)}) {
			t.Errorf("%s: the service accepted", name)
		}
		sess.Close()
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the service's target was reached %d times", n)
	}
	if s := mb.Metrics("s").Snapshot(); s.Connections != 0 {
		t.Fatalf("metrics %+v", s)
	}
}

// TestPlaintextForwardingNamesTheTopic: with WithPlaintext on both
// daemons the header carries the topic and forwarding works; a plaintext
// connection whose header names no topic is closed unanswered.
func TestPlaintextForwardingNamesTheTopic(t *testing.T) {
	topic := framework.TopicFromString(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	a := newSwarm(t, framework.WithPlaintext())
	ma := newManager(t, a, Options{HeaderTimeout: time.Second})
	if err := ma.Add(ctx, Service{Name: "s", Topic: topic, Serve: echoServer(t)}); err != nil {
		t.Fatal(err)
	}
	b := newSwarm(t, framework.WithPlaintext(), dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(a.Port())))
	mb := newManager(t, b, Options{})
	if err := mb.Add(ctx, Service{Name: "s", Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := mb.WaitPeer(ctx, topic); err != nil {
		t.Fatal(err)
	}
	c := dial(t, mb.Addr("s").String())
	roundTrip(t, c, "plain")

	raw := dial(t, "127.0.0.1:"+strconv.Itoa(a.Port()))
	raw.Write(AppendHeader(nil, Header{}))
	expectClosed(t, raw)
}

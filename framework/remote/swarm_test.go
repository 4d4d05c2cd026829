package remote_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

var topic = framework.TopicFromString("remote plugins")

func newSwarm(t *testing.T, opts ...framework.Option) (*framework.Swarm, *swarmtest.Recorder) {
	t.Helper()
	base := []framework.Option{
		framework.WithListenHost("127.0.0.1"),
		framework.WithPreferredPort(0),
		framework.WithConnectTimeout(5 * time.Second),
		framework.WithLogger(logger(t)),
	}
	sw, err := framework.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	rec := swarmtest.Record(t, sw)
	if err := sw.Start(bg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sw.Close(); err != nil && !errors.Is(err, framework.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return sw, rec
}

func addrOf(sw *framework.Swarm) string { return "127.0.0.1:" + strconv.Itoa(sw.Port()) }

// exchange checks that both ends of a swarm connection carry bytes.
func exchange(t *testing.T, a, b *framework.Conn) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		b.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(b, buf); err != nil {
			errc <- err
			return
		}
		_, err := b.Write([]byte(strings.ToUpper(string(buf))))
		errc <- err
	}()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	a.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "HELLO" {
		t.Fatalf("got %q %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestSwarmEndToEndOverRemoteTransport(t *testing.T) {
	tr := startTransport(t, config(t, "tcp"))
	a, recA := newSwarm(t, framework.WithTransport(tr))
	disc := swarmtest.NewDiscovery()
	b, recB := newSwarm(t, framework.WithTransport(tr), framework.WithDiscovery(disc))
	if err := a.Join(bg, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(bg, topic); err != nil {
		t.Fatal(err)
	}
	disc.Emit(framework.Peer{Host: "127.0.0.1", Port: a.Port(), Topic: topic})
	cb := swarmtest.Wait[*framework.ConnectionEvent](recB, nil).Conn
	ca := swarmtest.Wait[*framework.ConnectionEvent](recA, nil).Conn
	if cb.Type() != "tcp" || !cb.Client() || ca.Client() {
		t.Fatalf("types %q/%q client %v/%v", cb.Type(), ca.Type(), cb.Client(), ca.Client())
	}
	if cb.RemoteAddr().String() != addrOf(a) {
		t.Fatalf("remote addr %s, want %s", cb.RemoteAddr(), addrOf(a))
	}
	exchange(t, cb, ca)
	// the plugin dies: the swarm's connection lives on (fd hand-off)
	kill9(t, tr.PID())
	exchange(t, ca, cb)
}

// recSink records what a discovery reports for one join.
type recSink struct {
	mu      sync.Mutex
	peers   []framework.Peer
	flushed int
	updated int
	ch      chan string
}

func newSink() *recSink { return &recSink{ch: make(chan string, 1024)} }

func (s *recSink) note(what string) {
	select {
	case s.ch <- what:
	default:
	}
}
func (s *recSink) Peer(p framework.Peer) {
	s.mu.Lock()
	s.peers = append(s.peers, p)
	s.mu.Unlock()
	s.note("peer " + p.Addr())
}
func (s *recSink) Flushed() { s.mu.Lock(); s.flushed++; s.mu.Unlock(); s.note("flushed") }
func (s *recSink) Updated() { s.mu.Lock(); s.updated++; s.mu.Unlock(); s.note("updated") }

func (s *recSink) wait(t *testing.T, what string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-s.ch:
			if got == what {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within 5s", what)
		}
	}
}

// quiet asserts the sink hears nothing for d.
func (s *recSink) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-s.ch:
		t.Fatalf("sink still called after leave: %s", got)
	case <-time.After(d):
	}
}

func TestRemoteDiscoveryJoinLeaveRejoinClose(t *testing.T) {
	ev := newEvents()
	cfg := config(t, "static", "127.0.0.1:4001,127.0.0.1:4002")
	cfg.OnEvent = ev.add
	d, err := remote.NewDiscovery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name() != "static" {
		t.Fatalf("name %q", d.Name())
	}
	s1 := newSink()
	if err := d.Join(bg, framework.JoinRequest{Topic: topic, Lookup: true}, s1); err != nil {
		t.Fatal(err)
	}
	s1.wait(t, "peer 127.0.0.1:4001")
	s1.wait(t, "peer 127.0.0.1:4002")
	s1.wait(t, "flushed")
	s1.wait(t, "updated")
	s1.wait(t, "updated") // the 200 ms cycle repeats
	s1.mu.Lock()
	for _, p := range s1.peers {
		if p.Topic != topic {
			t.Fatalf("peer %v with another topic", p)
		}
	}
	s1.mu.Unlock()

	// re-join replaces: the old sink hears nothing more
	s2 := newSink()
	if err := d.Join(bg, framework.JoinRequest{Topic: topic, Lookup: true}, s2); err != nil {
		t.Fatal(err)
	}
	s2.wait(t, "flushed")
	s1.quiet(t, 500*time.Millisecond)

	// a crash: the plugin restarts and the topic is joined again
	kill9(t, d.PID())
	ev.wait(t, remote.EventRestarted, 5*time.Second)
	s2.wait(t, "flushed")

	if err := d.Leave(bg, topic); err != nil {
		t.Fatal(err)
	}
	for len(s2.ch) > 0 {
		<-s2.ch
	}
	s2.quiet(t, 500*time.Millisecond)
	if err := d.Leave(bg, framework.TopicFromString("never joined")); err != nil {
		t.Fatalf("leave of an unknown topic: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Join(bg, framework.JoinRequest{Topic: topic, Lookup: true}, newSink()); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
}

func TestRemoteValidator(t *testing.T) {
	v, err := remote.NewValidator(config(t, "deny", "127.0.0.1:2"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ok := framework.Peer{Host: "127.0.0.1", Port: 3, Topic: topic}
	if err := v.Validate(bg, ok); err != nil {
		t.Fatalf("accepted peer rejected: %v", err)
	}
	err = v.Validate(bg, framework.Peer{Host: "127.0.0.1", Port: 2, Topic: topic})
	wantErr(t, err, framework.ErrRejected, "deny list")
	err = v.Validate(bg, framework.Peer{Host: "127.0.0.1", Port: 1, Topic: topic})
	wantErr(t, err, framework.ErrRejected, "panicked")
	if err := v.Validate(bg, ok); err != nil {
		t.Fatalf("after a panic: %v", err) // the plugin survived its panic
	}
	h, err := remote.NewValidator(func() remote.Config { c := config(t, "hang"); c.CallTimeout = 100 * time.Millisecond; return c }())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Validate(bg, ok)
	wantErr(t, err, framework.ErrRejected)
	if !errors.Is(err, remote.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout too", err)
	}
}

// An out-of-process discovery and validator drive a swarm: peers found by
// the plugin are validated by the other plugin before any dial.
func TestSwarmWithRemoteDiscoveryAndValidator(t *testing.T) {
	a, recA := newSwarm(t, framework.WithTransport(tcp.New()))
	if err := a.Join(bg, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	d, err := remote.NewDiscovery(config(t, "static", addrOf(a)+",127.0.0.1:2,127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := remote.NewValidator(config(t, "deny", "127.0.0.1:2"))
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer v.Close()
	tr := swarmtest.NewTransport(tcp.New())
	b, recB := newSwarm(t, framework.WithTransport(tr), framework.WithDiscovery(d), framework.WithValidators(v))
	if err := b.Join(bg, topic); err != nil {
		t.Fatal(err)
	}
	rejected := map[int]string{}
	var c *framework.Conn
	deadline := time.After(10 * time.Second)
	for len(rejected) < 2 || c == nil {
		select {
		case <-deadline:
			t.Fatalf("rejected %v, connection %v", rejected, c)
		default:
		}
		switch e := recB.Next().(type) {
		case *framework.PeerRejectedEvent:
			rejected[e.Peer.Port] = e.Reason.Error()
		case *framework.ConnectionEvent:
			c = e.Conn
		}
	}
	if !strings.Contains(rejected[2], "deny list") || !strings.Contains(rejected[1], "panicked") {
		t.Fatalf("rejections %v", rejected)
	}
	if c.RemoteAddr().String() != addrOf(a) {
		t.Fatalf("connected to %s", c.RemoteAddr())
	}
	swarmtest.Wait[*framework.ConnectionEvent](recA, nil)
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := b.Flushed(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for _, addr := range tr.Dials() {
		if addr != addrOf(a) {
			t.Fatalf("a rejected peer was dialled: %s", addr)
		}
	}
}

func TestGarbageRepliesAreErrorsNotPanics(t *testing.T) {
	tr := startTransport(t, config(t, "badreply"))
	for port := 1; port <= 6; port++ {
		_, err := tr.Dial(bg, framework.Peer{Host: "127.0.0.1", Port: port})
		wantErr(t, err, remote.ErrBadReply)
	}
	_, err := tr.Listen(bg, "127.0.0.1", 0)
	wantErr(t, err, remote.ErrBadReply)

	d, err := remote.NewDiscovery(config(t, "badreply"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := newSink()
	if err := d.Join(bg, framework.JoinRequest{Topic: topic, Lookup: true}, s); err != nil {
		t.Fatal(err)
	}
	s.wait(t, "flushed")
	s.mu.Lock()
	if len(s.peers) != 1 || s.peers[0].Port != 5001 {
		t.Fatalf("peers %v, want only the valid one", s.peers)
	}
	s.mu.Unlock()

	v, err := remote.NewValidator(config(t, "badreply"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	err = v.Validate(bg, framework.Peer{Host: "127.0.0.1", Port: 9, Topic: topic})
	wantErr(t, err, framework.ErrRejected)
}

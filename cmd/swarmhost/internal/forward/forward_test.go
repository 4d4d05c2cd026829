package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// httpServer answers "<method> <path> <body>".
func httpServer(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// httpClient is a client without keep-alive whose idle connections are
// closed at the end of the test.
func httpClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: wait}
}

func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}

func TestHTTPThroughForward(t *testing.T) {
	srv := httpServer(t)
	p := newPair(t, Options{})
	topic := framework.TopicFromString(t.Name())
	addr := p.service(t, "web", topic, srv.Listener.Addr().String())

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: wait}
	resp, err := client.Post("http://"+addr+"/hello", "text/plain", strings.NewReader("world"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST /hello world" {
		t.Fatalf("response %q", b)
	}
	// a second request reuses the forwarded connection (keep-alive)
	if got, err := get(client, "http://"+addr+"/again"); err != nil || got != "GET /again " {
		t.Fatalf("second request: %q, %v", got, err)
	}
	for _, m := range []*Manager{p.ma, p.mb} {
		s := m.Metrics("web").Snapshot()
		if s.Connections != 1 || s.Active != 1 || s.Failed != 0 || s.BytesIn == 0 || s.BytesOut == 0 {
			t.Errorf("metrics %+v", s)
		}
	}
	// what one side sends the other receives (counted after each write:
	// compare once everything ended)
	tr.CloseIdleConnections()
	p.mb.Close()
	p.ma.Close()
	a, b2 := p.ma.Metrics("web").Snapshot(), p.mb.Metrics("web").Snapshot()
	if a.BytesIn != b2.BytesOut || a.BytesOut != b2.BytesIn {
		t.Errorf("bytes disagree: serve %+v connect %+v", a, b2)
	}
}

func TestHundredConcurrentRequests(t *testing.T) {
	srv := httpServer(t)
	p := newPair(t, Options{})
	topic := framework.TopicFromString(t.Name())
	addr := p.service(t, "web", topic, srv.Listener.Addr().String())
	gone := watchDisconnections(t, p.a)

	const n = 100
	tr := &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: wait}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("GET /%d ", i)
			got, err := get(client, fmt.Sprintf("http://%s/%d", addr, i))
			if err == nil && got != want {
				err = fmt.Errorf("got %q, want %q", got, want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// every forwarded connection was its own swarm connection, and every
	// one of them closed
	gone.wait(t, n)
	p.ma.Close()
	p.mb.Close()
	for _, m := range []*Manager{p.ma, p.mb} {
		s := m.Metrics("web").Snapshot()
		if s.Connections != n || s.Active != 0 || s.Failed != 0 {
			t.Errorf("metrics %+v", s)
		}
	}
	if st := p.a.Stats(); st.Servers != 0 {
		t.Errorf("serving swarm still has %d connections", st.Servers)
	}
}

func TestHalfCloseBothWays(t *testing.T) {
	// the target reads to EOF, then answers and closes
	target := tcpServer(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		io.WriteString(c, strings.ToUpper(string(b)))
	})
	p := newPair(t, Options{})
	addr := p.service(t, "up", framework.TopicFromString(t.Name()), target)
	gone := watchDisconnections(t, p.a)

	c := dial(t, addr)
	io.WriteString(c, "half closed")
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HALF CLOSED" {
		t.Fatalf("got %q, %v", got, err)
	}
	gone.wait(t, 1) // the swarm connection ended too
}

func TestRemoveLeavesOtherServicesConnections(t *testing.T) {
	p := newPair(t, Options{})
	t1, t2 := framework.TopicFromString(t.Name()+"1"), framework.TopicFromString(t.Name()+"2")
	addr1 := p.service(t, "one", t1, echoServer(t))
	addr2 := p.service(t, "two", t2, echoServer(t))
	c1, c2 := dial(t, addr1), dial(t, addr2)
	roundTrip(t, c1, "one")
	roundTrip(t, c2, "two")

	// removing "one" on the serving side closes its connection only
	if err := p.ma.Remove("one"); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c1)
	roundTrip(t, c2, "still two")
	// a new connection to "one" is refused by the serving side
	expectClosed(t, dial(t, addr1))
	if err := p.ma.Remove("one"); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("second Remove: %v", err)
	}

	// re-adding it works again; its counters went on
	if err := p.ma.Add(context.Background(), Service{Name: "one", Topic: t1, Serve: echoServer(t)}); err != nil {
		t.Fatal(err)
	}
	c3 := dial(t, addr1)
	roundTrip(t, c3, "one again")
	if s := p.ma.Metrics("one").Snapshot(); s.Connections != 2 || s.Active != 1 {
		t.Errorf("serve metrics of one: %+v", s)
	}

	// removing "one" on the connecting side stops its listener and closes
	// its connection; "two" goes on
	if err := p.mb.Remove("one"); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c3)
	if c, err := net.DialTimeout("tcp", addr1, wait); err == nil {
		c.Close()
		t.Fatal("listener of a removed service still accepts")
	}
	roundTrip(t, c2, "two at the end")
}

func TestServeTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	logs := &logBuf{}
	p := newPair(t, Options{Logger: testLogger(logs)})
	addr := p.service(t, "down", framework.TopicFromString(t.Name()), down)
	gone := watchDisconnections(t, p.a)

	c := dial(t, addr)
	io.WriteString(c, "anyone?")
	expectClosed(t, c)
	gone.wait(t, 1)
	if s := p.ma.Metrics("down").Snapshot(); s.Failed != 1 || s.Connections != 0 {
		t.Errorf("serve metrics %+v", s)
	}
	if s := p.mb.Metrics("down").Snapshot(); s.Failed != 1 || s.Connections != 0 {
		t.Errorf("connect metrics %+v", s)
	}
	if !strings.Contains(logs.String(), "target unreachable") {
		t.Errorf("no log line about the target:\n%s", logs)
	}
}

func TestTargetClosesFirst(t *testing.T) {
	target := tcpServer(t, func(c net.Conn) { io.WriteString(c, "bye") })
	p := newPair(t, Options{})
	addr := p.service(t, "bye", framework.TopicFromString(t.Name()), target)
	gone := watchDisconnections(t, p.a)
	c := dial(t, addr)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("got %q, %v", got, err)
	}
	c.Close()
	gone.wait(t, 1)
}

func TestBadHeaderIsClosed(t *testing.T) {
	p := newPair(t, Options{HeaderTimeout: 300 * time.Millisecond})
	topic := framework.TopicFromString(t.Name())
	if err := p.ma.Add(context.Background(), Service{Name: "s", Topic: topic, Serve: echoServer(t)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.a.Status(topic); !ok { // accept sessions for topic
		if err := p.a.Join(t.Context(), topic, framework.Announce(true), framework.Lookup(false)); err != nil {
			t.Fatal(err)
		}
	}
	rawFor := func(topic framework.Topic) *framework.Conn {
		peer, err := framework.ParsePeerAddr(fmt.Sprintf("127.0.0.1:%d", p.a.Port()), topic)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c, err := p.b.Connect(ctx, peer) // not the manager's: left alone by mb
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	raw := func() *framework.Conn { return rawFor(topic) }
	for name, send := range map[string]string{
		"http":     "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"version":  "DWSF9" + string(topic[:]),
		"v1":       "DWSF1" + string(topic[:]),
		"kind":     "DWSF2\x07",
		"silent":   "",
		"cut":      "DWSF2",
		"halfdone": "DWS",
		// a session's header must not name a topic: not even its own
		"named": string(AppendHeader(nil, Header{Named: true, Topic: topic})),
	} {
		t.Run(name, func(t *testing.T) {
			c := raw()
			start := time.Now()
			io.WriteString(c, send)
			expectClosed(t, c)
			if name == "http" && time.Since(start) > 250*time.Millisecond {
				t.Errorf("a wrong magic waited %v for the deadline", time.Since(start))
			}
		})
	}
	// a session for a topic A accepts but serves nothing under, and one
	// that proved no topic (A allows those): no service
	nobody := framework.TopicFromString(t.Name() + "/nobody")
	if err := p.a.Join(t.Context(), nobody, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	for name, topic := range map[string]framework.Topic{"unknown topic": nobody, "no topic": {}} {
		t.Run(name, func(t *testing.T) {
			c := rawFor(topic)
			c.Write(AppendHeader(nil, Header{}))
			c.SetReadDeadline(time.Now().Add(wait))
			got, err := io.ReadAll(c)
			if err != nil || len(got) != 1 || Status(got[0]) != StatusNoService {
				t.Fatalf("got %x, %v; want status 01 then EOF", got, err)
			}
		})
	}
	if s := p.ma.Metrics("s").Snapshot(); s.Connections != 0 {
		t.Errorf("metrics %+v", s)
	}
}

func TestNoPeerKnown(t *testing.T) {
	logs := &logBuf{}
	sw := newSwarm(t)
	m := newManager(t, sw, Options{Logger: testLogger(logs), PeerWait: -1})
	if err := m.Add(context.Background(), Service{Name: "lonely", Topic: framework.TopicFromString(t.Name()), Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, m.Addr("lonely").String())
	expectClosed(t, c)
	if s := m.Metrics("lonely").Snapshot(); s.Failed != 1 {
		t.Errorf("metrics %+v", s)
	}
	if !strings.Contains(logs.String(), "no peer known for the topic") {
		t.Errorf("no log line about the missing peer:\n%s", logs)
	}
	if _, err := m.Dial(context.Background(), framework.TopicFromString(t.Name())); !errors.Is(err, ErrNoPeer) {
		t.Errorf("Dial: %v", err)
	}
}

func TestPeerWaitEndsWithNoPeer(t *testing.T) {
	sw := newSwarm(t)
	m := newManager(t, sw, Options{PeerWait: 50 * time.Millisecond})
	if _, err := m.Dial(context.Background(), framework.TopicFromString(t.Name())); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("Dial: %v", err)
	}
}

func TestDeadPeerIsSkipped(t *testing.T) {
	p := newPair(t, Options{})
	topic := framework.TopicFromString(t.Name())
	addr := p.service(t, "s", topic, echoServer(t))
	// a dead peer known first: each connection still reaches the live one
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	dead, _ := framework.ParsePeerAddr(deadAddr, topic)
	p.mb.AddPeer(dead)
	for i := range 4 {
		roundTrip(t, dial(t, addr), fmt.Sprint("try ", i))
	}
	if s := p.mb.Metrics("s").Snapshot(); s.Connections != 4 || s.Failed != 0 {
		t.Errorf("metrics %+v", s)
	}
}

func TestAddValidates(t *testing.T) {
	sw := newSwarm(t)
	m := newManager(t, sw, Options{})
	topic := framework.TopicFromString(t.Name())
	ctx := context.Background()
	if err := m.Add(ctx, Service{Name: "a", Topic: topic, Serve: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		s    Service
		want error
	}{
		"no name":      {Service{Topic: topic, Serve: "127.0.0.1:1"}, ErrInvalidService},
		"both":         {Service{Name: "x", Serve: "127.0.0.1:1", Connect: "127.0.0.1:0"}, ErrInvalidService},
		"neither":      {Service{Name: "x"}, ErrInvalidService},
		"bad addr":     {Service{Name: "x", Serve: "localhost"}, ErrInvalidService},
		"serve port 0": {Service{Name: "x", Serve: "127.0.0.1:0"}, ErrInvalidService},
		"no host":      {Service{Name: "x", Serve: ":80"}, ErrInvalidService},
		"bad port":     {Service{Name: "x", Connect: "127.0.0.1:http2"}, ErrInvalidService},
		"same name":    {Service{Name: "a", Topic: framework.TopicFromString("other"), Serve: "127.0.0.1:2"}, ErrDuplicate},
		"same topic":   {Service{Name: "b", Topic: topic, Serve: "127.0.0.1:2"}, ErrDuplicate},
		"port in use":  {Service{Name: "b", Connect: "127.0.0.1:" + fmt.Sprint(sw.Port())}, nil},
	} {
		err := m.Add(ctx, tc.s)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	// a connect service may share a serve service's topic
	if err := m.Add(ctx, Service{Name: "c", Topic: topic, Connect: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if got := m.Services(); len(got) != 2 || got[0].Name != "a" || got[1].Name != "c" {
		t.Fatalf("Services = %+v", got)
	}
	m.Close()
	if err := m.Add(ctx, Service{Name: "d", Topic: topic, Connect: "127.0.0.1:0"}); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := m.Close(); !errors.Is(err, framework.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	p := newPair(t, Options{})
	addr := p.service(t, "s", framework.TopicFromString(t.Name()), echoServer(t))
	c := dial(t, addr)
	roundTrip(t, c, "x")
	// a half-sent header is pending on A when the manager closes
	peer, _ := framework.ParsePeerAddr(fmt.Sprintf("127.0.0.1:%d", p.a.Port()), framework.Topic{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	events := p.a.Subscribe()
	defer events.Close()
	raw, err := p.b.Connect(ctx, peer)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "DWS")
	// A registered the connection (else it would arrive after Close)
	for registered := false; !registered; {
		select {
		case ev := <-events.C():
			e, ok := ev.(*framework.ConnectionEvent)
			registered = ok && !e.Conn.Client()
		case <-time.After(wait):
			t.Fatal("no inbound connection on A")
		}
	}
	gone := watchDisconnections(t, p.a)
	if err := p.ma.Close(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	expectClosed(t, raw)
	gone.wait(t, 2)
	if err := p.mb.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, wait); err == nil {
		c.Close()
		t.Fatal("listener open after Close")
	}
}

func TestResetClosesBothSides(t *testing.T) {
	ended := make(chan error, 1)
	target := tcpServer(t, func(c net.Conn) {
		_, err := io.Copy(io.Discard, c)
		ended <- err
	})
	p := newPair(t, Options{})
	addr := p.service(t, "rst", framework.TopicFromString(t.Name()), target)
	gone := watchDisconnections(t, p.a)
	c := dial(t, addr)
	io.WriteString(c, "data")
	c.SetLinger(0)
	c.Close() // RST: an error on the connecting side
	select {
	case <-ended:
	case <-time.After(wait):
		t.Fatal("target connection still open")
	}
	gone.wait(t, 1)

	// and the other way round: the target resets
	target2 := tcpServer(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 4))
		c.(*net.TCPConn).SetLinger(0)
	})
	addr2 := p.service(t, "rst2", framework.TopicFromString(t.Name()+"2"), target2)
	c2 := dial(t, addr2)
	io.WriteString(c2, "data")
	expectClosed(t, c2)
	gone.wait(t, 1)
}

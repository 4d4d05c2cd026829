package dwebswarm_test

import (
	"context"
	"fmt"
	"io"
	"strconv"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// uTP: WithTransport replaces the default TCP transport. Give uTP alone
// (as here), or both — framework.WithTransport(tcp.New(), u) — to dial TCP
// first and uTP to peers with a referrer (found through the DHT). Each swarm
// needs its own transport: utp.New opens nothing, the swarm hands the
// transport its UDP socket when it starts.
func Example_utp() {
	ctx := context.Background()
	topic := framework.TopicFromString("utp topic")
	serverUTP, err := utp.New(utp.Config{}) // the zero Config: every default
	if err != nil {
		panic(err)
	}
	server, err := dwebswarm.New(ctx,
		framework.WithTransport(serverUTP),
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithConnectionHandler(func(c *framework.Conn) {
			defer c.Close()
			io.Copy(c, c) // echo
		}))
	if err != nil {
		panic(err)
	}
	defer server.Close()
	if err := server.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		panic(err)
	}
	clientUTP, err := utp.New(utp.Config{})
	if err != nil {
		panic(err)
	}
	client, err := dwebswarm.New(ctx,
		framework.WithTransport(clientUTP),
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(server.Port())))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	events := client.Subscribe() // before Join: events flow from now on
	defer events.Close()
	if err := client.Join(ctx, topic); err != nil {
		panic(err)
	}
	for ev := range events.C() {
		if e, ok := ev.(*framework.ConnectionEvent); ok {
			io.WriteString(e.Conn, "over utp")
			e.Conn.CloseWrite()
			b, _ := io.ReadAll(e.Conn)
			fmt.Println(e.Conn.Type(), string(b))
			e.Conn.Close()
			break
		}
	}
	// Output:
	// utp over utp
}

// In plaintext mode (raw sockets, no keys), two peers that both announce
// and look up get two connections, one dialled by each. Each side sends
// its id on every connection and calls Deduplicate: both sides drop the
// same one, so one connection is left. (Encrypted sessions, the default,
// are deduplicated by key automatically.)
func Example_deduplicate() {
	ctx := context.Background()
	topic := framework.TopicFromString("dedup topic")
	type side struct {
		name   string
		id     []byte
		sw     *framework.Swarm
		events *framework.Subscription
	}
	start := func(name string, peers ...string) *side {
		s := &side{name: name, id: []byte(name)}
		opts := []framework.Option{framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithPlaintext()}
		if len(peers) > 0 {
			opts = append(opts, dwebswarm.StaticPeers(peers...))
		}
		sw, err := dwebswarm.New(ctx, opts...)
		if err != nil {
			panic(err)
		}
		s.sw = sw
		s.events = sw.Subscribe()
		return s
	}
	a := start("a")
	defer a.sw.Close()
	defer a.events.Close()
	b := start("b", "127.0.0.1:"+strconv.Itoa(a.sw.Port()))
	defer b.sw.Close()
	defer b.events.Close()
	// kept handshakes on want connections of s, each in its own goroutine,
	// and returns how many connections are left once Deduplicate ran on
	// each (the first call pairs, the second closes one of the two)
	kept := func(s *side, want int) int {
		results := make(chan bool, want)
		for range want {
			var c *framework.Conn
			for c == nil {
				if e, ok := (<-s.events.C()).(*framework.ConnectionEvent); ok {
					c = e.Conn
				}
			}
			go func() {
				c.Write(s.id)
				remote := make([]byte, 1)
				if _, err := io.ReadFull(c, remote); err != nil {
					panic(err)
				}
				c.Deduplicate(s.id, remote)
				results <- true
			}()
		}
		for range want {
			<-results
		}
		return len(s.sw.Connections())
	}
	for _, s := range []*side{a, b} {
		if err := s.sw.Join(ctx, topic, framework.Announce(true), framework.Lookup(true)); err != nil {
			panic(err)
		}
	}
	// b finds a through its static list; a dials b by hand (as its own
	// discovery would)
	if _, err := a.sw.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: b.sw.Port(), Topic: topic}); err != nil {
		panic(err)
	}
	ka := make(chan int)
	go func() { ka <- kept(a, 2) }()
	kb := kept(b, 2)
	fmt.Println("a keeps", <-ka, "of 2; b keeps", kb, "of 2")
	// Output:
	// a keeps 1 of 2; b keeps 1 of 2
}

// Reaching a peer by its public key: the server announces a topic, which
// makes it findable under its peer topic (framework.PeerTopic of its key;
// framework.WithFindable). The client knows only the key and a list of
// addresses to try (here a static list; with the DHT or mDNS it needs no
// address at all): JoinPeer keeps a session to the swarm that proves that
// key, and redials it when it drops.
func Example_joinPeer() {
	ctx := context.Background()
	server, err := dwebswarm.New(ctx,
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithConnectionHandler(func(c *framework.Conn) {
			defer c.Close()
			fmt.Fprintf(c, "hello, found by key: %v", c.FoundByKey())
		}))
	if err != nil {
		panic(err)
	}
	defer server.Close()
	if err := server.Join(ctx, framework.TopicFromString("my service"), framework.Announce(true), framework.Lookup(false)); err != nil {
		panic(err)
	}
	serverKey := server.PublicKey() // what the server's operator hands out

	client, err := dwebswarm.New(ctx,
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(server.Port())))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	events := client.Subscribe()
	defer events.Close()
	if err := client.JoinPeer(ctx, serverKey); err != nil {
		panic(err)
	}
	for ev := range events.C() {
		if e, ok := ev.(*framework.ConnectionEvent); ok {
			fmt.Println("connected to the key asked for:", e.Conn.RemotePublicKey() == serverKey, "found by key:", e.Conn.FoundByKey())
			reply, _ := io.ReadAll(e.Conn)
			fmt.Println(string(reply))
			e.Conn.Close()
			break
		}
	}
	// Output:
	// connected to the key asked for: true found by key: true
	// hello, found by key: true
}

package dwebswarm_test

import (
	"context"
	"fmt"
	"io"
	"strconv"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Two swarms on loopback: one announces a topic, the other finds it through a
// static peer list and they exchange a message. With the DHT or mDNS the
// code is the same, only the discovery option changes.
func Example() {
	ctx := context.Background()
	topic := framework.TopicFromString("my-dwebswarm-topic")

	// The announcing side answers every connection.
	server, err := dwebswarm.New(ctx,
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithConnectionHandler(func(c *framework.Conn) {
			defer c.Close()
			msg, _ := io.ReadAll(c)
			fmt.Fprintf(c, "hello, %s", msg)
		}))
	if err != nil {
		panic(err)
	}
	defer server.Close()
	if err := server.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		panic(err)
	}

	// The looking-up side gets the connection as an event.
	client, err := dwebswarm.New(ctx,
		framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(server.Port())))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	events := client.Subscribe()
	defer events.Close()
	if err := client.Join(ctx, topic); err != nil {
		panic(err)
	}
	for ev := range events.C() {
		if e, ok := ev.(*framework.ConnectionEvent); ok {
			fmt.Println("connected over", e.Conn.Type(), "client:", e.Conn.Client())
			io.WriteString(e.Conn, "client")
			e.Conn.CloseWrite()
			reply, _ := io.ReadAll(e.Conn)
			fmt.Println(string(reply))
			break
		}
	}
	// Output:
	// connected over tcp client: true
	// hello, client
}

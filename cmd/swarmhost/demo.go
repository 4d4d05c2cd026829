package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// demoNodes is the size of the demo's local DHT testnet.
const demoNodes = 20

const demoHelp = `usage: swarmhost demo

Starts a local DHT testnet and two swarms on loopback (127.0.0.1), lets the
swarms find each other through the DHT and exchange a message, prints what
happened with timings and exits. Each swarm has a new key pair (printed);
--plaintext runs them without encryption. Needs no flags and no internet; sends
nothing beyond loopback.

flags:
`

func runDemo(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, demoHelp); fs.PrintDefaults() }
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `DURATION`")
	plaintext := fs.Bool("plaintext", false, "no encryption: raw sockets, as hyperswarm v2")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := demo(ctx, s.out, *plaintext); err != nil {
		fmt.Fprintln(s.err, "swarmhost demo:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, out io.Writer, plaintext bool) error {
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%8.3f ms] %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
	tn, err := dhttest.Start(ctx, demoNodes, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	defer tn.Close()
	step("local DHT testnet: %d nodes on loopback, bootstrap %s", demoNodes, tn.Addr())

	topic := framework.TopicFromString("dwebswarm demo")
	step("topic %s (sha256 of %q), DHT infohash %x", topic.Short(), "dwebswarm demo", dht.Infohash(topic))

	// each swarm has its own ephemeral key pair (two swarms with one key
	// would be one peer)
	keys := map[string]secure.KeyPair{}
	for _, name := range []string{"alice", "bob"} {
		kp, err := secure.GenerateKeyPair()
		if err != nil {
			return err
		}
		keys[name] = kp
		step("%s's public key %s (ephemeral, %s)", name, kp.Public, mode(plaintext))
	}
	swarm := func(name string, extra ...framework.Option) (*framework.Swarm, error) {
		extra = append(extra, identityOptions(keys[name], plaintext)...)
		opts := append([]framework.Option{
			framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
			dwebswarm.DHT(tn.Config(dht.Config{Ephemeral: dht.Bool(true)})),
		}, extra...)
		return dwebswarm.New(ctx, opts...)
	}
	alice, err := swarm("alice", framework.WithConnectionHandler(func(c *framework.Conn) {
		defer c.Close()
		msg, err := io.ReadAll(c)
		if err == nil {
			fmt.Fprintf(c, "alice got %q", msg)
		}
	}))
	if err != nil {
		return err
	}
	defer alice.Close()
	if err := alice.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		return err
	}
	if err := alice.Flushed(ctx, topic); err != nil {
		return err
	}
	step("alice (127.0.0.1:%d) announced the topic on the DHT", alice.Port())

	bob, err := swarm("bob")
	if err != nil {
		return err
	}
	defer bob.Close()
	events := bob.Subscribe()
	defer events.Close()
	joined := time.Now()
	if err := bob.Join(ctx, topic); err != nil {
		return err
	}
	step("bob (127.0.0.1:%d) joins the topic (lookup)", bob.Port())
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no connection: %w", ctx.Err())
		case ev := <-events.C():
			switch e := ev.(type) {
			case *framework.PeerEvent:
				via := ""
				if r := e.Peer.Referrer; r != nil {
					via = fmt.Sprintf(" (referrer %s:%d)", r.Host, r.Port)
				}
				step("bob found peer %s through the DHT%s after %v", e.Peer.Addr(), via, time.Since(joined).Round(time.Microsecond))
			case *framework.ConnectionEvent:
				step("bob connected to alice over %s, %v after joining", e.Conn.Type(), time.Since(joined).Round(time.Microsecond))
				sent := time.Now()
				if _, err := io.WriteString(e.Conn, "hello from bob"); err != nil {
					return err
				}
				if err := e.Conn.CloseWrite(); err != nil {
					return err
				}
				reply, err := io.ReadAll(e.Conn)
				if err != nil {
					return err
				}
				step("bob read %q (round trip %v)", reply, time.Since(sent).Round(time.Microsecond))
				e.Conn.Close()
				step("done; closing both swarms and the testnet")
				return nil
			}
		}
	}
}

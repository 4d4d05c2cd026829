package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
)

const demoHelp = `usage: swarmhost demo

Starts two swarms on loopback (127.0.0.1), lets them find each other on a
topic and exchange a message, prints what happened with timings and exits.
Needs no flags and no internet; sends nothing beyond loopback.

flags:
`

func runDemo(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, demoHelp); fs.PrintDefaults() }
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `DURATION`")
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
	if err := demo(ctx, s.out); err != nil {
		fmt.Fprintln(s.err, "swarmhost demo:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, out io.Writer) error {
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%8.3f ms] %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
	topic := framework.TopicFromString("dwebswarm demo")
	step("topic %s (sha256 of %q)", topic.Short(), "dwebswarm demo")

	loopback := []framework.Option{framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0)}
	alice, err := dwebswarm.New(ctx, append(loopback, framework.WithConnectionHandler(func(c *framework.Conn) {
		defer c.Close()
		msg, err := io.ReadAll(c)
		if err == nil {
			fmt.Fprintf(c, "alice got %q", msg)
		}
	}))...)
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
	step("alice listens on 127.0.0.1:%d and announces the topic", alice.Port())

	bob, err := dwebswarm.New(ctx, append(loopback, dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(alice.Port())))...)
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
	step("bob joins the topic (lookup) with static discovery")
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no connection: %w", ctx.Err())
		case ev := <-events.C():
			switch e := ev.(type) {
			case *framework.PeerEvent:
				step("bob found peer %s", e.Peer.Addr())
			case *framework.ConnectionEvent:
				step("bob connected to alice over %s in %v after joining", e.Conn.Type(), time.Since(joined).Round(time.Microsecond))
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
				step("done: %d connection(s) made, closing both swarms", 1)
				return nil
			}
		}
	}
}

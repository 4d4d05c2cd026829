package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

const bootstrapHelp = `usage: swarmhost bootstrap --listen HOST:PORT [--peer HOST:PORT ...]

Runs a long-lived full DHT node: what someone runs on a server to seed a
private network. Prints its address on the first stdout line and runs until
interrupted. Give other bootstrap nodes with --peer.

example:
  swarmhost bootstrap --listen 0.0.0.0:6881

flags:
`

func runBootstrap(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, bootstrapHelp); fs.PrintDefaults() }
	listen := fs.String("listen", "", "`HOST:PORT` to listen on (UDP)")
	var peers []string
	fs.Func("peer", "another bootstrap node's `HOST:PORT` (repeatable)", func(v string) error { peers = append(peers, v); return nil })
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *listen == "" || fs.NArg() != 0 {
		fmt.Fprintln(s.err, "swarmhost bootstrap: --listen HOST:PORT is required")
		fs.Usage()
		return 2
	}
	if _, _, err := splitHostPort(*listen); err != nil {
		fmt.Fprintln(s.err, "swarmhost bootstrap: --listen:", err)
		return 2
	}
	node, err := dht.ListenBootstrap(*listen, peers)
	if err != nil {
		return exitCode(ctx, "bootstrap", err, s)
	}
	defer node.Close()
	fmt.Fprintln(s.out, node.Addr().String())
	fmt.Fprintf(s.err, "bootstrap node %x listening on %s; Ctrl-C to stop\n", node.ID(), node.Addr())
	<-ctx.Done()
	return 0
}

const testnetHelp = `usage: swarmhost testnet [--nodes N] [--listen 127.0.0.1:PORT]

Runs N full DHT nodes in one process on loopback with filled routing
tables: a local DHT for tests and demos, no internet needed. Prints the
bootstrap address on the first stdout line and runs until interrupted.

example:
  swarmhost testnet --nodes 50 --listen 127.0.0.1:6881 &
  swarmhost pipe --discovery dht --bootstrap 127.0.0.1:6881 --announce my-topic

flags:
`

func runTestnet(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("testnet", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, testnetHelp); fs.PrintDefaults() }
	nodes := fs.Int("nodes", 20, "number of DHT nodes (1-2000)")
	listen := fs.String("listen", "127.0.0.1:0", "loopback `HOST:PORT` of the first node (the bootstrap address)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 || *nodes < 1 || *nodes > 2000 {
		fmt.Fprintln(s.err, "swarmhost testnet: --nodes must be 1-2000")
		return 2
	}
	host, port, err := splitHostPort(*listen)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost testnet: --listen:", err)
		return 2
	}
	if ip := net.ParseIP(host); ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		fmt.Fprintf(s.err, "swarmhost testnet: --listen %s: a testnet runs on 127.0.0.1 only\n", *listen)
		return 2
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tn, err := dhttest.Start(startCtx, *nodes, dhttest.Options{Port: port, Maintain: true})
	if err != nil {
		return exitCode(ctx, "testnet", err, s)
	}
	defer tn.Close()
	fmt.Fprintln(s.out, tn.Addr())
	fmt.Fprintf(s.err, "testnet of %d nodes on loopback; bootstrap %s; Ctrl-C to stop\n", *nodes, tn.Addr())
	<-ctx.Done()
	return 0
}

// splitHostPort parses HOST:PORT with a port in 0-65535.
func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 0-65535", p)
	}
	return host, port, nil
}

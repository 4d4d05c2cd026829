// Package builtin has conformance factories for the built-in plugins, so
// that `swarmhost conformance builtin:NAME` and the repository's own tests
// run the same checks on them. The plugin registry (cmd/swarmhost/internal/hostconfig)
// names each built-in's factory.
//
// Environments are loopback only: the DHT environment is a fresh dhttest
// testnet per check (never the public routers), and the static environment
// is a shared list playing the operator's configuration file.
package builtin

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// TCP is the factory of the "tcp" transport with its defaults (see
// [Transport]).
func TCP() conformance.TransportFactory {
	return Transport(func() (framework.Transport, error) { return tcp.New(), nil })
}

// StaticInterval is how often static instances of the conformance
// environment report their list again (a cycle).
const StaticInterval = 100 * time.Millisecond

// Static is the factory of the "static" discovery.
//
// The static discovery cannot announce: its peers are configured out of
// band. Its environment is therefore a shared list that plays the operator's
// configuration file: it implements [conformance.Publisher], so the suite
// adds an address (127.0.0.1:port, for that topic only) when an instance
// announces and removes it when it leaves, and every instance the
// environment makes afterwards is configured with the list as it stands —
// as a node that loads its configuration at start. Every rule of the
// discovery contract is then checked against static's real behaviour
// (reporting, isolation, flush and update cycles, Leave, Close, re-join, and
// not reporting its own listed address) except the act of announcing,
// which the list stands for.
func Static() conformance.DiscoveryFactory {
	return func(t *conformance.T) (conformance.DiscoveryEnv, error) { return &staticEnv{}, nil }
}

// StaticList is the operator's peer list of a static environment: the
// suite publishes an announcing instance's address on it, and instances
// created later are configured with the list as it stands. Out-of-process
// static environments embed it too.
type StaticList struct {
	mu  sync.Mutex
	pub map[string]map[framework.Topic]bool // addr → topics
}

// Publish implements conformance.Publisher.
func (e *StaticList) Publish(topic framework.Topic, port int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pub == nil {
		e.pub = map[string]map[framework.Topic]bool{}
	}
	addr := net.JoinHostPort(conformance.LoopbackHost, strconv.Itoa(port))
	if e.pub[addr] == nil {
		e.pub[addr] = map[framework.Topic]bool{}
	}
	e.pub[addr][topic] = true
}

// Unpublish implements conformance.Publisher.
func (e *StaticList) Unpublish(topic framework.Topic, port int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	addr := net.JoinHostPort(conformance.LoopbackHost, strconv.Itoa(port))
	delete(e.pub[addr], topic)
	if len(e.pub[addr]) == 0 {
		delete(e.pub, addr)
	}
}

// Entries returns the list as static entries, sorted by address.
func (e *StaticList) Entries() []static.Entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []static.Entry
	for addr, topics := range e.pub {
		ent := static.Entry{Addr: addr}
		for t := range topics {
			ent.Topics = append(ent.Topics, t)
		}
		out = append(out, ent)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

type staticEnv struct{ StaticList }

func (e *staticEnv) New(*conformance.T) (framework.Discovery, error) {
	return static.New(static.Config{Interval: StaticInterval, Peers: e.Entries()})
}

// DHTNodes is the size of the testnet each DHT check runs on.
const DHTNodes = 8

// DHT is the factory of the "dht" discovery: each check gets a fresh
// loopback testnet of DHTNodes full nodes, and each instance is a
// standalone dht.ListenNode on its own loopback-only socket, bootstrapped from the
// testnet (default, adaptive read-only mode; default round timing).
func DHT() conformance.DiscoveryFactory {
	return func(t *conformance.T) (conformance.DiscoveryEnv, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		tn, err := dhttest.Start(ctx, DHTNodes, dhttest.Options{})
		if err != nil {
			return nil, fmt.Errorf("dht testnet: %w", err)
		}
		t.Cleanup(func() { tn.Close() })
		return &dhtEnv{tn: tn}, nil
	}
}

type dhtEnv struct{ tn *dhttest.Testnet }

func (e *dhtEnv) New(*conformance.T) (framework.Discovery, error) {
	return e.tn.ListenNode(dht.Config{})
}

// KnownFailures lists, per built-in plugin name, the checks it is known to
// fail and why. Each is a real contract violation awaiting a fix; the
// repository's tests assert that exactly these fail.
func KnownFailures(name string) map[string]string {
	return nil
}

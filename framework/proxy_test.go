package framework_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// proxyDiscovery has the methods of the optional discovery interfaces, like
// an out-of-process adapter, but forwards only those in forwards.
type proxyDiscovery struct {
	*swarmtest.Discovery
	forwards map[reflect.Type]bool
	conn     framework.Connectivity
	refresh  int
}

func (p *proxyDiscovery) Forwards(t reflect.Type) bool                    { return p.forwards[t] }
func (p *proxyDiscovery) Connectivity() framework.Connectivity            { return p.conn }
func (p *proxyDiscovery) HolePunch(context.Context, framework.Peer) error { return nil }
func (p *proxyDiscovery) Refresh(context.Context, framework.Topic) error {
	p.refresh++
	return nil
}

// TestProxyOptionalInterfaces: the engine uses an optional interface of a
// framework.Proxy only when the proxy forwards it. A proxy whose plugin
// reports no connectivity does not hide the discovery that does, and one
// whose plugin cannot refresh is not asked to.
func TestProxyOptionalInterfaces(t *testing.T) {
	silent := &proxyDiscovery{Discovery: swarmtest.NewDiscovery(), conn: framework.Connectivity{PublicAddrs: []string{"192.0.2.1:1"}}}
	silent.NameValue = "silent"
	reporter := &proxyDiscovery{Discovery: swarmtest.NewDiscovery(), conn: framework.Connectivity{Bootstrapped: true, PublicAddrs: []string{"198.51.100.7:4000"}},
		forwards: map[reflect.Type]bool{reflect.TypeFor[framework.ConnectivityReporter](): true, reflect.TypeFor[framework.Refresher](): true}}
	reporter.NameValue = "reporter"
	n := newNode(t, framework.WithDiscovery(silent, reporter))
	c := n.Connectivity()
	if !c.Bootstrapped || len(c.PublicAddrs) != 1 || c.PublicAddrs[0] != "198.51.100.7:4000" {
		t.Fatalf("connectivity %+v, want the forwarding reporter's", c)
	}
	n.join(t, topicA)
	if err := n.Refresh(context.Background(), topicA); err != nil {
		t.Fatal(err)
	}
	if silent.refresh != 0 || reporter.refresh != 1 {
		t.Fatalf("refreshes: silent %d (want 0), reporter %d (want 1)", silent.refresh, reporter.refresh)
	}
	if _, ok := framework.As[framework.HolePuncher](silent); ok {
		t.Fatal("As found HolePuncher on a proxy that does not forward it")
	}
	if _, ok := framework.As[framework.HolePuncher](swarmtest.NewDiscovery()); ok {
		t.Fatal("As found HolePuncher on a discovery without it")
	}
}

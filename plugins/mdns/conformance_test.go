//go:build linux

package mdns

import (
	"sync"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

// labEnv creates each discovery instance on the next host of a LAN built in
// network namespaces: the suite's instances find each other over real
// multicast without touching this machine's interfaces.
type labEnv struct {
	hosts []*netlab.Host
	mu    sync.Mutex
	next  int
}

func (e *labEnv) New(t *conformance.T) (framework.Discovery, error) {
	e.mu.Lock()
	h := e.hosts[e.next%len(e.hosts)]
	e.next++
	e.mu.Unlock()
	d, err := startIn(h, fast()) // in h's namespace: the suite's Start is then a no-op
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.Close() })
	return d, nil
}

// The mdns discovery passes the discovery conformance suite.
func TestConformance(t *testing.T) {
	lab := netlab.New(t)
	_, hs := lab.LAN(3)
	conformance.RunDiscoverySuite(t, func(*conformance.T) (conformance.DiscoveryEnv, error) {
		return &labEnv{hosts: hs}, nil
	})
}

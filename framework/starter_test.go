package framework_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// steps records, in order, what the plugins of one swarm were asked to do.
type steps struct {
	mu   sync.Mutex
	list []string
}

func (s *steps) add(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, step)
}

func (s *steps) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

// startingTransport is TCP that records its Start and Listen calls.
type startingTransport struct {
	*swarmtest.Transport
	steps *steps
}

func (t *startingTransport) Start(context.Context) error {
	t.steps.add("start transport")
	return nil
}

func (t *startingTransport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	t.steps.add("listen")
	return t.Transport.Listen(ctx, host, port)
}

// startingDiscovery records its Start calls; it fails the first fail of them.
type startingDiscovery struct {
	*swarmtest.Discovery
	steps *steps
	fail  int
}

func (d *startingDiscovery) Start(context.Context) error {
	d.steps.add("start " + d.Name())
	if d.fail > 0 {
		d.fail--
		return errors.New("no socket today")
	}
	return nil
}

// startingValidator accepts everyone and records its Start calls.
type startingValidator struct{ steps *steps }

func (v *startingValidator) Name() string { return "v" }
func (v *startingValidator) Validate(context.Context, framework.Peer) error {
	return nil
}
func (v *startingValidator) Start(context.Context) error {
	v.steps.add("start validator")
	return nil
}

func newStarting(st *steps, fail int) (*startingTransport, *startingDiscovery, *startingDiscovery, *startingValidator) {
	a := &startingDiscovery{Discovery: swarmtest.NewDiscovery(), steps: st}
	a.NameValue = "a"
	b := &startingDiscovery{Discovery: swarmtest.NewDiscovery(), steps: st, fail: fail}
	b.NameValue = "b"
	return &startingTransport{Transport: swarmtest.NewTransport(tcp.New()), steps: st}, a, b, &startingValidator{steps: st}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStartStartsStartersBeforeListening: Swarm.Start calls Start on every
// plugin that is a framework.Starter (transports, discoveries, validators),
// once, before any listener is bound; framework.New calls none of them.
func TestStartStartsStartersBeforeListening(t *testing.T) {
	st := &steps{}
	tr, a, b, v := newStarting(st, 0)
	sw, err := framework.New(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithTransport(tr), framework.WithDiscovery(b, a), framework.WithValidators(v))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if got := st.get(); len(got) != 0 {
		t.Fatalf("framework.New started plugins: %v", got)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start transport", "start a", "start b", "start validator", "listen"}
	if got := st.get(); !equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
}

// TestStartFailingStarter: a Starter's error fails Swarm.Start, wrapped
// with the plugin's name, before anything listens; a second Swarm.Start
// starts only the plugins not started yet.
func TestStartFailingStarter(t *testing.T) {
	st := &steps{}
	tr, a, b, v := newStarting(st, 1)
	sw, err := framework.New(framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithTransport(tr), framework.WithDiscovery(a, b), framework.WithValidators(v))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	err = sw.Start(context.Background())
	if err == nil || err.Error() != "b: start: no socket today" {
		t.Fatalf("Start: %v, want b's error", err)
	}
	if want := []string{"start transport", "start a", "start b"}; !equal(st.get(), want) {
		t.Fatalf("steps %v, want %v", st.get(), want)
	}
	if sw.Port() != 0 {
		t.Fatalf("listening on %d after a failed Start", sw.Port())
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start transport", "start a", "start b", "start b", "start validator", "listen"}
	if got := st.get(); !equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
}

// proxyStarter has Start, like an adapter of a plugin in another process,
// but as a framework.Proxy forwards only what its map says.
type proxyStarter struct {
	*proxyDiscovery
	steps *steps
}

func (p proxyStarter) Start(context.Context) error {
	p.steps.add("start proxy")
	return nil
}

// TestStarterBehindProxyNotForwarded: the engine looks for Starter through
// framework.As, so a proxy that does not forward it is not started.
func TestStarterBehindProxyNotForwarded(t *testing.T) {
	st := &steps{}
	p := proxyStarter{proxyDiscovery: &proxyDiscovery{Discovery: swarmtest.NewDiscovery()}, steps: st}
	p.NameValue = "proxy"
	if _, ok := framework.As[framework.Starter](p); ok {
		t.Fatal("As found Starter on a proxy that does not forward it")
	}
	n := newNode(t, framework.WithDiscovery(p))
	n.join(t, topicA)
	if got := st.get(); len(got) != 0 {
		t.Fatalf("steps %v: a proxy that does not forward Starter was started", got)
	}
}

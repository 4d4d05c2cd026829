package conformance_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/internal/broken"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failing runs checks with the package's own runner (as swarmhost does)
// and returns the names of the failed ones, logging every result.
func failing(t *testing.T, checks []conformance.Check) []string {
	t.Helper()
	var failed []string
	for _, r := range conformance.RunAll(context.Background(), checks, 30*time.Second) {
		t.Log(r.String())
		if !r.Passed {
			failed = append(failed, r.Name)
			if r.Reason == "" {
				t.Errorf("%s failed without a reason", r.Name)
			}
		}
	}
	slices.Sort(failed)
	return failed
}

func assertExactly(t *testing.T, got, want []string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("failed checks:\n  got  %v\n  want %v", got, want)
	}
}

func TestBrokenTransportFailsExactlyItsBugs(t *testing.T) {
	assertExactly(t, failing(t, conformance.TransportChecks(broken.NewTransport)), broken.TransportFailures)
}

func TestBrokenValidatorFailsExactlyItsBugs(t *testing.T) {
	assertExactly(t, failing(t, conformance.ValidatorChecks(broken.NewValidator)), broken.ValidatorFailures)
}

func TestBrokenDiscoveryFailsExactlyItsBugs(t *testing.T) {
	assertExactly(t, failing(t, conformance.DiscoveryChecks(broken.NewDiscovery)), broken.DiscoveryFailures)
}

func TestCheckNamesAreUniqueIdentifiers(t *testing.T) {
	seen := map[string]bool{}
	for _, list := range [][]conformance.Check{
		conformance.TransportChecks(nil), conformance.DiscoveryChecks(nil), conformance.ValidatorChecks(nil),
	} {
		for _, c := range list {
			if seen[c.Name] {
				t.Errorf("check name %q used twice", c.Name)
			}
			seen[c.Name] = true
			if c.Name == "" || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Errorf("check name %q: want lowercase words joined by underscores", c.Name)
			}
			if c.Rule == "" || c.Run == nil {
				t.Errorf("check %q has no rule or no Run", c.Name)
			}
		}
	}
}

func TestRunRecordsFailuresPanicsAndCleanups(t *testing.T) {
	var order []string
	r := conformance.Run(context.Background(), conformance.Check{Name: "fatal", Run: func(ct *conformance.T) {
		ct.Cleanup(func() { order = append(order, "first registered") })
		ct.Cleanup(func() { order = append(order, "last registered") })
		ct.Errorf("one")
		ct.Fatalf("two")
		ct.Errorf("not reached")
	}})
	if r.Passed || r.Reason != "one; two" {
		t.Errorf("result %+v, want failed with reason %q", r, "one; two")
	}
	if !slices.Equal(order, []string{"last registered", "first registered"}) {
		t.Errorf("cleanups ran as %v", order)
	}
	r = conformance.Run(context.Background(), conformance.Check{Name: "panic", Run: func(*conformance.T) { panic("boom") }})
	if r.Passed || !strings.Contains(r.Reason, "boom") {
		t.Errorf("a panicking check: %+v", r)
	}
	r = conformance.Run(context.Background(), conformance.Check{Name: "ok", Run: func(ct *conformance.T) { ct.Logf("fine") }})
	if !r.Passed || !slices.Equal(r.Logs, []string{"fine"}) || !strings.HasPrefix(r.String(), "PASS ok") {
		t.Errorf("a passing check: %+v", r)
	}
}

func TestRunBoundsACheckByItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := conformance.Run(ctx, conformance.Check{Name: "waits", Run: func(ct *conformance.T) {
		<-ct.Context().Done()
		ct.Errorf("gave up: %v", ct.Context().Err())
	}})
	if r.Passed || !strings.Contains(r.Reason, "deadline") {
		t.Errorf("result %+v", r)
	}
}

func TestFactoryErrorsFailEveryCheckClearly(t *testing.T) {
	boom := errors.New("plugin binary missing")
	for _, r := range conformance.RunAll(context.Background(), conformance.ValidatorChecks(func(*conformance.T) (conformance.ValidatorCase, error) {
		return conformance.ValidatorCase{}, boom
	}), time.Second) {
		if r.Passed || !strings.Contains(r.Reason, "plugin binary missing") {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
}

// startedTCP is TCP that refuses to listen or dial until started, like a
// plugin that opens its sockets in framework.Starter's Start.
type startedTCP struct {
	*tcp.Transport
	started bool
}

func (s *startedTCP) Start(context.Context) error {
	s.started = true
	return nil
}

func (s *startedTCP) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	if !s.started {
		return nil, errors.New("listen before Start")
	}
	return s.Transport.Listen(ctx, host, port)
}

func (s *startedTCP) Dial(ctx context.Context, p framework.Peer) (net.Conn, error) {
	if !s.started {
		return nil, errors.New("dial before Start")
	}
	return s.Transport.Dial(ctx, p)
}

// The suite starts a transport that is a framework.Starter, as the swarm
// does, so such a transport passes.
func TestSuiteStartsStarters(t *testing.T) {
	assertExactly(t, failing(t, conformance.TransportChecks(func(*conformance.T) (framework.Transport, error) {
		return &startedTCP{Transport: tcp.New()}, nil
	})), nil)
}

package builtin_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// expect turns builtin.KnownFailures into ExpectFail options: the subtest
// of a known failure passes while the check fails, and fails once it
// passes, so the list stays exact.
func expect(name string) []conformance.Option {
	var opts []conformance.Option
	for check, reason := range builtin.KnownFailures(name) {
		opts = append(opts, conformance.ExpectFail(check, reason))
	}
	return opts
}

func TestTransports(t *testing.T) {
	for name, f := range builtin.Transports() {
		t.Run(name, func(t *testing.T) { conformance.RunTransportSuite(t, f, expect(name)...) })
	}
}

func TestDiscoveries(t *testing.T) {
	for name, f := range builtin.Discoveries() {
		t.Run(name, func(t *testing.T) { conformance.RunDiscoverySuite(t, f, expect(name)...) })
	}
}

// The validators' suites run in plugins/validators; this only checks that
// the registry is complete and its factories build.
func TestValidatorRegistry(t *testing.T) {
	for _, name := range []string{"cidr", "dht-private", "ratelimit", "banlist"} {
		f := builtin.Validators()[name]
		if f == nil {
			t.Fatalf("no factory for %s", name)
		}
		r := conformance.Run(t.Context(), conformance.ValidatorChecks(f)[0])
		if !r.Passed {
			t.Errorf("%s: %s", name, r)
		}
	}
	if len(builtin.KnownFailures("tcp")) != 0 {
		t.Error("tcp has known failures")
	}
}

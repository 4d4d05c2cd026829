package tcp_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The transport contract (listen, dial, round trip with half-close, a
// taken port, a closed port, cancellation, Close unblocking Accept, ...)
// is the conformance suite's, run on the registry's factory; TCP has no
// behaviour of its own beyond it.
func TestConformance(t *testing.T) {
	conformance.RunTransportSuite(t, builtin.TCP())
}

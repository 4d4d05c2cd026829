package builtin_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The built-ins' suites run from the plugin registry
// (cmd/swarmhost/internal/hostconfig's TestBuiltinsPassConformance).
func TestTCPHasNoKnownFailures(t *testing.T) {
	if len(builtin.KnownFailures("tcp")) != 0 {
		t.Error("tcp has known failures")
	}
}

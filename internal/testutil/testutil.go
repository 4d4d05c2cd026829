// Package testutil holds the test helpers that several packages' tests
// share, so that there is one copy of each.
package testutil

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// Main is the TestMain of packages whose tests send UDP through the DHT
// test helpers: it runs the tests, then the after functions (closing what
// the tests shared), and fails a passing run when a packet to a
// non-loopback address was attempted (dhttest.Violations) or a goroutine
// leaked.
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	if code == 0 {
		if v := dhttest.Violations(); v != 0 {
			fmt.Fprintf(os.Stderr, "%d packets to non-loopback addresses were attempted\n", v)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

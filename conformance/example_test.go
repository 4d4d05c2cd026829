package conformance_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// A plugin author (or a command) runs the checks outside go test and
// prints one line per rule.
func ExampleRunAll() {
	factory := func(*conformance.T) (framework.Transport, error) { return tcp.New(), nil }
	failed := 0
	for _, r := range conformance.RunAll(context.Background(), conformance.TransportChecks(factory), time.Minute) {
		if !r.Passed {
			failed++
			fmt.Println(r)
		}
	}
	fmt.Println("failed:", failed)
	// Output: failed: 0
}

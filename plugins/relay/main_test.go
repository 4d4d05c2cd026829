package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/testutil"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

var (
	sharedOnce sync.Once
	shared     *dhttest.Testnet
	sharedErr  error
)

// testnet returns a loopback DHT testnet shared by the tests.
func testnet(t testing.TB) *dhttest.Testnet {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared, sharedErr = dhttest.Start(ctx, 16, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	testutil.Main(m, func() {
		if shared != nil {
			shared.Close()
		}
	})
}

package dhttest

import (
	"context"
	"net"
	"testing"
)

// BenchmarkFillExchange: the cost of one exchange of the routing-table
// fill, a ping and its reply between two nodes of an in-memory testnet,
// guard and DHT included (run with -benchmem; the 10 000-node start-up
// makes about 870 000 of them).
func BenchmarkFillExchange(b *testing.B) {
	ctx := context.Background()
	tn, err := Start(ctx, 2, Options{Memory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tn.Close()
	to := tn.Nodes[1].Addr().(*net.UDPAddr).AddrPort()
	b.ReportAllocs()
	for b.Loop() {
		if err := tn.Nodes[0].Ping(ctx, to); err != nil {
			b.Fatal(err)
		}
	}
}

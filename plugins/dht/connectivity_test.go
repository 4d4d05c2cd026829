package dht_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

func TestConnectivityReportsAConsistentMappingOnLoopback(t *testing.T) {
	d, _, port := muxDisc(t, dht.Config{Ephemeral: dht.Bool(true)})
	if c := d.Connectivity(); c.Consistent || c.Reporters != 0 {
		t.Fatalf("before any round: %+v", c)
	}
	s := join(t, d, framework.JoinRequest{Topic: topic(t.Name()), Lookup: true, Port: port})
	waitSignal(t, s.flushCh, 10*time.Second, "first round")
	c := d.Connectivity()
	want := "127.0.0.1:" + strconv.Itoa(port)
	if !c.Bound || !c.Bootstrapped || c.Reporters < 2 || len(c.PublicAddrs) != 1 || c.PublicAddrs[0] != want || !c.Consistent || !c.Holepunchable {
		t.Fatalf("connectivity %+v, want bootstrapped and consistently seen at %s", c, want)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// A daemon with relay: {enabled: true} relays for others and announces
// itself on the DHT: a second daemon, whose only listed relay is down,
// reserves at it through the DHT (explicit relays first, then found ones).
func TestDaemonServesAsRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, err := dhttest.Start(ctx, 10, dhttest.Options{QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	bootstrap := "[" + strings.Join(tn.Bootstrap(), ", ") + "]"
	dir := t.TempDir()
	write := func(name, cfg string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	r, _ := startDaemonFile(t, write("relay.yaml", fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: relay.key, bootstrap: %s}
discoveries: [{name: dht}]
relay: {enabled: true, maxClients: 4}
`, freePort(t), bootstrap)))
	if r.relay == nil {
		t.Fatal("relay.enabled started no relay")
	}
	if !strings.HasPrefix(r.relay.Addr().String(), "127.0.0.1:") {
		t.Fatalf("relay on %s, want node.host", r.relay.Addr())
	}
	c, _ := startDaemonFile(t, write("client.yaml", fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: client.key, bootstrap: %s}
discoveries: [{name: dht}]
relays: [127.0.0.1:%d]
relayWhen: always   # loopback is hole-punchable: the default would not reserve
`, freePort(t), bootstrap, freePort(t))))
	if c.relay != nil || c.relayClient == nil {
		t.Fatalf("client daemon: relay %v, relay client %v", c.relay, c.relayClient)
	}
	res, err := c.relayClient.WaitReservation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != r.publicKey || res.Relay != r.relay.Addr().String() {
		t.Fatalf("reserved at %s@%s, want %s@%s", res.Key, res.Relay, r.publicKey, r.relay.Addr())
	}
	if st := r.relay.Stats(); st.Clients != 1 {
		t.Fatalf("relay holds %d reservations, want 1", st.Clients)
	}
}

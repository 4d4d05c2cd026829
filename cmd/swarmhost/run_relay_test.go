package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/internal/jsonschema"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
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

// A daemon with relay: {enabled: true} puts its relay's counters on its
// /metrics, and a daemon with relays: its relay client's: after one
// relayed session between a library swarm and the second daemon, both
// show it (sessions, bytes, reservations, connections relayed).
func TestDaemonRelayMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, _ := startTestDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
relay: {enabled: true}
`, freePort(t)), "127.0.0.1:0")
	if r.relay == nil || r.obs == nil {
		t.Fatalf("relay %v, observer %v", r.relay, r.obs)
	}
	c, _ := startTestDaemon(t, fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
relays: [%s]
topics:
  - {topic: relay-metrics, announce: true}
`, freePort(t), r.relay.Addr()), "127.0.0.1:0")
	res, err := c.relayClient.WaitReservation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	// a library swarm dials the allocation: a relayed Noise session
	a, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	conn, err := a.Connect(ctx, framework.Peer{Host: "127.0.0.1", Port: res.Port, Topic: framework.TopicFromString("relay-metrics"), PrivateNet: true})
	if err != nil {
		t.Fatal(err)
	}
	if !conn.Relayed() {
		t.Fatalf("session path %s, want relayed", conn.Path())
	}
	// the relayed side's status shows the path (swarmhost status, --json)
	for i := 0; ; i++ {
		st, _, err := observe.Fetch(ctx, c.obs.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Connections) == 1 && st.Connections[0].Type == "relay" && st.Connections[0].Path == "relayed" {
			var out strings.Builder
			if err := observe.Render(&out, st); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "relayed") {
				t.Fatalf("swarmhost status does not say relayed:\n%s", out.String())
			}
			break
		}
		if i == 500 || ctx.Err() != nil {
			t.Fatalf("status connections %+v, want one relay/relayed", st.Connections)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// bytes count when a splice chunk ends: at the latest when the
	// session closes
	conn.Close()

	// the relay's status document has its counters, the client's none
	for i := 0; ; i++ {
		st, raw, err := observe.Fetch(ctx, r.obs.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if st.Relay != nil && st.Relay.SessionsTotal == 1 && st.Relay.Clients == 1 && st.Relay.BytesRelayed > 0 {
			if err := jsonschema.Validate(observe.StatusSchema, raw); err != nil {
				t.Fatalf("relay's status document: %v\n%s", err, raw)
			}
			var out strings.Builder
			if err := observe.Render(&out, st); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "RELAY") {
				t.Fatalf("swarmhost status has no relay section:\n%s", out.String())
			}
			break
		}
		if i == 500 || ctx.Err() != nil {
			t.Fatalf("relay status %+v", st.Relay)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _, err := observe.Fetch(ctx, c.obs.Addr()); err != nil || st.Relay != nil {
		t.Fatalf("client daemon's status: relay %+v, %v", st.Relay, err)
	}

	relayWant := map[string]bool{"dwebswarm_relay_sessions_total": true, "dwebswarm_relay_bytes_total": true, "dwebswarm_relay_clients": true}
	clientWant := map[string]bool{"dwebswarm_relay_client_reserved": true, "dwebswarm_relay_client_reservations_total": true, "dwebswarm_relay_client_connections_total": true}
	for _, w := range []struct {
		d    *daemon
		want map[string]bool
	}{{r, relayWant}, {c, clientWant}} {
		var last string
		for i := 0; ; i++ { // bounded: the relay counts the bytes when its goroutines end
			last = scrapeMetrics(t, w.d)
			if allPositive(last, w.want) {
				break
			}
			if i == 500 || ctx.Err() != nil {
				t.Fatalf("metrics never showed non-zero %v:\n%s", w.want, grepLines(last, "dwebswarm_relay"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func scrapeMetrics(t *testing.T, d *daemon) string {
	t.Helper()
	resp, err := http.Get("http://" + d.obs.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// allPositive reports whether every metric of want has a sample > 0 in the
// exposition text m (metrics without labels).
func allPositive(m string, want map[string]bool) bool {
	seen := 0
	for _, line := range strings.Split(m, "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil && v > 0 {
			seen++
		}
	}
	return seen == len(want)
}

func grepLines(m, sub string) string {
	var out []string
	for _, line := range strings.Split(m, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// A daemon that cannot open its metrics listener stops everything it
// started, its relay included (the relay's port is free again).
func TestDaemonMetricsFailureClosesTheRelay(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	relayPort := freePort(t)
	path := filepath.Join(t.TempDir(), "swarmhost.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d}
relay: {enabled: true, listen: 127.0.0.1:%d}
`, freePort(t), relayPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	if _, err := startDaemon(context.Background(), path, busy.Addr().String(), stdio{in: strings.NewReader(""), out: io.Discard, err: &errOut}); err == nil {
		t.Fatal("started with its metrics address taken")
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", relayPort))
	if err != nil {
		t.Fatalf("the relay's port is still taken after the failed start: %v", err)
	}
	ln.Close()
}

// A daemon with relays: but no DHT discovery (nothing could report it not
// hole-punchable, nor carry a dialler's relay request) reserves with the
// default relayWhen, as "always" (logged at start), instead of never.
func TestDaemonWithoutDHTReservesWithTheDefaultPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relay.NewServer(relay.ServerConfig{KeyPair: kp, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "client.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`
node: {host: 127.0.0.1, port: %d, key: client.key}
relays: [%s@%s]
`, freePort(t), kp.Public, srv.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	d, err := startDaemon(ctx, path, "", stdio{in: strings.NewReader(""), out: io.Discard, err: &errOut})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, errOut.String())
	}
	defer d.shutdown()
	if d.relayClient == nil {
		t.Fatal("no relay client")
	}
	if _, err := d.relayClient.WaitReservation(ctx, 0); err != nil {
		t.Fatalf("no reservation without a DHT: %v\n%s", err, errOut.String())
	}
	if log := errOut.String(); !strings.Contains(log, "relay policy") || !strings.Contains(log, "relay_when=always") {
		t.Fatalf("the policy in effect was not logged:\n%s", log)
	}
}

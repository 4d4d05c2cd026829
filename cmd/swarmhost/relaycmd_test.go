package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// The relay's counters are exported under dwebswarm_relay_*.
func TestRelayMetrics(t *testing.T) {
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relay.NewServer(relay.ServerConfig{KeyPair: kp, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(observe.RelayServerCollector(srv.Stats))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	want := map[string]int{"dwebswarm_relay_clients": 1, "dwebswarm_relay_sessions": 1, "dwebswarm_relay_sessions_total": 1,
		"dwebswarm_relay_bytes_total": 1, "dwebswarm_relay_announced_infohashes": 1, "dwebswarm_relay_limit_hits_total": 6}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d series, want %d (got %v)", name, got[name], n, got)
		}
	}
}

// swarmhost relay without --listen is a usage error.
func TestRelayCommandNeedsListen(t *testing.T) {
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"relay"}, stdio{in: strings.NewReader(""), out: &out, err: &errb}); code != 2 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "--listen") {
		t.Fatalf("no hint: %s", errb.String())
	}
}

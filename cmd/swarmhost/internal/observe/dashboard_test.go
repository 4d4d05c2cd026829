package observe_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// dashboardPath is the Grafana dashboard of examples/grafana.
var dashboardPath = filepath.Join("..", "..", "..", "..", "examples", "grafana", "dwebswarm.json")

// registryNames returns every metric name a fully hooked server's registry
// describes (runtime and process collectors included).
func registryNames(t *testing.T) map[string]bool {
	t.Helper()
	sw, err := dwebswarm.New(context.Background(), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	o, err := observe.New(sw, observe.Config{
		DHTNodes:   func() int { return 1 },
		DHTLimits:  func() (dht.LimitStats, bool) { return dht.LimitStats{}, true },
		MDNSStats:  func() mdns.Stats { return mdns.Stats{} },
		UTP:        func() utp.Stats { return utp.Stats{} },
		Relay:      func() relay.Stats { return relay.Stats{} },
		Collectors: []prometheus.Collector{observe.RelayClientCollector(func() relay.ClientStats { return relay.ClientStats{} })},
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc)
	go func() { o.Registry().Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	if !names[observe.MetricConnectionsOpen] || !names["go_goroutines"] {
		t.Fatalf("registry names look wrong: %d names", len(names))
	}
	return names
}

// metricRef is a metric name in a PromQL expression: our namespaces and the
// runtime collectors' (label names and functions never start so).
var metricRef = regexp.MustCompile(`\b(?:dwebswarm|go|process)_[a-zA-Z0-9_]+\b`)

// Every query of the Grafana dashboard names at least one metric, and
// every metric it names is one the observer exports; panels have unique
// ids and use the dashboard's data-source variable.
func TestGrafanaDashboardNamesRealMetrics(t *testing.T) {
	names := registryNames(t)
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if dash.UID == "" || len(dash.Panels) < 10 {
		t.Fatalf("dashboard: uid %q, %d panels", dash.UID, len(dash.Panels))
	}
	var exprs []string
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source is not the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			queries++
		}
	}
	for _, e := range exprs {
		refs := metricRef.FindAllString(e, -1)
		if len(refs) == 0 {
			t.Errorf("query names no metric: %s", e)
		}
		for _, r := range refs {
			used[r] = true
			if !names[r] {
				t.Errorf("query names %q, which the observer does not export: %s", r, e)
			}
		}
	}
	// the dwebswarm metrics the dashboard leaves out, for the record
	var unused []string
	for n := range names {
		if strings.HasPrefix(n, "dwebswarm_") && !used[n] {
			unused = append(unused, n)
		}
	}
	sort.Strings(unused)
	t.Logf("%d queries over %d metrics; dwebswarm metrics not on the dashboard: %v", queries, len(used), unused)
}

// The checker itself: a made-up metric is caught.
func TestDashboardCheckerCatchesUnknownMetric(t *testing.T) {
	names := registryNames(t)
	for _, r := range metricRef.FindAllString(`sum by (transport) (rate(dwebswarm_connections_typo_total{instance=~"$instance"}[5m]))`, -1) {
		if names[r] {
			t.Errorf("%s accepted", r)
		}
	}
	if refs := metricRef.FindAllString(`sum by (transport, direction) (dwebswarm_connections_open{instance=~"$instance"})`, -1); len(refs) != 1 || refs[0] != observe.MetricConnectionsOpen {
		t.Errorf("refs %v", refs)
	}
}

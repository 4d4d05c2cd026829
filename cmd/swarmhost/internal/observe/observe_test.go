package observe_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every eventual condition of these tests.
const wait = 10 * time.Second

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, wait, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pair is an announcing swarm and a swarm that finds it through a static
// peer list, on loopback, each with an observer.
type pair struct {
	topic                framework.Topic
	server, client       *framework.Swarm
	serverObs, clientObs *observe.Server
	tracker              *observe.PluginTracker
}

type fakeCounter struct{ in, out atomic.Uint64 }

func (f *fakeCounter) BytesIn() uint64  { return f.in.Load() }
func (f *fakeCounter) BytesOut() uint64 { return f.out.Load() }

func newPair(t *testing.T) *pair {
	t.Helper()
	ctx := context.Background()
	p := &pair{topic: framework.TopicFromString("observe test topic"), tracker: observe.NewPluginTracker()}
	var err error
	p.server, err = dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.server.Close() })
	if err := p.server.Join(ctx, p.topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	p.serverObs = startObserver(t, p.server, observe.Config{Version: "server-test", NoRuntimeMetrics: true})

	// the client's observer starts before the connection, so it sees it as
	// an event
	p.client, err = dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(p.server.Port())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.client.Close() })
	p.clientObs = startObserver(t, p.client, observe.Config{Version: "client-test", Plugins: p.tracker, DHTNodes: func() int { return 7 },
		DHTLimits: func() (dht.LimitStats, bool) {
			return dht.LimitStats{ValuesPerReply: 5, PunchNotAnnounced: 2, RelayRequestsSent: 3, RelayRequestsRateLimited: 1, RelayRequestsNotAnnounced: 2, RelayRequestsSuppressed: 4}, true
		}})
	p.clientObs.NameTopic(p.topic, "observe test topic")
	if err := p.client.Join(ctx, p.topic); err != nil {
		t.Fatal(err)
	}
	eventually(t, "client connected", func() (bool, string) {
		st := p.client.Stats()
		return st.Clients == 1, fmt.Sprintf("%+v", st)
	})
	return p
}

func startObserver(t *testing.T, sw *framework.Swarm, cfg observe.Config) *observe.Server {
	t.Helper()
	o, err := observe.New(sw, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := o.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return o
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, o *observe.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := get(t, "http://"+o.Addr()+observe.MetricsPath)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: content type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the metric of family name whose labels include
// labels ("k=v" pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_UNTYPED:
			return m.GetUntyped().GetValue(), true
		}
		return 0, false
	}
	return 0, false
}

// sum adds the values of every counter of family name whose labels include
// labels.
func sum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	total := 0.0
next:
	for _, m := range fams[name].GetMetric() {
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		total += m.GetCounter().GetValue()
	}
	return total
}

// waitMetric waits until the scraped metric equals want.
func waitMetric(t *testing.T, o *observe.Server, want float64, name string, labels ...string) map[string]*dto.MetricFamily {
	t.Helper()
	var fams map[string]*dto.MetricFamily
	eventually(t, fmt.Sprintf("%s%v == %v", name, labels, want), func() (bool, string) {
		fams = scrape(t, o)
		v, ok := value(fams, name, labels...)
		return ok && v == want, fmt.Sprintf("%v (present %v)", v, ok)
	})
	return fams
}

func TestMetricsCountConnectionsOnALoopbackPair(t *testing.T) {
	p := newPair(t)

	fams := waitMetric(t, p.clientObs, 1, observe.MetricConnectionsOpened, "transport=tcp", "direction=outbound")
	for _, c := range []struct {
		name   string
		want   float64
		labels []string
	}{
		{observe.MetricConnectionsOpen, 1, []string{"transport=tcp", "direction=outbound"}},
		{observe.MetricDialsSucceeded, 1, []string{"transport=tcp"}},
		{observe.MetricTopicsJoined, 1, nil},
		{observe.MetricQueueLength, 0, nil},
		{observe.MetricDialsInFlight, 0, nil},
		{observe.MetricPeersRejected, 0, nil},
		{observe.MetricBound, 1, nil},
		{observe.MetricDHTRoutingTable, 7, nil},
		{observe.MetricDHTLimited, 5, []string{"limit=values_per_reply"}},
		{observe.MetricDHTLimited, 2, []string{"limit=punch_not_announced"}},
		{observe.MetricDHTLimited, 0, []string{"limit=store_per_ip"}},
		{observe.MetricDHTRelayRequests, 3, []string{"result=sent"}},
		{observe.MetricDHTRelayRequests, 1, []string{"result=rate_limited"}},
		{observe.MetricDHTRelayRequests, 2, []string{"result=not_announced"}},
		{observe.MetricDHTRelayRequests, 0, []string{"result=no_relay"}},
		{observe.MetricDHTRelayRequests, 4, []string{"result=suppressed"}},
		{observe.MetricDHTRelayRequests, 0, []string{"result=accepted"}},
		{observe.MetricBuildInfo, 1, []string{"version=client-test"}},
		{observe.MetricDiscoveryDropped, 0, []string{"limit=cycle"}},
		{observe.MetricDiscoveryDropped, 0, []string{"limit=ports"}},
		{observe.MetricPeersEvicted, 0, nil},
		{observe.MetricPrivateRejected, 0, nil},
		{observe.MetricDialsHeld, 0, []string{"limit=ports"}},
		{observe.MetricNeverConnected, 0, nil},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, ok := value(fams, observe.MetricPeersDiscovered); !ok || v < 1 {
		t.Errorf("%s = %v (present %v), want >= 1", observe.MetricPeersDiscovered, v, ok)
	}
	if fams[observe.MetricConnectionsOpen].GetType() != dto.MetricType_GAUGE || fams[observe.MetricConnectionsOpened].GetType() != dto.MetricType_COUNTER {
		t.Errorf("connection metric types: open %v, opened %v", fams[observe.MetricConnectionsOpen].GetType(), fams[observe.MetricConnectionsOpened].GetType())
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// the server sees the same connection inbound; it has no DHT hook and no
	// runtime metrics
	sf := waitMetric(t, p.serverObs, 1, observe.MetricConnectionsOpen, "transport=tcp", "direction=inbound")
	if v, _ := value(sf, observe.MetricConnectionsOpened, "transport=tcp", "direction=inbound"); v != 1 {
		t.Errorf("server opened inbound = %v, want 1", v)
	}
	if _, ok := sf[observe.MetricDHTRoutingTable]; ok {
		t.Error("DHT metric exported without a hook")
	}
	if _, ok := sf[observe.MetricDHTLimited]; ok {
		t.Error("DHT limit metric exported without a hook")
	}
	if _, ok := sf["go_goroutines"]; ok {
		t.Error("runtime metrics exported with NoRuntimeMetrics")
	}

	// closing the connection counts it closed and keeps the open gauge at 0
	// until the swarm redials (it requeues the peer with backoff)
	p.client.Connections()[0].Close()
	waitMetric(t, p.clientObs, 1, observe.MetricConnectionsClosed, "transport=tcp", "direction=outbound", "reason=closed_locally")
	// gauges are read from the swarm, counters from its events: they agree
	// once the events are in (the swarm may redial meanwhile)
	eventually(t, "opened - closed == open", func() (bool, string) {
		fams := scrape(t, p.clientObs)
		opened, _ := value(fams, observe.MetricConnectionsOpened, "transport=tcp", "direction=outbound")
		closed := sum(fams, observe.MetricConnectionsClosed, "transport=tcp", "direction=outbound")
		open, ok := value(fams, observe.MetricConnectionsOpen, "transport=tcp", "direction=outbound")
		return ok && opened-closed == open, fmt.Sprintf("opened %v closed %v open %v", opened, closed, open)
	})
}

// The connections-closed counter's reason label is the disconnection
// event's reason: closing a swarm counts its connections as swarm_closed.
func TestConnectionsClosedReasonLabelIsTheDisconnectReason(t *testing.T) {
	p := newPair(t)
	waitMetric(t, p.serverObs, 1, observe.MetricConnectionsOpened, "transport=tcp", "direction=inbound")
	p.server.Close()
	waitMetric(t, p.serverObs, 1, observe.MetricConnectionsClosed, "transport=tcp", "direction=inbound", "reason="+framework.ReasonSwarmClosed.String())
}

func TestStatusListsTopicAndConnection(t *testing.T) {
	p := newPair(t)
	web := &fakeCounter{}
	web.in.Store(1234)
	web.out.Store(99)
	if err := p.clientObs.AddByteCounter("web", web); err != nil {
		t.Fatal(err)
	}

	var st observe.Status
	eventually(t, "status shows the connection and a flushed topic", func() (bool, string) {
		resp, body := get(t, "http://"+p.clientObs.Addr()+observe.StatusPath)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			return false, resp.Status + " " + resp.Header.Get("Content-Type")
		}
		st = observe.Status{}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("decode: %v\n%s", err, body)
		}
		return len(st.Connections) == 1 && len(st.Topics) == 1 && st.Topics[0].Flushed && st.Connections[0].OpenedAt != nil, string(body)
	})
	if st.Schema != observe.SchemaVersion || st.Version != "client-test" || st.Port != p.client.Port() {
		t.Errorf("header: schema %d version %q port %d", st.Schema, st.Version, st.Port)
	}
	tp := st.Topics[0]
	if tp.Topic != p.topic.String() || tp.Name != "observe test topic" || tp.Announce || !tp.Lookup || tp.Connections != 1 {
		t.Errorf("topic: %+v", tp)
	}
	c := st.Connections[0]
	serverAddr := "127.0.0.1:" + strconv.Itoa(p.server.Port())
	if c.Type != "tcp" || !c.Client || c.Direction() != "outbound" || c.Peer != serverAddr || c.Remote != serverAddr || len(c.Topics) != 1 || c.Topics[0] != p.topic.String() || c.AgeSeconds < 0 {
		t.Errorf("connection: %+v", c)
	}
	if st.Queue.Clients != 1 || st.Queue.Topics != 1 || st.Queue.Subscriptions < 1 {
		t.Errorf("queue: %+v", st.Queue)
	}
	if !st.Connectivity.Bound || st.Connectivity.PublicAddrs == nil {
		t.Errorf("connectivity: %+v", st.Connectivity)
	}
	if st.DHT == nil || st.DHT.Nodes != 7 {
		t.Errorf("dht: %+v", st.DHT)
	}
	if len(st.Traffic) != 1 || st.Traffic[0] != (observe.TrafficStatus{Name: "web", BytesIn: 1234, BytesOut: 99}) {
		t.Errorf("traffic: %+v", st.Traffic)
	}
	if st.Plugins == nil {
		t.Error("plugins is null")
	}

	// the server's view: inbound, the topic the session proved, announcing
	ss := p.serverObs.Status(context.Background())
	if len(ss.Connections) != 1 || ss.Connections[0].Client || ss.Connections[0].Type != "tcp" || len(ss.Connections[0].Topics) != 1 {
		t.Errorf("server connections: %+v", ss.Connections)
	}
	if len(ss.Topics) != 1 || !ss.Topics[0].Announce || ss.Topics[0].Lookup {
		t.Errorf("server topics: %+v", ss.Topics)
	}

	// bytes are exported too, and disappear with their counter
	fams := scrape(t, p.clientObs)
	if v, _ := value(fams, observe.MetricBytesIn, "name=web"); v != 1234 {
		t.Errorf("bytes in = %v", v)
	}
	if v, _ := value(fams, observe.MetricBytesOut, "name=web"); v != 99 {
		t.Errorf("bytes out = %v", v)
	}
	p.clientObs.RemoveByteCounter("web")
	if _, ok := value(scrape(t, p.clientObs), observe.MetricBytesIn, "name=web"); ok {
		t.Error("removed byte counter still exported")
	}

	// Fetch and Render read the same document
	got, raw, err := observe.Fetch(context.Background(), p.clientObs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || len(got.Topics) != 1 || got.Topics[0].Topic != p.topic.String() {
		t.Fatalf("fetch: %+v", got)
	}
	var out strings.Builder
	if err := observe.Render(&out, got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TOPICS (1)", p.topic.Short(), "observe test topic", "CONNECTIONS (1)", serverAddr, "outbound", "QUEUE", "CONNECTIVITY", "PLUGINS", "TRAFFIC"} {
		if want == "TRAFFIC" {
			if strings.Contains(out.String(), want) {
				t.Errorf("traffic table without counters:\n%s", out.String())
			}
			continue
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("render lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPluginEventsAndRestarts(t *testing.T) {
	p := newPair(t)
	tr := p.tracker
	tr.Add(remote.KindTransport, "tcp", "")
	tr.Add(remote.KindDiscovery, "static", "")
	// an external plugin reports its start before the daemon registers it
	tr.OnEvent(remote.Event{Kind: remote.EventStarted, PluginKind: remote.KindDiscovery, Plugin: "ext", Path: "/bin/ext", PID: 100})
	tr.Add(remote.KindDiscovery, "ext", "/bin/ext")
	tr.OnEvent(remote.Event{Kind: remote.EventCrashed, PluginKind: remote.KindDiscovery, Plugin: "ext", PID: 100, Err: errors.New("exit status 2")})
	tr.OnEvent(remote.Event{Kind: remote.EventRestarted, PluginKind: remote.KindDiscovery, Plugin: "ext", PID: 101, Attempt: 1})
	tr.OnEvent(remote.Event{Kind: remote.EventCrashed, PluginKind: remote.KindDiscovery, Plugin: "ext", PID: 101, Err: errors.New("signal: killed")})
	tr.OnEvent(remote.Event{Kind: remote.EventRestarted, PluginKind: remote.KindDiscovery, Plugin: "ext", PID: 102, Attempt: 2})
	tr.Add(remote.KindValidator, "gone", "/bin/gone")
	tr.OnEvent(remote.Event{Kind: remote.EventGaveUp, PluginKind: remote.KindValidator, Plugin: "gone", Err: errors.New("5 restarts")})

	// a name Prometheus refuses as a label value costs its own metrics, not
	// the scrape
	tr.OnEvent(remote.Event{Kind: remote.EventStarted, PluginKind: remote.KindTransport, Plugin: "bad\xffname", PID: 7})

	fams := scrape(t, p.clientObs)
	if v, _ := value(fams, observe.MetricPluginRestarts, "kind=discovery", "plugin=ext"); v != 2 {
		t.Errorf("restarts = %v, want 2", v)
	}
	if v, _ := value(fams, observe.MetricPluginEvents, "kind=discovery", "plugin=ext", "event=crashed"); v != 2 {
		t.Errorf("crashed events = %v, want 2", v)
	}
	for _, c := range []struct {
		kind, name string
		up         float64
	}{{"transport", "tcp", 1}, {"discovery", "ext", 1}, {"validator", "gone", 0}} {
		if v, ok := value(fams, observe.MetricPluginUp, "kind="+c.kind, "plugin="+c.name); !ok || v != c.up {
			t.Errorf("up{%s,%s} = %v (present %v), want %v", c.kind, c.name, v, ok, c.up)
		}
	}
	if _, ok := value(fams, observe.MetricPluginRestarts, "plugin=tcp"); ok {
		t.Error("restarts exported for a built-in")
	}

	st := p.clientObs.Status(context.Background())
	if len(st.Plugins) != 5 {
		t.Fatalf("plugins: %+v", st.Plugins)
	}
	// sorted by kind (transport, discovery, validator) then name
	order := []string{"bad\xffname", "tcp", "ext", "static", "gone"}
	for i, pl := range st.Plugins {
		if pl.Name != order[i] {
			t.Errorf("plugin %d is %q, want %q", i, pl.Name, order[i])
		}
	}
	st.Plugins = st.Plugins[1:]
	ext := st.Plugins[1]
	if !ext.External || ext.State != observe.PluginRunning || ext.PID != 102 || ext.Restarts != 2 || ext.Path != "/bin/ext" || ext.LastError != "signal: killed" || ext.LastEvent != "restarted" || ext.LastEventAt == nil {
		t.Errorf("ext: %+v", ext)
	}
	if g := st.Plugins[3]; g.State != observe.PluginGaveUp || g.PID != 0 {
		t.Errorf("gone: %+v", g)
	}
	if b := st.Plugins[0]; b.External || b.State != observe.PluginInProcess {
		t.Errorf("tcp: %+v", b)
	}
}

func TestShutdownClosesListenerAndSubscription(t *testing.T) {
	ctx := context.Background()
	sw, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	o, err := observe.New(sw, observe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := o.Addr()
	if err := o.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	// a taken address is an error that names it
	o2, err := observe.New(sw, observe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Start(addr); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Start on a taken address: %v", err)
	}
	if err := o2.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if got := sw.Stats().Subscriptions; got != 1 {
		t.Errorf("subscriptions while serving = %d, want 1", got)
	}

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := o.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Shutdown(sctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if got := sw.Stats().Subscriptions; got != 0 {
		t.Errorf("subscriptions after Shutdown = %d, want 0", got)
	}
	if err := o.Start("127.0.0.1:0"); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Start after Shutdown: %v", err)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatal("listener still open after Shutdown")
	}
	if _, _, err := observe.Fetch(ctx, addr); !errors.Is(err, observe.ErrNotListening) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Fetch on a closed port: %v", err)
	}
}

// A swarm closed under a running observer ends its event loop; the server
// still answers until shut down.
func TestSwarmClosedFirst(t *testing.T) {
	ctx := context.Background()
	sw, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	sw.Close()
	fams := scrape(t, o)
	if v, ok := value(fams, observe.MetricBound); !ok || v != 0 {
		t.Errorf("bound after Close = %v (present %v)", v, ok)
	}
	if st := o.Status(ctx); st.Connectivity.Bound {
		t.Error("status says bound after Close")
	}
}

func TestDHTNodesHookBeforeStart(t *testing.T) {
	p, err := dht.New(dht.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := observe.DHTNodes(p)(); n != -1 {
		t.Errorf("DHTNodes before start = %d, want -1", n)
	}
	if _, ok := observe.DHTLimits(p)(); ok {
		t.Error("DHTLimits known before start")
	}
}

func TestStatusURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9737":            "http://127.0.0.1:9737/status",
		"[::1]:80":                  "http://[::1]:80/status",
		"http://host:1/":            "http://host:1/status",
		"https://host:1/swarm":      "https://host:1/swarm/status",
		"localhost:9737":            "http://localhost:9737/status",
		"http://127.0.0.1:9/prefix": "http://127.0.0.1:9/prefix/status",
	} {
		got, err := observe.StatusURL(in)
		if err != nil || got != want {
			t.Errorf("StatusURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "nohost", "ftp://x:1", "http://"} {
		if got, err := observe.StatusURL(bad); err == nil {
			t.Errorf("StatusURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestStatusRejectsOtherMethods(t *testing.T) {
	ctx := context.Background()
	sw, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Post("http://"+o.Addr()+observe.StatusPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %s", resp.Status)
	}
	resp2, body := get(t, "http://"+o.Addr()+"/")
	if resp2.StatusCode != http.StatusOK || !strings.Contains(string(body), "/metrics") {
		t.Errorf("GET /: %s %s", resp2.Status, body)
	}
	resp3, _ := get(t, "http://"+o.Addr()+"/nope")
	if resp3.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s", resp3.Status)
	}
}

func TestMDNSMetricsFromTheHook(t *testing.T) {
	ctx := context.Background()
	sw, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true, MDNSStats: func() mdns.Stats {
		return mdns.Stats{AddrsLoopback: 3, AddrsPublic: 1, InstancesSourceCap: 4168, InstancesEvicted: 2, PeersSourceCap: 16, CachedInstances: 33}
	}})
	fams := scrape(t, o)
	for _, c := range []struct {
		name   string
		want   float64
		labels []string
	}{
		{observe.MetricMDNSAddrsDropped, 3, []string{"reason=loopback"}},
		{observe.MetricMDNSAddrsDropped, 1, []string{"reason=public"}},
		{observe.MetricMDNSAddrsDropped, 0, []string{"reason=other_subnet"}},
		{observe.MetricMDNSInstancesDropped, 4168, []string{"reason=source_cap"}},
		{observe.MetricMDNSInstancesDropped, 2, []string{"reason=evicted"}},
		{observe.MetricMDNSPeersDropped, 16, []string{"reason=source_cap"}},
		{observe.MetricMDNSCachedInstances, 33, nil},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	// without the hook: not exported
	o2 := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	if _, ok := scrape(t, o2)[observe.MetricMDNSCachedInstances]; ok {
		t.Error("mDNS metrics exported without a hook")
	}
}

// Config.Collectors are served on /metrics beside the server's own; one
// that clashes with them makes New fail.
func TestExtraCollectors(t *testing.T) {
	sw, err := dwebswarm.New(context.Background(), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true, Collectors: []prometheus.Collector{
		observe.RelayServerCollector(func() relay.Stats { return relay.Stats{SessionsTotal: 3, BytesRelayed: 4096, LimitBytes: 2} }),
		observe.RelayClientCollector(func() relay.ClientStats { return relay.ClientStats{Reserved: true, Reservations: 1, Relayed: 5} }),
		nil, // skipped
	}})
	fams := scrape(t, o)
	for _, c := range []struct {
		name   string
		want   float64
		labels []string
	}{
		{observe.MetricRelaySessionsTotal, 3, nil},
		{observe.MetricRelayBytes, 4096, nil},
		{observe.MetricRelayLimitHits, 2, []string{"limit=bytes"}},
		{observe.MetricRelayLimitHits, 0, []string{"limit=clients"}},
		{observe.MetricRelayReserved, 1, nil},
		{observe.MetricRelayReservations, 1, nil},
		{observe.MetricRelayClientRelayed, 5, nil},
		{observe.MetricRelayConnectBackLost, 0, nil},
		{observe.MetricQueueLength, 0, nil},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: observe.MetricQueueLength, Help: "clash"})
	if _, err := observe.New(sw, observe.Config{NoRuntimeMetrics: true, Collectors: []prometheus.Collector{clash}}); err == nil {
		t.Fatal("a collector clashing with the server's metrics was accepted")
	}
}

// DNS rebinding: a page of attacker.example that resolves its name to
// 127.0.0.1 sends Host: attacker.example; a loopback listener refuses it,
// and answers requests for an IP address or localhost.
func TestLoopbackListenerRefusesForeignHosts(t *testing.T) {
	ctx := context.Background()
	sw, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	_, port, _ := net.SplitHostPort(o.Addr())
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, c := range []struct {
		host string
		want int
	}{
		{"attacker.example:" + port, http.StatusForbidden},
		{"attacker.example", http.StatusForbidden},
		{"localhost.attacker.example:" + port, http.StatusForbidden},
		{"127.0.0.1:" + port, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LocalHost.:" + port, http.StatusOK},
		{"status.localhost:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
	} {
		for _, path := range []string{observe.StatusPath, observe.MetricsPath, "/"} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+o.Addr()+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = c.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("GET %s with Host %q: %s, want %d", path, c.host, resp.Status, c.want)
			}
		}
	}
}

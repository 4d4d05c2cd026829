package observe_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRefusalsAreLoggedOncePerIntervalAndCounted: a swarm at its
// connection limit used to drop inbound connections with a debug line
// only. Refusals are counted in the metrics and logged at warn: the first
// at once, the rest as one line per interval with their count.
func TestRefusalsAreLoggedOncePerIntervalAndCounted(t *testing.T) {
	sw, err := dwebswarm.New(context.Background(), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithPlaintext(), // raw sockets: the plaintext rules of unproven inbound connections
		framework.WithMaxPeers(1), framework.WithLogger(slog.New(slog.DiscardHandler)),
		framework.WithConnectionHandler(func(c *framework.Conn) { io.Copy(io.Discard, c) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	var logs syncBuf
	clk := clockwork.NewFakeClock()
	rl := observe.NewRefusalLog(sw, slog.New(slog.NewTextHandler(&logs, nil)), time.Minute, clk)
	t.Cleanup(rl.Close)

	addr := "127.0.0.1:" + strconv.Itoa(sw.Port())
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// a byte read proves it: a silent one would give way to the next
	if _, err := held.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "held connection accepted and proven", func() (bool, string) {
		st := sw.Stats()
		return st.Servers == 1 && st.Unproven == 0, fmt.Sprintf("%+v", st)
	})
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	eventually(t, "3 refusals seen", func() (bool, string) { return rl.Total() == 3, fmt.Sprint(rl.Total()) })
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "limit=maxPeers") {
		t.Fatalf("want one warn line naming maxPeers at the first refusal, got:\n%s", logs.String())
	}
	waitMetric(t, o, 3, observe.MetricInboundRefused, "transport=tcp", "limit=maxPeers")

	if err := clk.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	eventually(t, "summary line", func() (bool, string) {
		return strings.Contains(logs.String(), "count=2"), logs.String()
	})
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Fatalf("want 2 warn lines, got:\n%s", logs.String())
	}
}

// TestInboundAndUTPMetrics: the unproven-inbound and dial-reserve counters
// of the swarm and the uTP half-open counters are exported.
func TestInboundAndUTPMetrics(t *testing.T) {
	sw, err := dwebswarm.New(context.Background(), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0),
		framework.WithPlaintext(), // raw sockets: the plaintext rules of unproven inbound connections
		framework.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true, UTP: func() utp.Stats {
		return utp.Stats{HalfOpen: 3, SynsRateLimited: 5, SynsOverCap: 2, SynsAnswered: 7, HalfOpenExpired: 1}
	}})
	silent, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(sw.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	fams := waitMetric(t, o, 1, observe.MetricInboundUnproven)
	for _, c := range []struct {
		name   string
		want   float64
		labels []string
	}{
		{observe.MetricDialReserve, float64(framework.DefaultMaxPeers / 4), nil},
		{observe.MetricInboundDisplaced, 0, nil},
		{observe.MetricInboundUnprovenClosed, 0, nil},
		{observe.MetricUTPHalfOpen, 3, nil},
		{observe.MetricUTPSynsDropped, 5, []string{"reason=rate"}},
		{observe.MetricUTPSynsDropped, 2, []string{"reason=half_open_share"}},
		{observe.MetricUTPHalfOpenEnded, 7, []string{"outcome=answered"}},
		{observe.MetricUTPHalfOpenEnded, 1, []string{"outcome=expired"}},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}

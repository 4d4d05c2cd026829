package observe

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// DefaultRefusalInterval is how often a [RefusalLog] reports refusals at
// most.
const DefaultRefusalInterval = 10 * time.Second

// RefusalLog logs the swarm's inbound connections refused at a connection
// limit ([framework.InboundRefusedEvent]) at warn, at most once per
// interval: the first refusal after a quiet interval at once, then, while
// refusals go on, one line per interval with their count. A flood of
// refused connections thus costs one log line per interval.
type RefusalLog struct {
	log   *slog.Logger
	every time.Duration
	clk   clockwork.Clock
	sub   *framework.Subscription
	total atomic.Uint64
	wg    sync.WaitGroup
}

// NewRefusalLog starts logging sw's refusals to log. every 0 means
// DefaultRefusalInterval; clk nil means the real clock.
func NewRefusalLog(sw *framework.Swarm, log *slog.Logger, every time.Duration, clk clockwork.Clock) *RefusalLog {
	if every <= 0 {
		every = DefaultRefusalInterval
	}
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	r := &RefusalLog{log: log, every: every, clk: clk, sub: sw.Subscribe()}
	r.wg.Add(1)
	go r.run()
	return r
}

// Total returns how many refusals it has seen.
func (r *RefusalLog) Total() uint64 { return r.total.Load() }

// Close stops it (it also stops when the swarm closes) and waits.
func (r *RefusalLog) Close() {
	r.sub.Close()
	r.wg.Wait()
}

func (r *RefusalLog) run() {
	defer r.wg.Done()
	var (
		timer   clockwork.Timer
		tick    <-chan time.Time
		pending = map[string]int{} // limit → refusals not reported yet
		last    *framework.InboundRefusedEvent
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case ev, ok := <-r.sub.C():
			if !ok {
				return
			}
			e, ok := ev.(*framework.InboundRefusedEvent)
			if !ok {
				continue
			}
			r.total.Add(1)
			if tick != nil {
				pending[e.Limit]++
				last = e
				continue
			}
			r.log.Warn("inbound connection refused: at the connection limit",
				"limit", e.Limit, "reason", errString(e.Err), "transport", e.Transport, "remote", remoteString(e.Remote),
				"next_report_within", r.every.String())
			timer = r.clk.NewTimer(r.every)
			tick = timer.Chan()
		case <-tick:
			if len(pending) == 0 {
				timer, tick = nil, nil // quiet: the next refusal is logged at once
				continue
			}
			for limit, n := range pending {
				r.log.Warn("inbound connections refused: at the connection limit",
					"count", n, "limit", limit, "within", r.every.String(), "last_reason", errString(last.Err))
			}
			clear(pending)
			timer.Reset(r.every)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func remoteString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

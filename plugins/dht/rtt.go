package dht

import (
	"context"
	"sync"
	"time"

	anacrolix "github.com/anacrolix/dht/v2"
)

// DefaultMinQueryTimeout is the floor of the adaptive query timeout.
const DefaultMinQueryTimeout = 150 * time.Millisecond

// rttEstimator is TCP's retransmission timer (RFC 6298) over the replies
// of every node this node queries: SRTT and RTTVAR from the queries
// answered after a single send (Karn's rule: a reply to a resent query may
// answer either send), RTO = SRTT + max(50 ms, 4·RTTVAR), clamped to
// [min, max]. One estimator per node, not per destination: anacrolix asks
// for the resend delay without saying to whom.
type rttEstimator struct {
	min, max time.Duration

	mu           sync.Mutex
	srtt, rttvar time.Duration
	samples      int
	first        chan struct{} // closed at the first sample; made on demand
}

// sampled returns a channel closed once the estimator has a sample: until
// then rto is the initial guess.
func (e *rttEstimator) sampled() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.first == nil {
		e.first = make(chan struct{})
		if e.samples > 0 {
			close(e.first)
		}
	}
	return e.first
}

// initialRTO is the RTO before the first sample (RFC 6298's 1 s).
const initialRTO = time.Second

// rto is how long a send waits for its reply before the query is resent
// (or fails): initialRTO (at most max) until the first sample.
func (e *rttEstimator) rto() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.samples == 0 {
		return min(initialRTO, e.max)
	}
	return min(max(e.srtt+max(50*time.Millisecond, 4*e.rttvar), e.min), e.max)
}

func (e *rttEstimator) sample(rtt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.samples == 0 {
		e.srtt, e.rttvar = rtt, rtt/2
		if e.first != nil {
			close(e.first)
		}
	} else {
		dev := e.srtt - rtt
		if dev < 0 {
			dev = -dev
		}
		e.rttvar = (3*e.rttvar + dev) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.samples++
}

// resendDelay is the server's QueryResendDelay: fixed, or the adaptive RTO.
func (d *Node) resendDelay() time.Duration {
	if d.cfg.adaptiveTimeout {
		return d.rtt.rto()
	}
	return d.cfg.QueryTimeout
}

// query sends a query through srv and feeds the round-trip time of a reply
// to a single send to the RTT estimator.
func (d *Node) query(ctx context.Context, srv *server, addr anacrolix.Addr, q string, in anacrolix.QueryInput) anacrolix.QueryResult {
	start := time.Now() // a network measurement: the real clock
	res := srv.s.Query(ctx, addr, q, in)
	if res.Err == nil && res.Reply.R != nil && res.Writes == 1 {
		d.rtt.sample(time.Since(start))
	}
	return res
}

// QueryTimeout is how long a query now waits after each send before it is
// resent or fails: Config.QueryTimeout when it was set, else the adaptive
// timeout (see Config.QueryTimeout).
func (d *Node) QueryTimeout() time.Duration { return d.resendDelay() }

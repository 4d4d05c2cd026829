package dht

import (
	"context"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/traversal"
)

// A traversal query's soft timeout (libtorrent's "short timeout"): a
// get_peers query not answered one RTO after it was sent gives its
// traversal slot (one of alpha) to the next closest node, and goes on
// through its remaining tries in the background. A late reply still counts:
// its values are reported, its nodes join the traversal and its token makes
// it a node to announce to. Without it a dead node holds a slot for
// QueryTries × RTO — 2 s per dead node in a fresh swarm's first round,
// whose RTO is still the initial 1 s.
//
// Bound: at most alpha queries of a round run late at the same time (past
// that, a slow query keeps its slot, as before), so a round has at most
// 2·alpha queries in flight — on a CPU-starved machine, where every reply
// is late, soft timeouts must not turn into a flood of queries. A round
// has at most Limits.LookupQueries queries in all (late or not), each runs
// for at most QueryTries × RTO, and the round cancels what is left when it
// ends; a reply after that is dropped. Stats.QueriesLate and
// Stats.LateReplies count them.
//
// Two approximations, both on the side of more queries, never fewer: a late
// responder is not among the traversal's closest nodes (anacrolix offers no
// way to add it), so the traversal may query a farther node it would have
// skipped; and the soft timer starts when the query is handed to anacrolix,
// before its send limiter lets the first packet out.

// rtoSource is what a soft timeout is measured with: the current RTO and,
// while the RTO is still the initial one, a channel closed at the first
// RTT sample (nil when the RTO is fixed).
type rtoSource interface {
	rto() time.Duration
	sampled() <-chan struct{}
}

// fixedRTO is a Config.QueryTimeout that was set: the soft timeout is one
// send's timeout.
type fixedRTO time.Duration

func (f fixedRTO) rto() time.Duration     { return time.Duration(f) }
func (fixedRTO) sampled() <-chan struct{} { return nil }

// softSource is the node's rtoSource, or nil when every query is sent once
// (its soft timeout would be its timeout).
func (d *Node) softSource() rtoSource {
	if d.cfg.QueryTries <= 1 {
		return nil
	}
	if d.cfg.adaptiveTimeout {
		return &d.rtt
	}
	return fixedRTO(d.cfg.QueryTimeout)
}

// softLate is one round's set of queries that outlived their slot.
type softLate struct {
	max   int // at most this many late at once; 0: no limit
	mu    sync.Mutex
	n     int           // running late
	total int           // queries that went late
	ans   int           // late queries that got a reply
	ch    chan struct{} // a value whenever a late query ended (capacity 1)
	wg    sync.WaitGroup
}

// query runs do and returns its result — unless src's soft timeout passes
// first: then it returns an empty result at once and do goes on (under
// bg, not qctx, which ends with this call); onLate gets its result. With a
// nil src it is do(qctx).
func (l *softLate) query(qctx, bg context.Context, src rtoSource,
	do func(context.Context) traversal.QueryResult, onLate func(traversal.QueryResult)) traversal.QueryResult {
	if src == nil {
		return do(qctx)
	}
	l.mu.Lock()
	if l.ch == nil {
		l.ch = make(chan struct{}, 1)
	}
	l.mu.Unlock()
	var (
		mu        sync.Mutex
		abandoned bool // past the soft timeout: the result goes to onLate
		dropped   bool // the traversal stopped first: the result is dropped
		res       = make(chan traversal.QueryResult, 1)
	)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tr := do(bg)
		mu.Lock()
		if !abandoned {
			res <- tr
			mu.Unlock()
			return
		}
		drop := dropped
		mu.Unlock()
		if drop {
			return
		}
		answered := tr.ResponseFrom != nil && bg.Err() == nil
		if answered {
			onLate(tr)
		}
		l.mu.Lock()
		l.n--
		if answered {
			l.ans++
		}
		l.mu.Unlock()
		select {
		case l.ch <- struct{}{}:
		default:
		}
	}()
	start := time.Now() // a network measurement: the real clock
	t := time.NewTimer(src.rto())
	defer t.Stop()
	sampled := src.sampled()
	for {
		select {
		case tr := <-res:
			return tr
		case <-sampled:
			// The RTO was the initial guess; measure from the first sample.
			sampled = nil
			t.Reset(max(0, src.rto()-time.Since(start)))
			continue
		case <-t.C:
		case <-qctx.Done():
			// The traversal stopped (the round ends): nobody waits for
			// this query any more, late or not.
			mu.Lock()
			abandoned, dropped = true, true
			mu.Unlock()
			return traversal.QueryResult{}
		}
		mu.Lock()
		select {
		case tr := <-res:
			mu.Unlock()
			return tr
		default:
		}
		l.mu.Lock()
		if l.max > 0 && l.n >= l.max {
			// Enough late queries: this one keeps its slot.
			l.mu.Unlock()
			mu.Unlock()
			select {
			case tr := <-res:
				return tr
			case <-qctx.Done():
				mu.Lock()
				abandoned, dropped = true, true
				mu.Unlock()
				return traversal.QueryResult{}
			}
		}
		abandoned = true
		l.n++
		l.total++
		l.mu.Unlock()
		mu.Unlock()
		return traversal.QueryResult{}
	}
}

// pending is the number of late queries still running.
func (l *softLate) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// late is the number of queries that went late.
func (l *softLate) late() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// answered is the number of late queries that got a reply.
func (l *softLate) answered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ans
}

// changed has a value after a late query ended.
func (l *softLate) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		l.ch = make(chan struct{}, 1)
	}
	return l.ch
}

// wait returns when every query started by query has returned.
func (l *softLate) wait() { l.wg.Wait() }

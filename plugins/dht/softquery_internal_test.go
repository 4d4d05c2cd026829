package dht

import (
	"context"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
)

// testRTO is an rtoSource under the test's control: rto is d until
// first is closed, then after.
type testRTO struct {
	d, after time.Duration
	first    chan struct{}
}

func (r *testRTO) rto() time.Duration {
	select {
	case <-r.first:
		return r.after
	default:
		return r.d
	}
}
func (r *testRTO) sampled() <-chan struct{} { return r.first }

func reply(id byte) traversal.QueryResult {
	return traversal.QueryResult{ResponseFrom: &krpc.NodeInfo{ID: krpc.ID{id}}, ClosestData: "token"}
}

// TestSoftQueryAnsweredInTimeIsReturned: a reply before the soft timeout is
// the query's result, and nothing runs late.
func TestSoftQueryAnsweredInTimeIsReturned(t *testing.T) {
	var l softLate
	src := &testRTO{d: time.Hour, first: make(chan struct{})}
	tr := l.query(t.Context(), t.Context(), src, func(context.Context) traversal.QueryResult { return reply(1) },
		func(traversal.QueryResult) { t.Error("onLate for a reply in time") })
	if tr.ResponseFrom == nil || tr.ResponseFrom.ID[0] != 1 {
		t.Fatalf("result %+v, want the reply", tr)
	}
	l.wait()
	if l.pending() != 0 || l.answered() != 0 {
		t.Fatalf("pending %d answered %d, want 0 0", l.pending(), l.answered())
	}
}

// TestSoftQueryLateReplyCounts: past the soft timeout the query returns an
// empty result (its traversal slot is free) while the query goes on; its
// reply, when it comes, goes to onLate.
func TestSoftQueryLateReplyCounts(t *testing.T) {
	var l softLate
	src := &testRTO{d: 0, first: make(chan struct{})}
	release := make(chan struct{})
	got := make(chan traversal.QueryResult, 1)
	tr := l.query(t.Context(), t.Context(), src, func(context.Context) traversal.QueryResult {
		<-release
		return reply(2)
	}, func(tr traversal.QueryResult) { got <- tr })
	if tr.ResponseFrom != nil {
		t.Fatalf("result %+v before the reply, want empty", tr)
	}
	if n := l.pending(); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	close(release)
	<-l.changed()
	if r := <-got; r.ResponseFrom.ID[0] != 2 {
		t.Fatalf("late reply %+v", r)
	}
	l.wait()
	if l.pending() != 0 || l.answered() != 1 {
		t.Fatalf("pending %d answered %d, want 0 1", l.pending(), l.answered())
	}
}

// TestSoftQueryFirstSampleShortensTheWait: while the RTO is the initial
// guess, the first RTT sample recomputes the soft timeout from it.
func TestSoftQueryFirstSampleShortensTheWait(t *testing.T) {
	var l softLate
	src := &testRTO{d: time.Hour, after: 0, first: make(chan struct{})}
	release := make(chan struct{})
	done := make(chan traversal.QueryResult)
	go func() {
		done <- l.query(t.Context(), t.Context(), src, func(context.Context) traversal.QueryResult {
			<-release
			return reply(3)
		}, func(traversal.QueryResult) {})
	}()
	close(src.first) // the first sample: the RTO is now 0
	if tr := <-done; tr.ResponseFrom != nil {
		t.Fatalf("result %+v, want empty (soft timeout)", tr)
	}
	close(release)
	l.wait()
}

// TestSoftQueryBackgroundEndsWithTheRound: a late query runs under the
// round's context and ends when the round cancels it; a reply after that
// is not delivered.
func TestSoftQueryBackgroundEndsWithTheRound(t *testing.T) {
	var l softLate
	bg, cancel := context.WithCancel(t.Context())
	src := &testRTO{d: 0, first: make(chan struct{})}
	l.query(t.Context(), bg, src, func(ctx context.Context) traversal.QueryResult {
		<-ctx.Done()
		return reply(4)
	}, func(traversal.QueryResult) { t.Error("onLate after the round ended") })
	cancel()
	l.wait()
	if l.pending() != 0 {
		t.Fatalf("pending %d after the round, want 0", l.pending())
	}
}

// TestSoftQueryOnlyWithRetries: with one try per query the soft timeout
// would be the timeout: queries run as before.
func TestSoftQueryOnlyWithRetries(t *testing.T) {
	d := &Node{cfg: Config{QueryTries: 1}}
	if d.softSource() != nil {
		t.Fatal("a soft timeout with QueryTries 1")
	}
	d.cfg.QueryTries, d.cfg.QueryTimeout = 2, time.Second
	if s := d.softSource(); s == nil || s.rto() != time.Second || s.sampled() != nil {
		t.Fatalf("fixed QueryTimeout: soft source %v", s)
	}
}

// TestSoftQueryLateQueriesAreBounded: past max late queries, a slow query
// keeps its traversal slot until its reply, so a starved machine, where
// every reply is late, does not send more queries at once than alpha +
// max.
func TestSoftQueryLateQueriesAreBounded(t *testing.T) {
	l := softLate{max: 1}
	src := &testRTO{d: 0, first: make(chan struct{})}
	release1 := make(chan struct{})
	if tr := l.query(t.Context(), t.Context(), src, func(context.Context) traversal.QueryResult {
		<-release1
		return reply(5)
	}, func(traversal.QueryResult) {}); tr.ResponseFrom != nil {
		t.Fatalf("first slow query: %+v, want empty (late)", tr)
	}
	release2 := make(chan struct{})
	done := make(chan traversal.QueryResult)
	go func() {
		done <- l.query(t.Context(), t.Context(), src, func(context.Context) traversal.QueryResult {
			<-release2
			return reply(6)
		}, func(traversal.QueryResult) { t.Error("onLate for a query that kept its slot") })
	}()
	close(release2)
	if tr := <-done; tr.ResponseFrom == nil || tr.ResponseFrom.ID[0] != 6 {
		t.Fatalf("second slow query: %+v, want its reply (it kept its slot)", tr)
	}
	close(release1)
	l.wait()
	if l.pending() != 0 || l.answered() != 1 {
		t.Fatalf("pending %d answered %d, want 0 1", l.pending(), l.answered())
	}
}

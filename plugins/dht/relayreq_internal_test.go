package dht

import (
	"net/netip"
	"testing"
	"time"
)

// TestRelayRequestLimitsPerSource: one referrer IP spending the announcer's
// relay-request budget (distinct infohashes, no gap) gets at most
// RelayRequestSourceBurst accepted, and another referrer's request is still
// accepted at the same instant.
func TestRelayRequestLimitsPerSource(t *testing.T) {
	r := newRelayRequests()
	calls := 0
	r.handler = func([20]byte) { calls++ }
	now := time.Unix(1e9, 0)
	spammer, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	ok := 0
	for i := range 100 {
		var ih [20]byte
		ih[0] = byte(i)
		if v, _ := r.admit(ih, spammer, now); v == relayReqAccept {
			ok++
		}
	}
	if ok > RelayRequestSourceBurst {
		t.Fatalf("one source got %d requests accepted at once, want at most %d", ok, RelayRequestSourceBurst)
	}
	if v, _ := r.admit([20]byte{0xff}, other, now); v != relayReqAccept {
		t.Fatalf("another source's request: verdict %d, want accepted", v)
	}
	// a demand started less than RelayRequestGap ago is not started again
	if v, h := r.admit([20]byte{0xff}, netip.MustParseAddr("192.0.2.3"), now.Add(time.Second)); v != relayReqActive || h != nil {
		t.Fatalf("repeated request: verdict %d, want active (no handler call)", v)
	}
}

// TestPruneGapKeepsRecentEntries: a full gap map forgets what is older
// than RelayRequestGap and keeps what still suppresses.
func TestPruneGapKeepsRecentEntries(t *testing.T) {
	now := time.Unix(1e9, 0)
	m := map[int]time.Time{}
	for i := range maxLimiterEntries {
		m[i] = now.Add(-time.Hour)
	}
	m[-1] = now
	pruneGap(m, now)
	if len(m) != 1 || !recent(m, -1, now) {
		t.Fatalf("after pruning: %d entries, recent kept %v", len(m), recent(m, -1, now))
	}
}

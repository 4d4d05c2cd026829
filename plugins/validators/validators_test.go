package validators_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

var ctx = context.Background()

func p(host string, port int) framework.Peer { return framework.Peer{Host: host, Port: port} }

func dhtPeer(host string, port int) framework.Peer {
	return framework.Peer{Host: host, Port: port, Referrer: &framework.Referrer{Host: "198.51.100.1", Port: 6881}}
}

func TestCIDRDenyWinsAndAllowListIsExclusive(t *testing.T) {
	v, err := validators.NewCIDR(validators.CIDRConfig{
		Allow: []string{"192.0.2.0/24", "2001:db8::/32"},
		Deny:  []string{"192.0.2.128/25", "2001:db8::dead"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.200", false},          // denied inside the allowed range
		{"198.51.100.1", false},         // not allowed
		{"::ffff:192.0.2.1", true},      // mapped: unmapped first
		{"2001:db8::1", true},           //
		{"2001:db8::dead", false},       // single address denied
		{"fe80::1%eth0", false},         // zone dropped, not allowed
		{"peer.example", false},         // a name cannot match an allow list
		{"[2001:db8::2]", true},         // bracketed
		{"2001:0db8:0000::0001", true},  // non-canonical
		{"192.0.2.128", false},          // deny boundary
		{"192.0.2.127", true},           // just below it
		{"::ffff:192.0.2.130", false},   // mapped into the denied half
		{"2001:db8:ffff:ffff::1", true}, // end of the /32
		{"2001:db9::1", false},          // just outside
	} {
		err := v.Validate(ctx, p(tc.host, 1))
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.host, err, tc.ok)
		}
		if err != nil && !errors.Is(err, validators.ErrNotAllowed) {
			t.Errorf("%s: %v does not wrap ErrNotAllowed", tc.host, err)
		}
	}
}

func TestCIDRDenyOnlyLetsHostNamesThrough(t *testing.T) {
	v, err := validators.NewCIDR(validators.CIDRConfig{Deny: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(ctx, p("peer.example", 1)); err != nil {
		t.Errorf("host name with a deny-only list: %v", err)
	}
	if err := v.Validate(ctx, p("10.2.3.4", 1)); err == nil {
		t.Errorf("denied address accepted")
	}
	if err := v.Validate(ctx, p("11.0.0.1", 1)); err != nil {
		t.Errorf("address outside the deny list: %v", err)
	}
}

func TestCIDRBadEntriesAreClearErrors(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "nope", "10.0.0.1/8/8", "fe80::1%eth0", "::ffff:1.2.3.4/64"} {
		_, err := validators.NewCIDR(validators.CIDRConfig{Allow: []string{bad}})
		if !errors.Is(err, framework.ErrInvalidOption) {
			t.Errorf("allow %q: %v, want ErrInvalidOption", bad, err)
		}
	}
	// a prefix with host bits is masked, not refused
	v, err := validators.NewCIDR(validators.CIDRConfig{Deny: []string{"10.1.2.3/8"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Validate(ctx, p("10.200.0.1", 1)) == nil {
		t.Error("10.1.2.3/8 did not deny 10.200.0.1")
	}
}

func TestDHTPrivateRefusesInternalAddressesOnlyFromTheDHT(t *testing.T) {
	f, err := validators.NewDHTPrivate(validators.DHTPrivateConfig{Exempt: []string{"10.99.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	internal := []string{"127.0.0.1", "127.8.9.10", "::1", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "0.0.0.0", "0.1.2.3", "::",
		"100.64.0.1", "224.0.0.1", "ff02::1", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}
	public := []string{"203.0.113.5", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8"}
	for _, h := range internal {
		err := f.Validate(ctx, dhtPeer(h, 4000))
		if !errors.Is(err, validators.ErrInternalFromDHT) {
			t.Errorf("%s from the DHT: %v, want ErrInternalFromDHT", h, err)
		}
		lan := p(h, 4000)
		lan.Local = true
		if err := f.Validate(ctx, lan); err != nil {
			t.Errorf("%s from the LAN: %v", h, err)
		}
		if err := f.Validate(ctx, p(h, 4000)); err != nil {
			t.Errorf("%s configured (static): %v", h, err)
		}
	}
	for _, h := range public {
		if err := f.Validate(ctx, dhtPeer(h, 4000)); err != nil {
			t.Errorf("public %s from the DHT: %v", h, err)
		}
	}
	if err := f.Validate(ctx, dhtPeer("10.99.1.2", 4000)); err != nil {
		t.Errorf("exempt prefix: %v", err)
	}
	if err := f.Validate(ctx, dhtPeer("peer.example", 4000)); err == nil {
		t.Error("a host name from the DHT was accepted")
	}
	if _, err := validators.NewDHTPrivate(validators.DHTPrivateConfig{Exempt: []string{"bogus"}}); !errors.Is(err, framework.ErrInvalidOption) {
		t.Errorf("bad exempt entry: %v", err)
	}
}

func TestIsInternal(t *testing.T) {
	if !validators.IsInternal(netip.MustParseAddr("::ffff:192.168.0.1")) || validators.IsInternal(netip.MustParseAddr("1.1.1.1")) {
		t.Fatal("IsInternal")
	}
}

// clock is a fake clock moved by hand: the rate limit is tested without
// sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRateLimitTokenBucketPerHost(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	r, err := validators.NewRateLimit(validators.RateLimitConfig{Every: time.Second, Burst: 3, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	allow := func(host string, port int) bool { return r.Validate(ctx, p(host, port)) == nil }
	for i := range 3 {
		if !allow("192.0.2.1", 1000+i) {
			t.Fatalf("peer %d of the burst refused", i)
		}
	}
	if err := r.Validate(ctx, p("192.0.2.1", 2000)); !errors.Is(err, validators.ErrRateLimited) {
		t.Fatalf("4th peer at once: %v, want ErrRateLimited", err)
	}
	// the same host written differently is the same host
	if allow("::ffff:192.0.2.1", 2001) {
		t.Fatal("mapped form of a limited host was admitted")
	}
	// other hosts are unaffected
	if !allow("192.0.2.2", 1000) || !allow("PEER.example", 1) {
		t.Fatal("another host was limited")
	}
	if allow("peer.EXAMPLE", 2) != true || allow("peer.example", 3) != true || allow("peer.example", 4) {
		t.Fatal("host names are not one case-insensitive host")
	}
	clk.Add(999 * time.Millisecond)
	if allow("192.0.2.1", 2002) {
		t.Fatal("admitted before a token was earned")
	}
	clk.Add(time.Millisecond)
	if !allow("192.0.2.1", 2003) {
		t.Fatal("refused after one interval")
	}
	if allow("192.0.2.1", 2004) {
		t.Fatal("one interval earned two tokens")
	}
	clk.Add(time.Hour)
	for i := range 3 {
		if !allow("192.0.2.1", 3000+i) {
			t.Fatalf("after a long pause, peer %d of the burst refused", i)
		}
	}
	if allow("192.0.2.1", 3010) {
		t.Fatal("the bucket grew beyond its burst")
	}
}

func TestRateLimitForgetsRefilledHostsAndFailsClosedWhenFull(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	r, err := validators.NewRateLimit(validators.RateLimitConfig{Every: time.Second, Burst: 1, MaxHosts: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	must := func(host string, ok bool) {
		t.Helper()
		if err := r.Validate(ctx, p(host, 1)); (err == nil) != ok {
			t.Fatalf("%s: %v, want ok=%v", host, err, ok)
		}
	}
	must("192.0.2.1", true)
	must("192.0.2.2", true)
	must("192.0.2.3", false) // table full of limited hosts: fail closed
	must("192.0.2.1", false) // still limited, not reset by the flood
	clk.Add(time.Second)     // both buckets refill
	must("192.0.2.3", true)  // refilled hosts are forgotten to make room
	if n := r.Hosts(); n > 2 {
		t.Fatalf("tracking %d hosts, max 2", n)
	}
	if _, err := validators.NewRateLimit(validators.RateLimitConfig{Burst: -1}); !errors.Is(err, framework.ErrInvalidOption) {
		t.Fatalf("negative burst: %v", err)
	}
}

func TestRateLimitConcurrentAdmissionsNeverExceedTheBurst(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	r, _ := validators.NewRateLimit(validators.RateLimitConfig{Every: time.Minute, Burst: 5, Now: clk.Now})
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.Validate(ctx, p("192.0.2.1", 1000+i)) == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted != 5 {
		t.Fatalf("admitted %d of 64 concurrent peers, want the burst of 5", admitted)
	}
}

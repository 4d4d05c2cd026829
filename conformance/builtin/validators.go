package builtin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

func peer(host string, port int) framework.Peer { return framework.Peer{Host: host, Port: port} }

func fromDHT(host string, port int) framework.Peer {
	return framework.Peer{Host: host, Port: port, Referrer: &framework.Referrer{Host: "198.51.100.1", Port: 6881, ID: make([]byte, 20)}}
}

// CIDR is the factory of the "cidr" validator: allow 127.0.0.0/8 and
// 2001:db8::/32, deny 127.0.0.66 and 2001:db8:bad::/48.
func CIDR() conformance.ValidatorFactory {
	return func(*conformance.T) (conformance.ValidatorCase, error) {
		v, err := validators.NewCIDR(validators.CIDRConfig{
			Allow: []string{"127.0.0.0/8", "2001:db8::/32"},
			Deny:  []string{"127.0.0.66", "2001:db8:bad::/48"},
		})
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		return conformance.ValidatorCase{
			Validator: v,
			Accept:    []framework.Peer{peer("127.0.0.1", 4001), peer("2001:db8::7", 4002), fromDHT("127.0.0.2", 4003)},
			Reject:    []framework.Peer{peer("127.0.0.66", 4004), peer("10.0.0.1", 4005), peer("2001:db8:bad::1", 4006), peer("peer.example", 4007)},
		}, nil
	}
}

// DHTPrivate is the factory of the "dht-private" filter.
func DHTPrivate() conformance.ValidatorFactory {
	return func(*conformance.T) (conformance.ValidatorCase, error) {
		v, err := validators.NewDHTPrivate(validators.DHTPrivateConfig{})
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		lan := peer("192.168.1.20", 4001)
		lan.Local = true
		return conformance.ValidatorCase{
			Validator: v,
			Accept:    []framework.Peer{lan, fromDHT("203.0.113.5", 4002), peer("127.0.0.1", 4003), fromDHT("2001:db8::5", 4004)},
			Reject: []framework.Peer{
				fromDHT("127.0.0.1", 4005), fromDHT("10.1.2.3", 4006), fromDHT("192.168.0.1", 4007),
				fromDHT("169.254.0.1", 4008), fromDHT("fe80::1", 4009), fromDHT("::1", 4010), fromDHT("0.0.0.0", 4011),
			},
		}, nil
	}
}

// fakeClock is a frozen clock that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// RateLimit is the factory of the "ratelimit" validator, on a frozen clock:
// the factory spends the whole burst of 127.0.0.9 first, so its peers stay
// rejected for the whole check.
func RateLimit() conformance.ValidatorFactory {
	return func(t *conformance.T) (conformance.ValidatorCase, error) {
		clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
		v, err := validators.NewRateLimit(validators.RateLimitConfig{Every: time.Second, Burst: 2, Now: clk.Now})
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		for range 2 {
			if err := v.Validate(context.Background(), peer("127.0.0.9", 1)); err != nil {
				return conformance.ValidatorCase{}, fmt.Errorf("spending the burst: %w", err)
			}
		}
		return conformance.ValidatorCase{
			Validator: v,
			Accept:    []framework.Peer{peer("127.0.0.1", 4001), peer("127.0.0.2", 4002), peer("::1", 4003)},
			Reject:    []framework.Peer{peer("127.0.0.9", 4004), peer("127.0.0.9", 4005)},
		}, nil
	}
}

// BanList is the factory of the "banlist" validator: a ban file in a
// temporary directory, written by one BanList and loaded by the one under
// test (so the bans survived a restart).
func BanList() conformance.ValidatorFactory {
	return func(t *conformance.T) (conformance.ValidatorCase, error) {
		dir, err := os.MkdirTemp("", "banlist-conformance-")
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "bans")
		first, err := validators.OpenBanList(validators.BanListConfig{Path: path})
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		for _, target := range []string{"127.0.0.66", "10.0.0.0/8", "127.0.0.1:4444", "[::1]:4445", "bad.example"} {
			if err := first.Ban(target, "conformance"); err != nil {
				return conformance.ValidatorCase{}, err
			}
		}
		v, err := validators.OpenBanList(validators.BanListConfig{Path: path})
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		return conformance.ValidatorCase{
			Validator: v,
			Accept:    []framework.Peer{peer("127.0.0.1", 4001), peer("::1", 4002), peer("good.example", 4003)},
			Reject: []framework.Peer{peer("127.0.0.66", 4004), peer("10.9.8.7", 4005), peer("127.0.0.1", 4444),
				peer("::1", 4445), peer("BAD.example", 4006)},
		}, nil
	}
}

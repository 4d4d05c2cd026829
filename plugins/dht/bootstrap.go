package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	anacrolix "github.com/anacrolix/dht/v2"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// parseHostPort splits a bootstrap address "host:port": host is an IP
// literal or a DNS name, port is 1–65535.
func parseHostPort(s string) (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	if strings.ContainsAny(host, " \t\r\n\x00/") || len(host) > 253 {
		return "", 0, errors.New("bad host")
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, p, nil
}

// resolveBootstrap resolves the bootstrap list; IP literals need no DNS.
func resolveBootstrap(hostports []string) ([]anacrolix.Addr, error) {
	var addrs []anacrolix.Addr
	var lastErr error
	for _, hp := range hostports {
		host, port, err := parseHostPort(hp)
		if err != nil {
			lastErr = err
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, anacrolix.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port)))))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, anacrolix.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port)))))
		}
	}
	if len(addrs) == 0 {
		if lastErr == nil {
			lastErr = errors.New("no bootstrap nodes")
		}
		return nil, fmt.Errorf("dht bootstrap: %w", lastErr)
	}
	return addrs, nil
}

// privateNetwork reports whether the bootstrap list makes this DHT a
// private network: it is not empty and every node is at a non-global IP
// address (loopback, RFC 1918, ULA, link-local, CGNAT…; "localhost" counts
// as loopback). A host name, or any global address, makes it public. The
// swarm then dials peers at non-global addresses found through it
// (framework.Peer.PrivateNet).
func privateNetwork(bootstrap []string) bool {
	if len(bootstrap) == 0 {
		return false
	}
	for _, b := range bootstrap {
		host, _, err := parseHostPort(b)
		if err != nil {
			return false
		}
		if strings.EqualFold(host, "localhost") {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || framework.IsGlobalAddr(ip) {
			return false
		}
	}
	return true
}

//go:build linux

package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/internal/testenv"
)

// NAT is a router that masquerades a private network behind its address on
// a public one.
type NAT struct {
	Router *Host
	LAN    *Network
	Public *Iface // the router's link to the public network
	Inside *Iface // the router's link to the LAN
}

// Mapping is how a NAT maps an inside endpoint to outside ports, named as
// RFC 4787 (section 4.1) names it.
type Mapping int

const (
	// EndpointIndependentMapping reuses one mapping (the same outside
	// ip:port) for every destination: the lab's default, which keeps the
	// source port when it can.
	EndpointIndependentMapping Mapping = iota
	// AddressAndPortDependentMapping makes a new mapping (a random port)
	// for every destination ip:port: a "symmetric" NAT (nftables
	// "masquerade random"). UDP hole punching cannot work through it.
	AddressAndPortDependentMapping
)

// String returns the RFC 4787 abbreviation: "EIM" or "APDM".
func (m Mapping) String() string {
	if m == AddressAndPortDependentMapping {
		return "APDM"
	}
	return "EIM"
}

// Filtering is which inbound packets a NAT lets through a mapping (RFC
// 4787 section 5). The lab's routers filter with conntrack, which admits
// only replies from the ip:port the inside host sent to:
// address-and-port-dependent filtering, the only kind they implement
// (endpoint-independent and address-dependent filtering need full-cone
// rules nftables does not have).
type Filtering int

// AddressAndPortDependentFiltering: only packets from an ip:port the
// inside host sent to pass (the lab's routers).
const AddressAndPortDependentFiltering Filtering = 0

// String returns the RFC 4787 abbreviation: "APDF".
func (Filtering) String() string { return "APDF" }

// NATConfig configures AddNAT.
type NATConfig struct {
	// Mapping is the NAT's mapping behaviour (default
	// EndpointIndependentMapping); Filtering is always
	// AddressAndPortDependentFiltering.
	Mapping   Mapping
	Filtering Filtering
	// Symmetric is Mapping: AddressAndPortDependentMapping (kept for the
	// tests that say it so): each destination sees the host at another
	// port, so UDP hole punching cannot work. The default keeps the source
	// port when it can (endpoint-independent mapping with
	// address-and-port-dependent filtering: a port-restricted cone).
	Symmetric bool
	LAN       NetworkConfig
}

// AddNAT creates a router named name on public and a new private network
// behind it, and masquerades the private network's traffic (nftables).
// Hosts joined with ConnectBehind reach the public network through it;
// nothing on the public network can reach them unless they sent first.
//
// Like a home router, it drops unsolicited packets from the public side to
// itself. That matters for hole punching: a packet that reached the router
// before its host sent would otherwise leave a conntrack entry that makes
// the host's own packet to that peer take another port.
func (l *Lab) AddNAT(name string, public *Network, cfg NATConfig) *NAT {
	l.tb.Helper()
	testenv.Require(l.tb, testenv.Tool("nft", "nftables"))
	r := l.AddHost(name)
	pub := l.Connect(r, public)
	lan := l.AddNetwork(name+"-lan", cfg.LAN)
	in := l.Connect(r, lan)
	l.must(r.EnableForwarding())
	masq := "masquerade"
	if cfg.Symmetric || cfg.Mapping == AddressAndPortDependentMapping {
		masq = "masquerade random"
	}
	rules := fmt.Sprintf(`table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %q %s
	}
}
table ip filter {
	chain forwarding {
		type filter hook forward priority filter; policy drop;
		iifname %q oifname %q accept
		ct state established,related accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname %q ct state new drop
	}
}
`, pub.Name, masq, in.Name, pub.Name, pub.Name)
	cmd := r.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.must(fmt.Errorf("netlab: nft in %s: %v: %s", r.Name, err, out))
	}
	return &NAT{Router: r, LAN: lan, Public: pub, Inside: in}
}

// ConnectBehind creates a host on the NAT's private network whose default
// route goes through the NAT router.
func (l *Lab) ConnectBehind(name string, n *NAT) *Host {
	h := l.AddHost(name)
	l.Connect(h, n.LAN)
	l.must(h.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), n.Inside.IPv4.Addr()))
	return h
}

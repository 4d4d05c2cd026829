package framework

import (
	"bytes"
	"fmt"
	"net"
	"strconv"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// Referrer is the DHT node that told us about a peer. Transports that hole
// punch (uTP) relay through it.
type Referrer struct {
	Host string // IP address of the node
	Port int    // UDP port of the node
	ID   []byte // the node's 20-byte DHT id
}

// Peer is a discovered connection candidate: the "peer" object of the seed.
type Peer struct {
	Host     string    // IP address (or host name for static peers)
	Port     int       // TCP and uTP port
	Local    bool      // found on the LAN
	Referrer *Referrer // nil unless found through the DHT
	Topic    Topic     // the topic the peer was discovered under
	// PrivateNet is set by a discovery whose network is itself private, so
	// that a non-global address (loopback, RFC 1918, ULA, link-local…) is
	// meant to be dialled: a DHT whose bootstrap nodes are all non-global
	// (a testnet, a private deployment) and the operator's static list set
	// it. Without it such a peer is rejected with [ErrPrivateAddress]
	// unless the operator opts in ([WithAllowPrivatePeers]).
	PrivateNet bool
	// Key, when not zero, is the public key the peer must prove: a session
	// that proves another key is refused inside the handshake
	// ([ErrWrongKey]), before anything is reported. The peers found for
	// [Swarm.JoinPeer] carry the joined key; set it on a [Swarm.Connect]
	// to pin the key of the peer dialled (not in plaintext mode).
	Key secure.PublicKey
}

// Addr returns "host:port", bracketing IPv6 hosts.
func (p Peer) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// String implements fmt.Stringer.
func (p Peer) String() string {
	s := p.Addr() + "@" + p.Topic.Short()
	if p.Local {
		s += " (local)"
	}
	if p.Referrer != nil {
		s += " via " + net.JoinHostPort(p.Referrer.Host, strconv.Itoa(p.Referrer.Port))
	}
	return s
}

// Validate reports whether the peer can be dialled at all: a non-empty host
// without spaces or NUL bytes and a port in 1..65535. It wraps [ErrInvalidPeer].
func (p Peer) Validate() error {
	if p.Host == "" {
		return fmt.Errorf("%w: empty host", ErrInvalidPeer)
	}
	if len(p.Host) > 253 || bytes.ContainsAny([]byte(p.Host), " \x00\t\r\n") {
		return fmt.Errorf("%w: bad host %q", ErrInvalidPeer, abbrev(p.Host))
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("%w: port %d out of range 1-65535", ErrInvalidPeer, p.Port)
	}
	return nil
}

// ParsePeerAddr parses "host:port" into a Peer for topic, with a clear error
// for anything that cannot be dialled.
func ParsePeerAddr(addr string, topic Topic) (Peer, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return Peer{}, fmt.Errorf("%w: %q: %v", ErrInvalidPeer, abbrev(addr), err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return Peer{}, fmt.Errorf("%w: %q: port %q is not a number", ErrInvalidPeer, abbrev(addr), portStr)
	}
	p := Peer{Host: host, Port: port, Topic: topic}
	if err := p.Validate(); err != nil {
		return Peer{}, fmt.Errorf("%q: %w", abbrev(addr), err)
	}
	return p, nil
}

package wire

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/dwebswarm/dwebswarm-go/framework"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// This file converts between framework values and their wire form. Every
// decoder validates what the other side sent: a plugin is another program,
// and whatever it replies must end as a value or an error wrapping
// ErrBadReply, never a panic.

// MaxReferrerID bounds a referrer's node id (a DHT id is 20 bytes).
const MaxReferrerID = 64

// PeerToProto is the wire form of p.
func PeerToProto(p framework.Peer) *pb.Peer {
	out := &pb.Peer{Host: p.Host, Port: int32(p.Port), Local: p.Local, PrivateNet: p.PrivateNet, Topic: append([]byte(nil), p.Topic[:]...)}
	if r := p.Referrer; r != nil {
		out.Referrer = &pb.Referrer{Host: r.Host, Port: int32(r.Port), Id: append([]byte(nil), r.ID...)}
	}
	return out
}

// PeerFromProto decodes and validates a peer: a dialable host and port, a
// 32-byte topic, and a sane referrer when there is one.
func PeerFromProto(m *pb.Peer) (framework.Peer, error) {
	if m == nil {
		return framework.Peer{}, BadReply("missing peer")
	}
	topic, err := framework.TopicFromBytes(m.GetTopic())
	if err != nil {
		return framework.Peer{}, BadReply("peer topic: %v", err)
	}
	p := framework.Peer{Host: m.GetHost(), Port: int(m.GetPort()), Local: m.GetLocal(), PrivateNet: m.GetPrivateNet(), Topic: topic}
	if err := p.Validate(); err != nil {
		return framework.Peer{}, BadReply("peer: %v", err)
	}
	if r := m.GetReferrer(); r != nil {
		ref := framework.Referrer{Host: r.GetHost(), Port: int(r.GetPort())}
		if err := (framework.Peer{Host: ref.Host, Port: ref.Port}).Validate(); err != nil {
			return framework.Peer{}, BadReply("peer referrer: %v", err)
		}
		if len(r.GetId()) > MaxReferrerID {
			return framework.Peer{}, BadReply("peer referrer id of %d bytes", len(r.GetId()))
		}
		ref.ID = append([]byte(nil), r.GetId()...)
		p.Referrer = &ref
	}
	return p, nil
}

// DecodePeerFor decodes a peer a discovery reported for topic: it must carry
// exactly that topic (topics are isolated).
func DecodePeerFor(m *pb.Peer, topic framework.Topic) (framework.Peer, error) {
	p, err := PeerFromProto(m)
	if err != nil {
		return p, err
	}
	if p.Topic != topic {
		return framework.Peer{}, BadReply("peer %s reported for topic %s under topic %s", p.Addr(), p.Topic.Short(), topic.Short())
	}
	return p, nil
}

// AddrToProto is the wire form of a (nil for nil).
func AddrToProto(a net.Addr) *pb.Addr {
	if a == nil {
		return nil
	}
	return &pb.Addr{Network: a.Network(), Address: a.String()}
}

// remoteAddr is a net.Addr rebuilt from the wire when it is not an IP address.
type remoteAddr struct{ network, address string }

func (a remoteAddr) Network() string { return a.network }
func (a remoteAddr) String() string  { return a.address }

// AddrFromProto rebuilds an address: a *net.TCPAddr or *net.UDPAddr for
// IP:port addresses of those networks, a *net.UnixAddr for unix networks,
// otherwise an opaque address. Empty or oversized fields are errors.
func AddrFromProto(m *pb.Addr) (net.Addr, error) {
	if m == nil {
		return nil, BadReply("missing address")
	}
	network, address := m.GetNetwork(), m.GetAddress()
	if network == "" || len(network) > 32 || len(address) > 512 {
		return nil, BadReply("bad address %q/%q", Clip(network, 40), Clip(address, 80))
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return nil, BadReply("bad %s address %q: %v", network, Clip(address, 80), err)
		}
		if network[0] == 't' {
			return net.TCPAddrFromAddrPort(ap), nil
		}
		return net.UDPAddrFromAddrPort(ap), nil
	case "unix", "unixgram", "unixpacket":
		return &net.UnixAddr{Net: network, Name: address}, nil
	}
	if address == "" {
		return nil, BadReply("empty %s address", Clip(network, 40))
	}
	return remoteAddr{network, address}, nil
}

// AddrPort returns the port of an address, 0 if it has none.
func AddrPort(a net.Addr) int {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.Port
	case *net.UDPAddr:
		return v.Port
	}
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// CheckHandoff validates a connection hand-off against the request's token
// and decodes its addresses.
func CheckHandoff(h *pb.ConnHandoff, token uint64) (kind pb.Handoff, local, remote net.Addr, err error) {
	if h == nil {
		return 0, nil, nil, BadReply("reply has neither a connection nor an error")
	}
	if h.GetToken() != token {
		return 0, nil, nil, BadReply("connection token %d, want %d", h.GetToken(), token)
	}
	kind = h.GetKind()
	if kind != pb.Handoff_HANDOFF_FD && kind != pb.Handoff_HANDOFF_RELAY {
		return 0, nil, nil, BadReply("connection hand-off kind %v", kind)
	}
	if local, err = AddrFromProto(h.GetLocal()); err != nil {
		return 0, nil, nil, err
	}
	if remote, err = AddrFromProto(h.GetRemote()); err != nil {
		return 0, nil, nil, err
	}
	return kind, local, remote, nil
}

// CheckInfo validates a plugin's self-description against the kind the host
// asked for.
func CheckInfo(info *pb.PluginInfo, kind string) error {
	if info == nil {
		return BadReply("empty plugin info")
	}
	if info.GetProtocolVersion() != ProtocolVersion {
		return BadReply("plugin info says protocol version %d, handshake negotiated %d", info.GetProtocolVersion(), ProtocolVersion)
	}
	if info.GetKind() != kind {
		return BadReply("plugin info says kind %q, want %q", Clip(info.GetKind(), 40), kind)
	}
	n := info.GetName()
	if n == "" || len(n) > 64 {
		return BadReply("plugin name %q: want 1 to 64 characters", Clip(n, 80))
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f {
			return BadReply("plugin name %q has spaces or control characters", n)
		}
	}
	return nil
}

// MaxPublicAddrs bounds the public addresses a connectivity report
// carries: the plugin sends at most this many, the host refuses more.
const MaxPublicAddrs = 64

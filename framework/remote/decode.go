package remote

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// This file converts between framework values and their wire form. Every
// decoder validates what a plugin sent: a plugin is another program, and
// whatever it replies must end as a value or an error, never a panic.

// maxReferrerID bounds a referrer's node id (a DHT id is 20 bytes).
const maxReferrerID = 64

func peerToProto(p framework.Peer) *pb.Peer {
	out := &pb.Peer{Host: p.Host, Port: int32(p.Port), Local: p.Local, PrivateNet: p.PrivateNet, Topic: append([]byte(nil), p.Topic[:]...)}
	if r := p.Referrer; r != nil {
		out.Referrer = &pb.Referrer{Host: r.Host, Port: int32(r.Port), Id: append([]byte(nil), r.ID...)}
	}
	return out
}

// peerFromProto decodes and validates a peer: a dialable host and port, a
// 32-byte topic, and a sane referrer when there is one.
func peerFromProto(m *pb.Peer) (framework.Peer, error) {
	if m == nil {
		return framework.Peer{}, badReply("missing peer")
	}
	topic, err := framework.TopicFromBytes(m.GetTopic())
	if err != nil {
		return framework.Peer{}, badReply("peer topic: %v", err)
	}
	p := framework.Peer{Host: m.GetHost(), Port: int(m.GetPort()), Local: m.GetLocal(), PrivateNet: m.GetPrivateNet(), Topic: topic}
	if err := p.Validate(); err != nil {
		return framework.Peer{}, badReply("peer: %v", err)
	}
	if r := m.GetReferrer(); r != nil {
		ref := framework.Referrer{Host: r.GetHost(), Port: int(r.GetPort())}
		if err := (framework.Peer{Host: ref.Host, Port: ref.Port}).Validate(); err != nil {
			return framework.Peer{}, badReply("peer referrer: %v", err)
		}
		if len(r.GetId()) > maxReferrerID {
			return framework.Peer{}, badReply("peer referrer id of %d bytes", len(r.GetId()))
		}
		ref.ID = append([]byte(nil), r.GetId()...)
		p.Referrer = &ref
	}
	return p, nil
}

// decodePeerFor decodes a peer a discovery reported for topic: it must carry
// exactly that topic (topics are isolated).
func decodePeerFor(m *pb.Peer, topic framework.Topic) (framework.Peer, error) {
	p, err := peerFromProto(m)
	if err != nil {
		return p, err
	}
	if p.Topic != topic {
		return framework.Peer{}, badReply("peer %s reported for topic %s under topic %s", p.Addr(), p.Topic.Short(), topic.Short())
	}
	return p, nil
}

func addrToProto(a net.Addr) *pb.Addr {
	if a == nil {
		return nil
	}
	return &pb.Addr{Network: a.Network(), Address: a.String()}
}

// remoteAddr is a net.Addr rebuilt from the wire when it is not an IP address.
type remoteAddr struct{ network, address string }

func (a remoteAddr) Network() string { return a.network }
func (a remoteAddr) String() string  { return a.address }

// addrFromProto rebuilds an address: a *net.TCPAddr or *net.UDPAddr for
// IP:port addresses of those networks, a *net.UnixAddr for unix networks,
// otherwise an opaque address. Empty or oversized fields are errors.
func addrFromProto(m *pb.Addr) (net.Addr, error) {
	if m == nil {
		return nil, badReply("missing address")
	}
	network, address := m.GetNetwork(), m.GetAddress()
	if network == "" || len(network) > 32 || len(address) > 512 {
		return nil, badReply("bad address %q/%q", clip(network, 40), clip(address, 80))
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return nil, badReply("bad %s address %q: %v", network, clip(address, 80), err)
		}
		if network[0] == 't' {
			return net.TCPAddrFromAddrPort(ap), nil
		}
		return net.UDPAddrFromAddrPort(ap), nil
	case "unix", "unixgram", "unixpacket":
		return &net.UnixAddr{Net: network, Name: address}, nil
	}
	if address == "" {
		return nil, badReply("empty %s address", clip(network, 40))
	}
	return remoteAddr{network, address}, nil
}

// addrPort returns the port of an address, 0 if it has none.
func addrPort(a net.Addr) int {
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

// checkHandoff validates a connection hand-off against the request's token
// and decodes its addresses.
func checkHandoff(h *pb.ConnHandoff, token uint64) (kind pb.Handoff, local, remote net.Addr, err error) {
	if h == nil {
		return 0, nil, nil, badReply("reply has neither a connection nor an error")
	}
	if h.GetToken() != token {
		return 0, nil, nil, badReply("connection token %d, want %d", h.GetToken(), token)
	}
	kind = h.GetKind()
	if kind != pb.Handoff_HANDOFF_FD && kind != pb.Handoff_HANDOFF_RELAY {
		return 0, nil, nil, badReply("connection hand-off kind %v", kind)
	}
	if local, err = addrFromProto(h.GetLocal()); err != nil {
		return 0, nil, nil, err
	}
	if remote, err = addrFromProto(h.GetRemote()); err != nil {
		return 0, nil, nil, err
	}
	return kind, local, remote, nil
}

// checkInfo validates a plugin's self-description against the kind the host
// asked for.
func checkInfo(info *pb.PluginInfo, kind string) error {
	if info == nil {
		return badReply("empty plugin info")
	}
	if info.GetProtocolVersion() != ProtocolVersion {
		return badReply("plugin info says protocol version %d, handshake negotiated %d", info.GetProtocolVersion(), ProtocolVersion)
	}
	if info.GetKind() != kind {
		return badReply("plugin info says kind %q, want %q", clip(info.GetKind(), 40), kind)
	}
	n := info.GetName()
	if n == "" || len(n) > 64 {
		return badReply("plugin name %q: want 1 to 64 characters", clip(n, 80))
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f {
			return badReply("plugin name %q has spaces or control characters", n)
		}
	}
	return nil
}

func timeUntil(t time.Time) time.Duration { return time.Until(t) }

package framework

import (
	"errors"
	"net"
)

// InboundRefusedEvent: an inbound connection was refused before it became a
// [Conn], because the swarm is at one of its connection limits. The
// connection was closed without a byte sent; no ConnectionEvent or
// DisconnectionEvent fires for it. Err wraps [ErrLimit] and names the limit.
type InboundRefusedEvent struct {
	Remote    net.Addr
	Transport string // the transport's name
	// Limit names the limit that refused it: "maxPeers",
	// "maxServerSockets", "inboundShare" (maxPeers less the slots kept
	// for dials, see [WithDialReserve]) or "refuseInbound"
	// (maxServerSockets -1). At every limit but refuseInbound a connection
	// is refused only when no unproven inbound connection can give way.
	// With sessions also "handshakes" and "handshakesPerIP" (the inbound
	// handshakes in progress, see [HandshakeLimits]); a session refused at
	// a connection limit once its handshake completed is closed then.
	Limit string
	Err   error
}

func (*InboundRefusedEvent) event() {}

// inboundRefused publishes the refusal of nc at limit (why: err, from
// refuseInboundLocked). Refusals because the swarm is closing are not
// published.
func (s *Swarm) inboundRefused(nc net.Conn, t Transport, limit string, err error) {
	if !errors.Is(err, ErrLimit) {
		return
	}
	s.bus.publish(&InboundRefusedEvent{Remote: nc.RemoteAddr(), Transport: t.Name(), Limit: limit, Err: err})
}

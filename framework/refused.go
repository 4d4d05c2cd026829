package framework

import (
	"errors"
	"net"
	"strings"
)

// InboundRefusedEvent: an inbound connection was refused before it became a
// [Conn], because the swarm is at one of its connection limits. The
// connection was closed without a byte sent; no ConnectionEvent or
// DisconnectionEvent fires for it. Err wraps [ErrLimit] and names the limit.
type InboundRefusedEvent struct {
	Remote    net.Addr
	Transport string // the transport's name
	// Limit names the limit that refused it: "maxPeers",
	// "maxServerSockets" or "refuseInbound" (maxServerSockets -1).
	Limit string
	Err   error
}

func (*InboundRefusedEvent) event() {}

// inboundRefused publishes the refusal of nc (why: err, from
// refuseInboundLocked). Refusals because the swarm is closing are not
// published.
func (s *Swarm) inboundRefused(nc net.Conn, t Transport, err error) {
	if !errors.Is(err, ErrLimit) {
		return
	}
	msg := err.Error()
	limit := "maxPeers"
	switch {
	case strings.Contains(msg, "refuses inbound"):
		limit = "refuseInbound"
	case strings.Contains(msg, "maxServerSockets"):
		limit = "maxServerSockets"
	}
	s.bus.publish(&InboundRefusedEvent{Remote: nc.RemoteAddr(), Transport: t.Name(), Limit: limit, Err: err})
}

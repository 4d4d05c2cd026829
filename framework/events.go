package framework

// Event is one of the swarm's events: *ConnectionEvent, *DisconnectionEvent,
// *PeerEvent, *PeerRejectedEvent, *UpdatedEvent, *FlushedEvent, *TopicEvent
// or *DialFailedEvent. Use a type switch.
type Event interface{ event() }

// ConnectionEvent: a new connection is open (seed: 'connection'). Conn is a
// net.Conn that also carries the connection info.
type ConnectionEvent struct{ Conn *Conn }

// DisconnectionEvent: a connection closed, for any reason (seed:
// 'disconnection'). Fired exactly once per connection. Err says why when the
// swarm closed it (ErrDuplicate, ErrSelf, ErrBanned, ErrClosed, an I/O error),
// nil when the user closed it.
type DisconnectionEvent struct {
	Conn *Conn
	Err  error
}

// PeerEvent: a peer was discovered, accepted by the validators and queued for
// connection (seed: 'peer').
type PeerEvent struct{ Peer Peer }

// PeerRejectedEvent: a discovered peer was refused as a connection candidate
// and will not be dialled (seed: 'peer-rejected'). Reason is the validator's
// error.
type PeerRejectedEvent struct {
	Peer   Peer
	Reason error
}

// UpdatedEvent: a discovery cycle of a topic completed (seed: 'updated').
type UpdatedEvent struct {
	Topic     Topic
	Discovery string // name of the discovery that completed the cycle
}

// FlushedEvent: a topic has been fully announced by every discovery (the
// seed's onjoin callback).
type FlushedEvent struct{ Topic Topic }

// DialFailedEvent: a dial failed (every transport tried). Manual is true
// for Swarm.Connect; queue dials are requeued or dropped as the schedule says.
type DialFailedEvent struct {
	Peer   Peer
	Err    error
	Manual bool
}

// TopicEvent: with multiplexing on, an open connection now also serves Topic
// (the seed's details.on('topic')).
type TopicEvent struct {
	Conn  *Conn
	Topic Topic
}

func (*ConnectionEvent) event()    {}
func (*DisconnectionEvent) event() {}
func (*PeerEvent) event()          {}
func (*PeerRejectedEvent) event()  {}
func (*UpdatedEvent) event()       {}
func (*FlushedEvent) event()       {}
func (*TopicEvent) event()         {}
func (*DialFailedEvent) event()    {}

package framework

// Event is one of the swarm's events: *ConnectionEvent, *DisconnectionEvent,
// *PeerEvent, *PeerRejectedEvent, *UpdatedEvent, *FlushedEvent, *TopicEvent,
// *DialFailedEvent or *InboundRefusedEvent. Use a type switch.
type Event interface{ event() }

// ConnectionEvent: a new connection is open (seed: 'connection'). Conn is a
// net.Conn that also carries the connection info.
type ConnectionEvent struct{ Conn *Conn }

// DisconnectionEvent: a connection closed, for any reason (seed:
// 'disconnection'). Fired exactly once per connection. Reason says who or
// what closed it; Err is the error behind it when there is one
// (ErrDuplicate, ErrSelf, ErrBanned, ErrClosed, ErrUnproven, ErrDisplaced,
// an I/O error), nil when the
// connection was closed by its user or ended by the peer.
type DisconnectionEvent struct {
	Conn   *Conn
	Reason DisconnectReason
	Err    error
}

// DisconnectReason says why a connection closed. Its values are short
// snake_case words, used as such in logs and as metric label values.
type DisconnectReason string

// The reasons of a [DisconnectionEvent].
const (
	// ReasonClosedLocally: this side closed the connection (Conn.Close, or
	// both directions done after our CloseWrite) before the peer had
	// ended its side.
	ReasonClosedLocally DisconnectReason = "closed_locally"
	// ReasonClosedByPeer: the peer ended the connection first: its
	// session ended (a close or a reset, noticed whether or not we read),
	// or Read had returned io.EOF before we closed or half-closed our side
	// (the close itself then came from our Close, or from both directions
	// being done).
	ReasonClosedByPeer DisconnectReason = "closed_by_peer"
	// ReasonIOError: a Read or Write failed with an error other than io.EOF
	// or a deadline (a reset, a broken pipe, a transport failure); Err is
	// that error.
	ReasonIOError DisconnectReason = "io_error"
	// ReasonDeduplicated: Conn.Deduplicate, or the automatic deduplication
	// by remote key, dropped it as the duplicate of another connection to
	// the same swarm; Err wraps [ErrDuplicate].
	ReasonDeduplicated DisconnectReason = "deduplicated"
	// ReasonSelf: Conn.Deduplicate found it leads back to this swarm (equal
	// ids); Err is [ErrSelf].
	ReasonSelf DisconnectReason = "self"
	// ReasonBanned: Conn.Ban closed it; Err is [ErrBanned].
	ReasonBanned DisconnectReason = "banned"
	// ReasonSwarmClosed: Swarm.Close closed it; Err is [ErrClosed].
	ReasonSwarmClosed DisconnectReason = "swarm_closed"
	// ReasonUnproven: an inbound connection on which no Read returned a
	// byte within the unproven timeout ([WithUnprovenTimeout]); Err wraps
	// [ErrUnproven].
	ReasonUnproven DisconnectReason = "unproven"
	// ReasonDisplaced: an unproven inbound connection, the oldest, gave way
	// to a new inbound connection at a connection limit
	// ([WithDialReserve]); Err wraps [ErrDisplaced].
	ReasonDisplaced DisconnectReason = "displaced"
	// ReasonTimeout: the session received nothing, not even a keep-alive,
	// within the session timeout (the peer or the path went silent); Err
	// wraps [secure.ErrTimeout].
	ReasonTimeout DisconnectReason = "timeout"
)

// String returns the reason's word, e.g. "closed_by_peer".
func (r DisconnectReason) String() string { return string(r) }

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

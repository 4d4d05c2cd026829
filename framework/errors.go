package framework

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with %w
// and add detail; test for them with errors.Is.
var (
	// ErrInvalidTopic: a topic that is not exactly 32 bytes (or 64 hex characters).
	ErrInvalidTopic = errors.New("dwebswarm: invalid topic")
	// ErrInvalidJoin: join options that enable neither lookup nor announce.
	ErrInvalidJoin = errors.New("dwebswarm: join options must enable lookup, announce or both")
	// ErrInvalidOption: an option value out of range or contradictory.
	ErrInvalidOption = errors.New("dwebswarm: invalid option")
	// ErrInvalidPeer: a peer address that cannot be dialled (empty host, bad port).
	ErrInvalidPeer = errors.New("dwebswarm: invalid peer")
	// ErrUnknownPlugin: a discovery, transport or validator name nobody provides.
	ErrUnknownPlugin = errors.New("dwebswarm: unknown plugin")
	// ErrNoTransport: a swarm without any transport.
	ErrNoTransport = errors.New("dwebswarm: no transport")
	// ErrPortInUse: the exact port asked for is taken.
	ErrPortInUse = errors.New("dwebswarm: port in use")
	// ErrClosed: the swarm (or connection) has been closed.
	ErrClosed = errors.New("dwebswarm: swarm closed")
	// ErrNotJoined: the topic is not joined.
	ErrNotJoined = errors.New("dwebswarm: topic not joined")
	// ErrLeft: the topic was left (Leave, or a Join that failed) while
	// Flushed waited for it.
	ErrLeft = errors.New("dwebswarm: topic left")
	// ErrNotClient: the operation needs a connection this swarm dialled.
	ErrNotClient = errors.New("dwebswarm: not a client connection")
	// ErrRejected: a validator refused a peer.
	ErrRejected = errors.New("dwebswarm: peer rejected")
	// ErrLimit: a connection limit (maxPeers, maxClientSockets, maxServerSockets) is reached.
	ErrLimit = errors.New("dwebswarm: connection limit reached")
	// ErrBanned: the peer is banned.
	ErrBanned = errors.New("dwebswarm: peer banned")
	// ErrDuplicate: the connection was dropped by deduplication.
	ErrDuplicate = errors.New("dwebswarm: duplicate connection")
	// ErrSelf: the connection leads back to this swarm.
	ErrSelf = errors.New("dwebswarm: connected to self")
	// ErrUnproven: an inbound connection sent nothing (no Read returned a
	// byte) within the unproven timeout.
	ErrUnproven = errors.New("dwebswarm: inbound connection silent")
	// ErrDisplaced: an unproven inbound connection gave way to a newer
	// inbound connection at a connection limit.
	ErrDisplaced = errors.New("dwebswarm: silent inbound connection displaced")
)

package framework

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// Conn is a connection made by the swarm: a [net.Conn] that also carries the
// seed's connection info (type, client, peer, topics) and its controls (Ban,
// Backoff, Deduplicate).
//
// The swarm learns that a connection ended through its use, like any
// net.Conn: when it is closed by the user or the swarm, when a Read or Write
// fails with an error other than io.EOF or a deadline (the swarm then closes
// it), or when both directions are done (Read returned io.EOF and CloseWrite
// was called). Read from every connection you keep, and close it when done;
// the disconnection event follows exactly once.
type Conn struct {
	net.Conn
	s      *Swarm
	typ    string
	client bool
	peer   *Peer
	entry  *entry // queue entry of a client connection dialled from the queue

	// guarded by s.mu
	topics     []Topic
	banned     bool
	deduped    bool
	dedupKey   string
	dropErr    error
	shadowed   []*entry // client entries dropped as duplicates of this conn
	registered bool
	silent     bool            // inbound, unproven: on s.silent
	proofTimer clockwork.Timer // closes a silent inbound connection

	once      sync.Once
	readDone  atomic.Bool // Read returned io.EOF
	writeDone atomic.Bool // CloseWrite succeeded
	peerFirst atomic.Bool // the peer ended its side before we ended ours
	byPeer    bool        // taken at close, before the transport's Close: peerFirst
	proven    atomic.Bool // a Read returned a byte (or a client connection)

	sess     *secure.Conn // the session; nil in plaintext mode
	sessGone atomic.Bool  // the session ended by itself (see endWith)
	manual   bool         // made by Swarm.Connect: not deduplicated here
}

// RemotePublicKey returns the public key the remote swarm proved in the
// handshake; the zero key in plaintext mode ([WithPlaintext]).
func (c *Conn) RemotePublicKey() secure.PublicKey {
	if c.sess == nil {
		return secure.PublicKey{}
	}
	return c.sess.RemotePublicKey()
}

// Session returns the connection's session, nil in plaintext mode.
func (c *Conn) Session() *secure.Conn { return c.sess }

// Type returns the transport name: "tcp" or "utp" (seed: info.type).
func (c *Conn) Type() string { return c.typ }

// Client reports whether this swarm dialled the connection (seed: info.client).
func (c *Conn) Client() bool { return c.client }

// Peer returns the peer this swarm dialled, or nil for an inbound connection
// (seed: info.peer).
func (c *Conn) Peer() *Peer {
	if c.peer == nil {
		return nil
	}
	p := *c.peer
	return &p
}

// Topics returns the topics this connection serves (seed: info.topics). For
// an inbound session it is the topic the dialler proved in the handshake
// (nil when it named none); for an inbound plaintext connection the swarm
// does not know them and returns nil.
func (c *Conn) Topics() []Topic {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return append([]Topic(nil), c.topics...)
}

// Ban closes the connection and makes the swarm never dial this peer again
// (until the forget-banned period passes); the remote public key is banned
// too, so that the same swarm is refused in the handshake, inbound and
// outbound, whatever its address. Safe to call more than once.
func (c *Conn) Ban() { c.s.ban(c) }

// Backoff makes the swarm wait one more requeue step before redialling this
// peer after the connection ends; call it again to back off more. Only client
// connections have a peer to back off from: others get [ErrNotClient].
func (c *Conn) Backoff() error { return c.s.backoff(c) }

// Deduplicate drops one of two connections between the same pair of swarms,
// chosen identically on both sides, once both sides exchanged ids (localID is
// ours, remoteID theirs). It returns true when this connection is the one
// dropped (it is then closed). Equal ids mean a connection to ourselves, which
// is dropped. Between different transports TCP survives; on the same
// transport the connection dialled by the side with the smaller id survives,
// as in hyperswarm v2. Call it once per connection.
func (c *Conn) Deduplicate(localID, remoteID []byte) bool {
	return c.s.deduplicate(c, localID, remoteID)
}

// Read reads from the connection; a failure other than io.EOF or a deadline
// closes it. The first byte read from an inbound connection proves it (see
// [WithUnprovenTimeout]).
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.proven.Load() && !c.proven.Swap(true) {
		c.s.proved(c)
	}
	if err != nil {
		if fatal(err) {
			c.closeWith(err)
		} else if errors.Is(err, io.EOF) {
			if !c.writeDone.Load() {
				c.peerFirst.Store(true)
			}
			c.readDone.Store(true)
			if c.writeDone.Load() {
				c.closeWith(nil) // both directions are done
			}
		}
	}
	return n, err
}

// Write writes to the connection; a failure other than a deadline closes it.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && fatal(err) {
		c.closeWith(err)
	}
	return n, err
}

// CloseWrite half-closes the connection when the transport supports it: the
// peer reads io.EOF and can still send. Otherwise it returns
// errors.ErrUnsupported. Once both directions are done (CloseWrite called
// and Read returned io.EOF) the swarm closes the connection.
func (c *Conn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.ErrUnsupported
	}
	err := cw.CloseWrite()
	if err == nil {
		c.writeDone.Store(true)
		if c.readDone.Load() {
			c.closeWith(nil)
		}
	}
	return err
}

// Close closes the connection; the swarm then fires the disconnection event.
// A session that ended by itself (the peer closed it, a keep-alive timeout)
// fired its disconnection event already; Close then releases it.
func (c *Conn) Close() error {
	if c.sess != nil && c.sessGone.Load() {
		return c.sess.Close()
	}
	return c.closeWith(nil)
}

// Unwrap returns the connection underneath: the session ([secure.Conn],
// whose NetConn is the transport's), or in plaintext mode the transport's
// connection. Bytes read from it directly do not prove an inbound plaintext
// connection (see [WithUnprovenTimeout]).
func (c *Conn) Unwrap() net.Conn { return c.Conn }

func (c *Conn) closeWith(reason error) error {
	err := net.ErrClosed
	c.once.Do(func() {
		// before Close: a transport whose pending Read returns io.EOF on a
		// local close must not make it look like the peer's doing
		c.byPeer = c.peerFirst.Load()
		err = c.Conn.Close()
		c.s.onConnClosed(c, reason)
	})
	return err
}

func fatal(err error) bool {
	return !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded)
}

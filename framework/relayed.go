package framework

import "net"

// relayedConn is implemented by transport connections that a relay
// forwarded to this swarm (plugins/relay).
type relayedConn interface{ Relayed() bool }

func isRelayed(nc net.Conn) bool {
	r, ok := nc.(relayedConn)
	return ok && r.Relayed()
}

// Relayed reports whether the connection runs through a relay: on the side
// the relay forwarded it to (its transport says so), and, with sessions, on
// the dialling side too, which learns it in the handshake from the other
// side (an authenticated flag the relay cannot forge or strip). In
// plaintext mode only the forwarded side knows.
func (c *Conn) Relayed() bool {
	if c.sess != nil && c.sess.Relayed() {
		return true
	}
	return isRelayed(c.Conn)
}

// Path returns how the connection reaches its peer: "relayed" through a
// relay, "punched" for a dialled connection to a peer found with a
// referrer over a UDP transport (a hole punch made the path), "direct"
// otherwise.
func (c *Conn) Path() string {
	switch {
	case c.Relayed():
		return "relayed"
	case c.client && c.peer != nil && c.peer.Referrer != nil && c.typ == "utp":
		return "punched"
	}
	return "direct"
}

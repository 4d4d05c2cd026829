package secure

// Relayed reports whether the session runs through a relay, as the
// responder said in msg2 (see Config.Relayed): true on both sides of a
// relayed session. The relay forwards the session's bytes without reading
// them; it cannot change the flag.
func (c *Conn) Relayed() bool { return c.relayed }

package secure

// closedChan is the Confirmed channel of a responder's session.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Confirmed is closed once both sides have accepted the session. On the
// responder that is when [Server] returns (its Accept agreed, and it sent
// the confirmation: a keep-alive frame as its first frame). On the
// initiator, whose [Client] returns before the responder's Accept ran,
// it is when the responder's first frame other than close authenticates;
// a refusal ends the session instead (Done closes, Err wraps
// [ErrRefused]) and Confirmed never closes. An application that must not
// act on a session the responder may still refuse waits for Confirmed or
// Done.
func (c *Conn) Confirmed() <-chan struct{} { return c.confirmed }

// awaitConfirmation makes the initiator's reader close c.confirmed on the
// responder's first frame that is not close. Called before start.
func (c *Conn) awaitConfirmation() {
	c.confirmed = make(chan struct{})
	prev := c.cfg.onFrame
	seen := false // the reader goroutine's only
	c.cfg.onFrame = func(typ byte) {
		if !seen && typ != frameClose {
			seen = true
			close(c.confirmed)
		}
		if prev != nil {
			prev(typ)
		}
	}
}

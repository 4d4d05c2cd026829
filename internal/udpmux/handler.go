package udpmux

import (
	"errors"
	"net/netip"
	"sync"
)

// Handler takes a virtual conn's datagrams in the Mux's read loop, in
// place of the conn's queue (see [Conn.SetHandler]): no copy into a
// pooled buffer, no queue and no hand-off to another goroutine per
// datagram. Its methods are called from the read loop only, one at a
// time, and must not block for long: the DHT's datagrams wait while they
// run. They must not call [Conn.SetHandler], [Conn.Close] or [Mux.Close]
// (those wait for a call in progress to end).
type Handler interface {
	// HandlePacket takes one datagram. b is valid only during the call.
	HandlePacket(b []byte, from netip.AddrPort)
	// Drained ends a burst: it is called, after one or more
	// HandlePacket calls, when the socket had nothing more waiting (on
	// Linux; elsewhere after every read), or after maxBurstPackets
	// datagrams, whichever comes first.
	Drained()
	// Closed is called once, when the virtual conn is closed or the Mux
	// stops reading (err says why: net.ErrClosed when closed). No call
	// follows it.
	Closed(err error)
}

// maxBurstPackets bounds the datagrams between two Drained calls.
const maxBurstPackets = 64

// ErrHandlerSet is returned by [Conn.SetHandler] when the conn already
// has a handler.
var ErrHandlerSet = errors.New("udpmux: the conn already has a handler")

// handlerSlot is a virtual conn's Handler. The read loop holds mu while
// it calls h, so that SetHandler(nil) and Close, which take mu, return
// only once no call is in progress.
type handlerSlot struct {
	mu      sync.Mutex
	h       Handler
	pending int  // datagrams read since the first handed over after the last Drained
	ended   bool // Closed was called: no handler may be set again
}

// SetHandler makes h take c's datagrams in the Mux's read loop from now
// on, instead of c's queue: the datagrams already queued are handed to h
// first, in this call (then Drained). SetHandler(nil) removes the
// handler (datagrams are queued again) and returns once no call of it is
// in progress. A conn has one
// handler at a time: setting a second returns ErrHandlerSet. On a closed
// conn SetHandler(h) calls h.Closed(net.ErrClosed) at once.
func (c *Conn) SetHandler(h Handler) error {
	s := &c.hs
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		s.h, s.pending = nil, 0
		return nil
	}
	if s.h != nil {
		return ErrHandlerSet
	}
	if s.ended || c.isClosed() {
		h.Closed(c.closeErr())
		return nil
	}
	s.h = h
	queued := 0
	for {
		select {
		case p := <-c.queue:
			h.HandlePacket(p.data, p.from)
			p.free()
			queued++
			continue
		default:
		}
		break
	}
	if queued > 0 {
		h.Drained()
	}
	return nil
}

// endHandler calls the handler's Closed, once (the conn is closing).
func (c *Conn) endHandler(err error) {
	s := &c.hs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	if h := s.h; h != nil {
		s.h = nil
		h.Closed(err)
	}
}

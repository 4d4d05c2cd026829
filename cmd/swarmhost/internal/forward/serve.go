package forward

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// inbound takes an inbound swarm connection: it is read for its header and
// routed to the serve service of its topic.
func (m *Manager) inbound(c *framework.Conn) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		c.Close()
		return
	}
	m.pending[c] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		m.serveConn(c)
	}()
}

func (m *Manager) serveConn(c *framework.Conn) {
	c.SetReadDeadline(time.Now().Add(m.opt.HeaderTimeout))
	topic, herr := ReadHeader(c)
	c.SetReadDeadline(time.Time{})

	m.mu.Lock()
	delete(m.pending, c)
	closed := m.closed
	var svc *service
	l := &link{remote: c}
	if herr == nil && !closed {
		if svc = m.serving[topic]; svc != nil && !svc.track(l) {
			svc = nil
		}
	}
	m.mu.Unlock()

	switch {
	case closed:
		c.Close()
		return
	case herr != nil:
		if errors.Is(herr, ErrNoHeader) || errors.Is(herr, io.EOF) || errors.Is(herr, net.ErrClosed) {
			m.log.Debug("inbound connection closed before its header", "remote", c.RemoteAddr().String(), "err", herr)
		} else {
			m.log.Info("inbound connection refused: bad forwarding header", "remote", c.RemoteAddr().String(), "err", herr)
		}
		c.Close()
		return
	case svc == nil:
		m.log.Info("inbound connection refused: no service for its topic", "remote", c.RemoteAddr().String(), "topic", topic.Short())
		refuse(c, StatusNoService)
		return
	}
	defer svc.untrack(l)
	svc.serve(l, c)
}

// refuse sends a failure status and closes c.
func refuse(c net.Conn, st Status) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{byte(st)})
	c.Close()
}

// serve dials the target for an inbound connection, answers the status
// and pipes.
func (s *service) serve(l *link, c *framework.Conn) {
	d := net.Dialer{Timeout: s.m.opt.TargetDialTimeout}
	tc, err := d.DialContext(s.ctx, "tcp", s.Serve)
	if err != nil {
		s.metrics.Failed.Add(1)
		if s.ctx.Err() == nil {
			s.log.Warn("forwarded connection closed: target unreachable", "target", s.Serve, "remote", c.RemoteAddr().String(), "err", err)
		}
		refuse(c, StatusTargetDown)
		l.close()
		return
	}
	if !l.attach(tc) {
		return
	}
	if _, err := c.Write([]byte{byte(StatusOK)}); err != nil {
		s.metrics.Failed.Add(1)
		l.close()
		return
	}
	s.forward(l)
}

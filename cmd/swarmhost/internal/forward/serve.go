package forward

import (
	"errors"
	"fmt"
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
	h, herr := ReadHeader(c)
	c.SetReadDeadline(time.Time{})
	var topic framework.Topic
	if herr == nil {
		topic, herr = headerTopic(c, h)
	}

	m.mu.Lock()
	delete(m.pending, c)
	closed := m.closed
	var svc *service
	l := &link{remote: c}
	if herr == nil && !closed && topic != (framework.Topic{}) {
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
	if reason := svc.admit(c); reason != "" {
		// before the target is dialled: the local service sees nothing
		svc.refused(reason)
		svc.log.Warn("inbound connection refused: key not allowed", "reason", reason, "remote_key", keyString(c.RemotePublicKey()), "remote", c.RemoteAddr().String())
		refuse(c, StatusForbidden)
		l.close()
		return
	}
	svc.serve(l, c)
}

// headerTopic is the topic an inbound connection asks for. A session's
// is the one its dialler proved in the handshake (none: the zero topic,
// which no service is routed for), and its header must not name one; a
// plaintext connection proves nothing, so its header must name it.
func headerTopic(c *framework.Conn, h Header) (framework.Topic, error) {
	sess := c.Session()
	switch {
	case sess != nil && h.Named:
		return framework.Topic{}, fmt.Errorf("%w: a session's header names a topic (the topic is the one its handshake proved)", ErrBadHeader)
	case sess == nil && !h.Named:
		return framework.Topic{}, fmt.Errorf("%w: a plaintext connection's header names no topic", ErrBadHeader)
	case sess != nil:
		return framework.Topic(sess.Topic()), nil
	}
	return h.Topic, nil
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
			s.log.Warn("forwarded connection closed: target unreachable", "target", s.Serve, "remote", c.RemoteAddr().String(), "remote_key", keyString(c.RemotePublicKey()), "err", err)
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

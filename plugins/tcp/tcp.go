// Package tcp is the built-in TCP [framework.Transport]: no-delay sockets, a
// 10 s dial timeout (the engine's connect timeout applies too) and context
// cancellation.
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var _ framework.Transport = (*Transport)(nil)
var _ framework.Ordered = (*Transport)(nil)

// DialTimeout bounds a dial when the context has no earlier deadline.
const DialTimeout = 10 * time.Second

// Transport dials and accepts TCP connections.
type Transport struct {
	// KeepAlive is the TCP keep-alive period (0: Go's default of 15 s;
	// negative: off).
	KeepAlive time.Duration
}

// New returns a TCP transport with default settings.
func New() *Transport { return &Transport{} }

// Name returns "tcp".
func (t *Transport) Name() string { return "tcp" }

// Order puts TCP first among transports.
func (t *Transport) Order() int { return -100 }

// Listen binds host:port. A taken port fails with framework.ErrPortInUse.
func (t *Transport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	lc := net.ListenConfig{KeepAlive: t.KeepAlive}
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: tcp %s", framework.ErrPortInUse, net.JoinHostPort(host, strconv.Itoa(port)))
		}
		return nil, err
	}
	return l, nil
}

// Dial connects to peer.Addr() with TCP_NODELAY (Go's default) within
// DialTimeout or ctx, whichever ends first.
func (t *Transport) Dial(ctx context.Context, peer framework.Peer) (net.Conn, error) {
	d := net.Dialer{Timeout: DialTimeout, KeepAlive: t.KeepAlive}
	c, err := d.DialContext(ctx, "tcp", peer.Addr())
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

// Package broken has deliberately broken plugins: each breaks a known set of
// rules, and the conformance tests assert that exactly the checks of those
// rules fail — the suite can fail, and fails precisely.
package broken

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// CorruptAt is the stream offset at which Transport flips a byte.
const CorruptAt = 40 << 20

// Transport is TCP with four bugs:
//   - Dial ignores its context (conformance.CheckTransportCancel);
//   - conns report their local address as RemoteAddr
//     (conformance.CheckTransportAddresses);
//   - Listen on a taken port returns the raw OS error
//     (conformance.CheckTransportPortInUse);
//   - each conn flips one byte at offset CorruptAt of what it writes
//     (conformance.CheckTransportIntegrity).
type Transport struct{ tcp.Transport }

// TransportFailures are the checks Transport must fail.
var TransportFailures = []string{
	conformance.CheckTransportCancel,
	conformance.CheckTransportAddresses,
	conformance.CheckTransportPortInUse,
	conformance.CheckTransportIntegrity,
}

// NewTransport is a conformance factory of Transport.
func NewTransport(*conformance.T) (framework.Transport, error) { return &Transport{}, nil }

// Listen unwraps framework.ErrPortInUse: the bug.
func (t *Transport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	return &listener{l}, nil
}

// Dial ignores ctx: the bug.
func (t *Transport) Dial(_ context.Context, p framework.Peer) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", p.Addr())
	if err != nil {
		return nil, err
	}
	return &conn{TCPConn: c.(*net.TCPConn)}, nil
}

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{TCPConn: c.(*net.TCPConn)}, nil
}

// conn lies about its remote address and corrupts its stream.
type conn struct {
	*net.TCPConn
	mu      sync.Mutex
	written int64
}

func (c *conn) RemoteAddr() net.Addr { return c.TCPConn.LocalAddr() }

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	off := c.written
	c.written += int64(len(b))
	c.mu.Unlock()
	if off <= CorruptAt && CorruptAt < off+int64(len(b)) {
		b = append([]byte(nil), b...)
		b[CorruptAt-off] ^= 0x5a
	}
	return c.TCPConn.Write(b)
}

// Validator breaks three rules:
//   - its name is not lowercase (conformance.CheckValidatorName);
//   - it is slow for 127.0.0.77 (conformance.CheckValidatorFast);
//   - it panics on a DHT peer whose referrer has no id
//     (conformance.CheckValidatorNoPanic).
//
// It decides correctly: 127.0.0.66 and 127.0.0.77 are rejected, everything
// else accepted.
type Validator struct{}

// ValidatorFailures are the checks Validator must fail.
var ValidatorFailures = []string{
	conformance.CheckValidatorName,
	conformance.CheckValidatorFast,
	conformance.CheckValidatorNoPanic,
}

// SlowFor is how long Validator takes for 127.0.0.77.
const SlowFor = 2 * conformance.ValidatorFast

// NewValidator is a conformance factory of Validator.
func NewValidator(*conformance.T) (conformance.ValidatorCase, error) {
	return conformance.ValidatorCase{
		Validator: Validator{},
		Accept:    []framework.Peer{{Host: "127.0.0.1", Port: 4001}, {Host: "127.0.0.2", Port: 4002}},
		Reject:    []framework.Peer{{Host: "127.0.0.66", Port: 4003}, {Host: "127.0.0.77", Port: 4004}},
	}, nil
}

// Name is not a valid name: the bug.
func (Validator) Name() string { return "Broken Validator" }

var errRefused = errors.New("refused by the broken validator")

// Validate is slow for one host and panics on an id-less referrer: the bugs.
func (Validator) Validate(ctx context.Context, p framework.Peer) error {
	if p.Referrer != nil && p.Referrer.ID[0] == 0 { // panics on an empty id
		return nil
	}
	switch p.Host {
	case "127.0.0.77":
		select {
		case <-time.After(SlowFor):
		case <-ctx.Done():
		}
		return errRefused
	case "127.0.0.66":
		return errRefused
	}
	return nil
}

// Discovery is the static discovery with two bugs of its own:
//   - its sink reports Flushed after every cycle, not once
//     (conformance.CheckFlushedOnce);
//   - Join after Close returns nil instead of ErrClosed
//     (conformance.CheckJoinAfterClose).
type Discovery struct{ framework.Discovery }

// DiscoveryFailures are the checks Discovery must fail.
var DiscoveryFailures = []string{
	conformance.CheckFlushedOnce,
	conformance.CheckJoinAfterClose,
}

// NewDiscovery is a conformance factory of Discovery: the static
// environment, with each instance wrapped.
func NewDiscovery(t *conformance.T) (conformance.DiscoveryEnv, error) {
	env, err := builtin.Static()(t)
	if err != nil {
		return nil, err
	}
	return &discoveryEnv{env}, nil
}

type discoveryEnv struct{ conformance.DiscoveryEnv }

func (e *discoveryEnv) Publish(topic framework.Topic, port int) {
	e.DiscoveryEnv.(conformance.Publisher).Publish(topic, port)
}

func (e *discoveryEnv) Unpublish(topic framework.Topic, port int) {
	e.DiscoveryEnv.(conformance.Publisher).Unpublish(topic, port)
}

func (e *discoveryEnv) New(t *conformance.T) (framework.Discovery, error) {
	d, err := e.DiscoveryEnv.New(t)
	if err != nil {
		return nil, err
	}
	return &Discovery{d}, nil
}

// Join swallows ErrClosed and re-flushes every cycle: the bugs.
func (d *Discovery) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	err := d.Discovery.Join(ctx, req, flushEveryCycle{sink})
	if errors.Is(err, framework.ErrClosed) {
		return nil
	}
	return err
}

type flushEveryCycle struct{ framework.DiscoverySink }

func (s flushEveryCycle) Flushed() {}

func (s flushEveryCycle) Updated() {
	s.DiscoverySink.Flushed()
	s.DiscoverySink.Updated()
}

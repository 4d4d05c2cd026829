// Package broken has a transport and a validator that break some rules of
// their contracts on purpose, each bug breaking exactly one conformance
// check. The brokenplugin command serves them out of process; its test
// proves that the suite fails exactly the checks they break, in process
// and out of process, and which bugs the out-of-process SDK hides.
package broken

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// TransportFailures are the checks the broken transport fails in process;
// TransportMasked are those of them that pass out of process, because the
// host adapter honours the rule whatever the plugin does.
var (
	TransportFailures = []string{
		conformance.CheckTransportName,      // Name is "Broken"
		conformance.CheckTransportPortInUse, // the ErrPortInUse wrap is lost
		conformance.CheckTransportAddresses, // accepted conns report their local address as remote
		conformance.CheckTransportIntegrity, // one bit flips after 32 MiB sent
		conformance.CheckTransportCancel,    // Dial ignores a done context
	}
	TransportMasked = []string{
		conformance.CheckTransportCancel, // the host checks ctx around every call
	}
)

// ValidatorFailures and ValidatorMasked are the same for the validator.
var (
	ValidatorFailures = []string{
		conformance.CheckValidatorName,    // Name is "Broken"
		conformance.CheckValidatorFast,    // SlowHost takes 300 ms
		conformance.CheckValidatorNoPanic, // panics on IPv6 hosts
	}
	ValidatorMasked = []string{
		conformance.CheckValidatorNoPanic, // the SDK turns the panic into a rejection
	}
)

// Transport is TCP with the bugs listed in TransportFailures.
type Transport struct{ tcp *tcp.Transport }

// NewTransport returns the broken transport.
func NewTransport() *Transport { return &Transport{tcp.New()} }

func (t *Transport) Name() string { return "Broken" }

func (t *Transport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	l, err := t.tcp.Listen(ctx, host, port)
	if err != nil {
		return nil, fmt.Errorf("listen failed: %v", err) // %v: the wrap is lost
	}
	return listener{l}, nil
}

func (t *Transport) Dial(_ context.Context, p framework.Peer) (net.Conn, error) {
	c, err := t.tcp.Dial(context.Background(), p) // ctx ignored
	if err != nil {
		return nil, err
	}
	return &flipper{Conn: c}, nil
}

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return liar{c}, nil
}

// liar reports its local address as the remote one.
type liar struct{ net.Conn }

func (c liar) RemoteAddr() net.Addr { return c.Conn.LocalAddr() }

func (c liar) CloseWrite() error { return c.Conn.(interface{ CloseWrite() error }).CloseWrite() }

// flipper flips one bit of the byte at offset 32 MiB of what it sends.
type flipper struct {
	net.Conn
	sent atomic.Int64
}

const flipAt = 32 << 20

func (c *flipper) Write(b []byte) (int, error) {
	off := c.sent.Add(int64(len(b))) - int64(len(b))
	if off <= flipAt && flipAt < off+int64(len(b)) {
		b = append([]byte(nil), b...)
		b[flipAt-off] ^= 1
	}
	return c.Conn.Write(b)
}

func (c *flipper) CloseWrite() error { return c.Conn.(interface{ CloseWrite() error }).CloseWrite() }

// SlowHost is the host the broken validator takes 300 ms to accept.
const SlowHost = "192.0.2.2"

// Validator rejects 10.0.0.0/8 and has the bugs listed in ValidatorFailures.
type Validator struct{}

func (Validator) Name() string { return "Broken" }

func (Validator) Validate(_ context.Context, p framework.Peer) error {
	a, err := netip.ParseAddr(p.Host)
	switch {
	case err == nil && a.Is6() && !a.Is4In6():
		panic("broken validator: IPv6 peer " + p.Host) // contained by the host
	case p.Host == SlowHost:
		time.Sleep(300 * time.Millisecond)
	case err == nil && netip.MustParsePrefix("10.0.0.0/8").Contains(a.Unmap()):
		return fmt.Errorf("%w: %s is in 10.0.0.0/8", framework.ErrRejected, a)
	}
	return nil
}

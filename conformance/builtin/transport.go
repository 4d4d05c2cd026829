package builtin

import (
	"io"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// Transport is the conformance factory of a transport that needs nothing
// but loopback: each instance is what newTransport returns. One that runs
// on the swarm's shared UDP socket ([framework.PacketConnUser]) is handed
// a fresh loopback UDP socket the way a swarm shares it (the non-KRPC side
// of a udpmux), as the swarm would hand it over before Listen; the
// transport and then the socket are closed when the check ends. The plugin
// registry uses it for every transport entry that names no factory.
func Transport(newTransport func() (framework.Transport, error)) conformance.TransportFactory {
	return func(t *conformance.T) (framework.Transport, error) {
		tr, err := newTransport()
		if err != nil {
			return nil, err
		}
		pcu, ok := framework.As[framework.PacketConnUser](tr)
		if !ok {
			return tr, nil
		}
		mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
		if err != nil {
			closeIfCloser(tr)
			return nil, err
		}
		t.Cleanup(func() { closeIfCloser(tr); mux.Close() })
		if err := pcu.UsePacketConn(mux.Other()); err != nil {
			return nil, err
		}
		return tr, nil
	}
}

func closeIfCloser(x any) {
	if c, ok := x.(io.Closer); ok {
		c.Close()
	}
}

// UTP makes uTP transports with the default Config, each on a fresh
// loopback UDP socket (see [Transport]).
func UTP() conformance.TransportFactory {
	return Transport(func() (framework.Transport, error) { return utp.New(utp.Config{}) })
}

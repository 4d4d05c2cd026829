package builtin

import (
	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

// UTP makes uTP transports, each on a fresh loopback UDP socket shared the
// way a swarm shares it (the non-KRPC side of a udpmux), as the swarm would
// hand it over before Listen.
func UTP() conformance.TransportFactory {
	return func(t *conformance.T) (framework.Transport, error) {
		mux, err := udpmux.Listen("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		tr, err := utp.New(utp.Config{})
		if err != nil {
			mux.Close()
			return nil, err
		}
		t.Cleanup(func() { tr.Close(); mux.Close() })
		if err := tr.UsePacketConn(mux.Other()); err != nil {
			return nil, err
		}
		return tr, nil
	}
}

package remote_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

func quietConfig(t *testing.T, args ...string) remote.Config {
	cfg := config(t, args...)
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// The transport contract's checks pass out of process, on both hand-off
// paths (fd and relay).
func TestConformanceTransportOutOfProcess(t *testing.T) {
	for _, mode := range []string{"tcp", "relay"} {
		t.Run(mode, func(t *testing.T) {
			conformance.RunTransportSuite(t, func(ct *conformance.T) (framework.Transport, error) {
				tr, err := remote.NewTransport(quietConfig(t, mode))
				if err != nil {
					return nil, err
				}
				ct.Cleanup(func() { tr.Close() })
				return tr, nil
			})
		})
	}
}

func TestConformanceValidatorOutOfProcess(t *testing.T) {
	conformance.RunValidatorSuite(t, func(ct *conformance.T) (conformance.ValidatorCase, error) {
		v, err := remote.NewValidator(quietConfig(t, "deny", "127.0.0.1:2,127.0.0.1:3"))
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		ct.Cleanup(func() { v.Close() })
		return conformance.ValidatorCase{
			Validator: v,
			Accept:    []framework.Peer{{Host: "127.0.0.1", Port: 10}, {Host: "127.0.0.1", Port: 11}},
			Reject:    []framework.Peer{{Host: "127.0.0.1", Port: 2}, {Host: "127.0.0.1", Port: 3}},
		}, nil
	})
}

// The static discovery out of process passes what it passes in process
// (the same known failure, nothing more).
func TestConformanceStaticDiscoveryOutOfProcess(t *testing.T) {
	var opts []conformance.Option
	for check, why := range builtin.KnownFailures("static") {
		opts = append(opts, conformance.ExpectFail(check, why))
	}
	conformance.RunDiscoverySuite(t, func(*conformance.T) (conformance.DiscoveryEnv, error) {
		return &remoteStaticEnv{t: t}, nil
	}, opts...)
}

// remoteStaticEnv is conformance/builtin's static environment with every
// instance a plugin process configured with the list as it stands.
type remoteStaticEnv struct {
	builtin.StaticList
	t *testing.T
}

func (e *remoteStaticEnv) New(*conformance.T) (framework.Discovery, error) {
	var list []string
	for _, ent := range e.Entries() {
		var hex []string
		for _, t := range ent.Topics {
			hex = append(hex, t.String())
		}
		list = append(list, ent.Addr+"@"+strings.Join(hex, "+"))
	}
	return remote.NewDiscovery(quietConfig(e.t, "static", strings.Join(list, ","), builtin.StaticInterval.String()))
}

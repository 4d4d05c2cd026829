package remote

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// Probe starts the plugin binary of cfg, completes the handshake, asks
// which kinds it serves ([KindTransport], [KindDiscovery], [KindValidator],
// in that order) and stops it. A binary that serves none fails with an
// error wrapping [ErrIncompatible]; one that cannot be started fails like
// [NewTransport] does.
func Probe(cfg Config) ([]string, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	p := &proc{cfg: cfg, kind: KindTransport, probe: true, changed: make(chan struct{}), closeCh: make(chan struct{})}
	p.log = cfg.Logger.With("component", "dwebswarm-plugin", "kind", "probe", "path", cfg.Path)
	inst, err := p.start()
	if err != nil {
		return nil, err
	}
	defer inst.end(true)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	infos := []struct {
		kind string
		info func() (*pb.PluginInfo, error)
	}{
		{KindTransport, func() (*pb.PluginInfo, error) { return pb.NewTransportClient(inst.conn).Info(ctx, &pb.Empty{}) }},
		{KindDiscovery, func() (*pb.PluginInfo, error) { return pb.NewDiscoveryClient(inst.conn).Info(ctx, &pb.Empty{}) }},
		{KindValidator, func() (*pb.PluginInfo, error) { return pb.NewValidatorClient(inst.conn).Info(ctx, &pb.Empty{}) }},
	}
	var kinds []string
	var errs []error
	for _, k := range infos {
		info, err := k.info()
		if s, ok := status.FromError(err); ok && s.Code() == codes.Unimplemented {
			continue // not served
		}
		if err == nil {
			err = wire.CheckInfo(info, k.kind)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s Info: %w", k.kind, err))
			continue
		}
		kinds = append(kinds, k.kind)
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("%w: %w: %s serves no transport, discovery or validator: %w", ErrStart, ErrIncompatible, cfg.Path, errors.Join(errs...))
	}
	return kinds, nil
}

package sdk

import (
	"context"
	"fmt"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// The plugin side of the optional interfaces the host forwards (see
// remote.Forwarded): PluginInfo announces which ones the implementation
// has, and their RPCs call it. A call for an interface the implementation
// lacks answers as if the engine had not called it.

// optionalInfo sets the flags of the optional interfaces impl implements.
func optionalInfo(info *pb.PluginInfo, impl any) {
	_, info.WantsPacketConn = impl.(framework.PacketConnUser)
	switch info.GetKind() {
	case wire.KindDiscovery:
		_, info.HolePuncher = impl.(framework.HolePuncher)
		_, info.ConnectivityReporter = impl.(framework.ConnectivityReporter)
		_, info.Refresher = impl.(framework.Refresher)
	case wire.KindTransport:
		_, info.DialFilter = impl.(framework.DialFilter)
		_, info.Drainer = impl.(framework.Drainer)
	}
}

func (s *discoveryServer) HolePunch(ctx context.Context, req *pb.HolePunchRequest) (*pb.ErrorReply, error) {
	hp, ok := s.d.(framework.HolePuncher)
	if !ok {
		return &pb.ErrorReply{Error: wire.EncodeError(fmt.Errorf("%w: %s does not punch holes", framework.ErrInvalidOption, s.d.Name()))}, nil
	}
	p, err := wire.PeerFromProto(req.GetPeer())
	if err != nil {
		return &pb.ErrorReply{Error: wire.EncodeError(fmt.Errorf("%w: %v", framework.ErrInvalidPeer, err))}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, wire.RequestTimeout(req.GetTimeoutMs()))
	defer cancel()
	return &pb.ErrorReply{Error: wire.EncodeError(hp.HolePunch(ctx, p))}, nil
}

func (s *discoveryServer) Connectivity(context.Context, *pb.Empty) (*pb.ConnectivityReply, error) {
	r, ok := s.d.(framework.ConnectivityReporter)
	if !ok {
		return &pb.ConnectivityReply{}, nil
	}
	c := r.Connectivity()
	addrs := c.PublicAddrs
	if len(addrs) > wire.MaxPublicAddrs {
		addrs = addrs[:wire.MaxPublicAddrs]
	}
	return &pb.ConnectivityReply{Bootstrapped: c.Bootstrapped, PublicAddrs: addrs, Reporters: int32(c.Reporters), Consistent: c.Consistent, Holepunchable: c.Holepunchable}, nil
}

func (s *discoveryServer) Refresh(ctx context.Context, req *pb.TopicRequest) (*pb.ErrorReply, error) {
	r, ok := s.d.(framework.Refresher)
	if !ok {
		return &pb.ErrorReply{}, nil
	}
	topic, err := framework.TopicFromBytes(req.GetTopic())
	if err != nil {
		return &pb.ErrorReply{Error: wire.EncodeError(err)}, nil
	}
	return &pb.ErrorReply{Error: wire.EncodeError(r.Refresh(ctx, topic))}, nil
}

func (s *transportServer) WantsPeer(_ context.Context, req *pb.Peer) (*pb.WantsPeerReply, error) {
	f, ok := s.t.(framework.DialFilter)
	if !ok {
		return &pb.WantsPeerReply{Wants: true}, nil
	}
	p, err := wire.PeerFromProto(req)
	if err != nil {
		return &pb.WantsPeerReply{}, nil // a peer it cannot dial
	}
	return &pb.WantsPeerReply{Wants: f.WantsPeer(p)}, nil
}

func (s *transportServer) Drain(ctx context.Context, req *pb.DrainRequest) (*pb.ErrorReply, error) {
	d, ok := s.t.(framework.Drainer)
	if !ok {
		return &pb.ErrorReply{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, wire.RequestTimeout(req.GetTimeoutMs()))
	defer cancel()
	return &pb.ErrorReply{Error: wire.EncodeError(d.Drain(ctx))}, nil
}

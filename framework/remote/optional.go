package remote

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// This file forwards the engine's optional interfaces across the process
// boundary. The adapters have the methods of every interface they forward;
// a plugin says in its Info which ones its implementation has, and the
// adapters' Forwards ([framework.Proxy]) tell the engine, so an interface
// the implementation lacks is never used.

// Forwarding says how one optional interface of package framework crosses
// the process boundary.
type Forwarding struct {
	// Interface names the interface in package framework ("HolePuncher").
	Interface string
	// Kinds are the plugin kinds whose adapter forwards it (nil: none).
	Kinds []string
	// Reason says, for an interface no adapter forwards, why; for a
	// forwarded one, how.
	Reason string
}

// Forwarded lists every exported interface of package framework and how the
// adapters of this package handle it; a test fails when framework gains an
// interface this table does not name.
var Forwarded = []Forwarding{
	{"Transport", []string{KindTransport}, "the Transport service"},
	{"Discovery", []string{KindDiscovery}, "the Discovery service"},
	{"PeerValidator", []string{KindValidator}, "the Validator service"},
	{"DiscoverySink", []string{KindDiscovery}, "the events of a Join stream"},
	{"Ordered", []string{KindTransport, KindDiscovery, KindValidator}, "PluginInfo.order"},
	{"PacketConnUser", []string{KindTransport, KindDiscovery}, "UsePacketConn with a relayed shared UDP socket, when PluginInfo.wants_packet_conn"},
	{"HolePuncher", []string{KindDiscovery}, "HolePunch, when PluginInfo.hole_puncher"},
	{"ConnectivityReporter", []string{KindDiscovery}, "Connectivity, when PluginInfo.connectivity_reporter"},
	{"Refresher", []string{KindDiscovery}, "Refresh, when PluginInfo.refresher"},
	{"DialFilter", []string{KindTransport}, "WantsPeer, when PluginInfo.dial_filter"},
	{"Drainer", []string{KindTransport}, "Drain, when PluginInfo.drainer"},
	{"Starter", nil, "not forwarded: the host starts a plugin's process when it builds the adapter, and the plugin's Serve (sdk.Serve) starts an implementation that is a Starter in that process before serving"},
	{"Proxy", nil, "implemented by the adapters themselves; a plugin's implementation runs in its own process and is never a proxy of the host's"},
	{"KeyValidator", nil, "not forwarded yet: the Validator service has no ValidateKey call; an out-of-process validator checks addresses only, and the host's firewall (WithFirewall) and key bans check keys"},
	{"Event", nil, "not a plugin interface: the swarm's events to its user"},
}

// forwards reports whether info announces the optional interface t.
// Interfaces a plugin cannot lack (the kind's own, Ordered) are forwarded.
func forwards(info *pb.PluginInfo, t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[framework.PacketConnUser]():
		return info.GetWantsPacketConn()
	case reflect.TypeFor[framework.HolePuncher]():
		return info.GetHolePuncher()
	case reflect.TypeFor[framework.ConnectivityReporter]():
		return info.GetConnectivityReporter()
	case reflect.TypeFor[framework.Refresher]():
		return info.GetRefresher()
	case reflect.TypeFor[framework.DialFilter]():
		return info.GetDialFilter()
	case reflect.TypeFor[framework.Drainer]():
		return info.GetDrainer()
	}
	return true
}

// ---- host side: discovery ----

var (
	_ framework.Proxy                = (*Discovery)(nil)
	_ framework.HolePuncher          = (*Discovery)(nil)
	_ framework.ConnectivityReporter = (*Discovery)(nil)
	_ framework.Refresher            = (*Discovery)(nil)
	_ framework.Proxy                = (*Transport)(nil)
	_ framework.DialFilter           = (*Transport)(nil)
	_ framework.Drainer              = (*Transport)(nil)
	_ framework.Proxy                = (*Validator)(nil)
)

// Forwards implements [framework.Proxy]: the optional interfaces the
// plugin's discovery implements (its Info said so).
func (d *Discovery) Forwards(t reflect.Type) bool { return forwards(d.p.info, t) }

// HolePunch implements [framework.HolePuncher]: the plugin's discovery
// asks the peer's referrer to relay a hole-punch notice. It fails with
// [framework.ErrInvalidOption] when the plugin's discovery cannot punch
// holes ([Discovery.Forwards]).
func (d *Discovery) HolePunch(ctx context.Context, peer framework.Peer) error {
	if !d.p.info.GetHolePuncher() {
		return fmt.Errorf("%w: %s does not punch holes", framework.ErrInvalidOption, d.p.name)
	}
	err := d.p.call(ctx, "HolePunch", func(cctx context.Context, inst *instance) error {
		reply, err := inst.discovery().HolePunch(cctx, &pb.HolePunchRequest{Peer: wire.PeerToProto(peer), TimeoutMs: wire.TimeoutMs(cctx, d.p.cfg.CallTimeout)})
		if err != nil {
			return err
		}
		return wire.DecodeError(reply.GetError())
	})
	if err != nil {
		return fmt.Errorf("%s: hole punch %s: %w", d.p.name, peer.Addr(), err)
	}
	return nil
}

// Connectivity implements [framework.ConnectivityReporter] with the
// plugin's report (Bound is the swarm's to set). A plugin that fails or
// sends garbage reports nothing (the zero Connectivity), and the failure
// is logged.
func (d *Discovery) Connectivity() framework.Connectivity {
	if !d.p.info.GetConnectivityReporter() {
		return framework.Connectivity{}
	}
	var c framework.Connectivity
	err := d.p.call(context.Background(), "Connectivity", func(cctx context.Context, inst *instance) error {
		reply, err := inst.discovery().Connectivity(cctx, &pb.Empty{})
		if err != nil {
			return err
		}
		c, err = decodeConnectivity(reply)
		return err
	})
	if err != nil {
		d.p.log.Debug("connectivity report failed", "err", err)
		return framework.Connectivity{}
	}
	return c
}

// decodeConnectivity validates a plugin's connectivity report.
func decodeConnectivity(m *pb.ConnectivityReply) (framework.Connectivity, error) {
	if len(m.GetPublicAddrs()) > wire.MaxPublicAddrs {
		return framework.Connectivity{}, wire.BadReply("connectivity with %d public addresses", len(m.GetPublicAddrs()))
	}
	if m.GetReporters() < 0 {
		return framework.Connectivity{}, wire.BadReply("connectivity with %d reporters", m.GetReporters())
	}
	c := framework.Connectivity{Bootstrapped: m.GetBootstrapped(), Reporters: int(m.GetReporters()), Consistent: m.GetConsistent(), Holepunchable: m.GetHolepunchable()}
	for _, a := range m.GetPublicAddrs() {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return framework.Connectivity{}, wire.BadReply("connectivity public address %q: %v", wire.Clip(a, 80), err)
		}
		c.PublicAddrs = append(c.PublicAddrs, a)
	}
	return c, nil
}

// Refresh implements [framework.Refresher]: the plugin's discovery runs a
// cycle of topic early. A topic not joined here, or a plugin whose
// discovery cannot refresh, is a no-op.
func (d *Discovery) Refresh(ctx context.Context, topic framework.Topic) error {
	d.mu.Lock()
	_, joined := d.joins[topic]
	closed := d.closed
	d.mu.Unlock()
	switch {
	case closed:
		return framework.ErrClosed
	case !joined || !d.p.info.GetRefresher():
		return nil
	}
	err := d.p.call(ctx, "Refresh", func(cctx context.Context, inst *instance) error {
		reply, err := inst.discovery().Refresh(cctx, &pb.TopicRequest{Topic: topic[:]})
		if err != nil {
			return err
		}
		return wire.DecodeError(reply.GetError())
	})
	if err != nil {
		return fmt.Errorf("%s: refresh %s: %w", d.p.name, topic.Short(), err)
	}
	return nil
}

// ---- host side: transport ----

// Forwards implements [framework.Proxy]: the optional interfaces the
// plugin's transport implements (its Info said so).
func (t *Transport) Forwards(it reflect.Type) bool { return forwards(t.p.info, it) }

// WantsPeer implements [framework.DialFilter] with the plugin's answer.
// A plugin without a dial filter, or one that fails to answer, wants every
// peer (as a transport without DialFilter is tried for every peer).
func (t *Transport) WantsPeer(peer framework.Peer) bool {
	if !t.p.info.GetDialFilter() {
		return true
	}
	wants := true
	err := t.p.call(context.Background(), "WantsPeer", func(cctx context.Context, inst *instance) error {
		reply, err := inst.transport().WantsPeer(cctx, wire.PeerToProto(peer))
		if err != nil {
			return err
		}
		wants = reply.GetWants()
		return nil
	})
	if err != nil {
		t.p.log.Debug("dial filter failed", "peer", peer.String(), "err", err)
		return true
	}
	return wants
}

// Drain implements [framework.Drainer]: the plugin's transport delivers
// the last data of its closed connections, within ctx.
func (t *Transport) Drain(ctx context.Context) error {
	if !t.p.info.GetDrainer() {
		return nil
	}
	if inst := t.p.current(); inst == nil || inst.dead() {
		return nil // nothing left to drain
	}
	err := t.p.call(ctx, "Drain", func(cctx context.Context, inst *instance) error {
		reply, err := inst.transport().Drain(cctx, &pb.DrainRequest{TimeoutMs: wire.TimeoutMs(cctx, t.p.cfg.CallTimeout)})
		if err != nil {
			return err
		}
		return wire.DecodeError(reply.GetError())
	})
	if err != nil {
		return fmt.Errorf("%s: drain: %w", t.p.name, err)
	}
	return nil
}

// ---- host side: validator ----

// Forwards implements [framework.Proxy]; a validator has no optional
// interfaces besides Ordered.
func (v *Validator) Forwards(t reflect.Type) bool { return forwards(v.p.info, t) }

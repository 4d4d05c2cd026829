package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

var (
	_ framework.Discovery      = (*Discovery)(nil)
	_ framework.Ordered        = (*Discovery)(nil)
	_ framework.PacketConnUser = (*Discovery)(nil)
)

// Discovery is a [framework.Discovery] served by a plugin binary. Each
// joined topic is one gRPC stream of events; the host validates every
// reported peer (dialable, of the joined topic) and drops bad ones. After a
// plugin crash the host restarts it and joins every joined topic again.
//
// A plugin whose discovery uses the swarm's shared UDP socket (the DHT)
// gets it relayed: see [Discovery.UsePacketConn].
type Discovery struct {
	p     *proc
	order int
	pu    *packetUser

	op     sync.Mutex // serializes Join, Leave, Close and re-joins
	mu     sync.Mutex
	closed bool
	joins  map[framework.Topic]*djoin
}

// djoin is one joined topic: its request, its sink and the pump of its stream.
type djoin struct {
	req    framework.JoinRequest
	sink   framework.DiscoverySink
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the pump; the sink hears nothing more once it returns.
func (j *djoin) stop() {
	j.cancel()
	<-j.done
}

// NewDiscovery starts the plugin binary and checks that it serves a discovery.
func NewDiscovery(cfg Config) (*Discovery, error) {
	p, err := newProc(cfg, KindDiscovery)
	if err != nil {
		return nil, err
	}
	d := &Discovery{p: p, order: int(p.info.GetOrder()), joins: map[framework.Topic]*djoin{}}
	d.pu = &packetUser{p: p, use: func(inst *instance) func(context.Context, *pb.UsePacketConnRequest) (*pb.ErrorReply, error) {
		return func(ctx context.Context, req *pb.UsePacketConnRequest) (*pb.ErrorReply, error) {
			return inst.discovery().UsePacketConn(ctx, req)
		}
	}}
	p.prepare = d.pu.prepare
	p.onRestart = d.rejoin
	return d, nil
}

// UsePacketConn implements [framework.PacketConnUser]. When the plugin's
// discovery uses the shared UDP socket ([Discovery.WantsPacketConn]), the
// host relays pc's datagrams to and from the plugin through a socketpair,
// handed again to every restarted instance before its topics are joined
// again; otherwise it does nothing. It never closes pc. Call it once,
// before Join (the swarm does, at Start).
func (d *Discovery) UsePacketConn(pc net.PacketConn) error { return d.pu.usePacketConn(pc) }

// WantsPacketConn reports whether the plugin's discovery uses the shared
// UDP socket (its Info said so).
func (d *Discovery) WantsPacketConn() bool { return d.pu.wants() }

// Name returns the plugin's name (or Config.Name).
func (d *Discovery) Name() string { return d.p.name }

// Order returns the plugin's order (framework.Ordered).
func (d *Discovery) Order() int { return d.order }

// PID returns the process id of the running plugin, 0 while none runs.
func (d *Discovery) PID() int { return d.p.pid() }

func (inst *instance) discovery() pb.DiscoveryClient { return pb.NewDiscoveryClient(inst.conn) }

// Join joins the topic in the plugin and pumps its events to sink.
func (d *Discovery) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	if sink == nil {
		return fmt.Errorf("%w: nil sink", framework.ErrInvalidOption)
	}
	d.op.Lock()
	defer d.op.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return framework.ErrClosed
	}
	old := d.joins[req.Topic]
	delete(d.joins, req.Topic)
	d.mu.Unlock()
	if old != nil {
		old.stop() // the old sink receives nothing more
	}
	j, err := d.open(ctx, req, sink)
	if err != nil {
		return fmt.Errorf("%s: join %s: %w", d.p.name, req.Topic.Short(), err)
	}
	d.mu.Lock()
	d.joins[req.Topic] = j
	d.mu.Unlock()
	return nil
}

// open starts the join stream and waits for the plugin's Join result.
func (d *Discovery) open(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) (*djoin, error) {
	var j *djoin
	err := d.p.call(ctx, "Join", func(cctx context.Context, inst *instance) error {
		sctx, cancel := context.WithCancel(context.Background())
		timeout := d.p.cfg.CallTimeout
		if dl, ok := cctx.Deadline(); ok {
			timeout = max(1, time.Until(dl))
		}
		stream, err := inst.discovery().Join(sctx, &pb.JoinRequest{
			Topic: req.Topic[:], Announce: req.Announce, Lookup: req.Lookup, Port: int32(req.Port),
			TimeoutMs: max(1, timeout.Milliseconds()),
		})
		if err != nil {
			cancel()
			return err
		}
		type first struct {
			ev  *pb.DiscoveryEvent
			err error
		}
		ch := make(chan first, 1)
		go func() {
			ev, err := stream.Recv()
			ch <- first{ev, err}
		}()
		var f first
		select {
		case f = <-ch:
		case <-cctx.Done():
			cancel()
			<-ch
			return cctx.Err()
		}
		if f.err != nil {
			cancel()
			return f.err
		}
		joined := f.ev.GetJoined()
		if joined == nil {
			cancel()
			return wire.BadReply("join stream began with %T, want joined", f.ev.GetEvent())
		}
		if err := wire.DecodeError(joined.GetError()); err != nil {
			cancel()
			return err
		}
		j = &djoin{req: req, sink: sink, cancel: cancel, done: make(chan struct{})}
		go d.pump(sctx, j, stream)
		return nil
	})
	return j, err
}

// pump delivers a join stream's events to its sink until the stream ends.
func (d *Discovery) pump(ctx context.Context, j *djoin, stream pb.Discovery_JoinClient) {
	defer close(j.done)
	topic := j.req.Topic
	bad := 0
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil {
				d.p.log.Debug("join stream ended", "topic", topic.Short(), "err", err)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		switch e := ev.GetEvent().(type) {
		case *pb.DiscoveryEvent_Peer:
			p, err := wire.DecodePeerFor(e.Peer, topic)
			if err != nil {
				if bad++; bad <= 10 {
					d.p.log.Warn("dropping a bad peer from the plugin", "topic", topic.Short(), "err", err)
				}
				continue
			}
			j.sink.Peer(p)
		case *pb.DiscoveryEvent_Flushed:
			j.sink.Flushed()
		case *pb.DiscoveryEvent_Updated:
			j.sink.Updated()
		default:
			if bad++; bad <= 10 {
				d.p.log.Warn("dropping a bad event from the plugin", "topic", topic.Short(), "event", fmt.Sprintf("%T", e))
			}
		}
	}
}

// rejoin joins every joined topic again on a restarted plugin.
func (d *Discovery) rejoin(*instance) {
	d.op.Lock()
	defer d.op.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	joins := make([]*djoin, 0, len(d.joins))
	for _, j := range d.joins {
		joins = append(joins, j)
	}
	d.mu.Unlock()
	for _, old := range joins {
		old.stop()
		j, err := d.open(context.Background(), old.req, old.sink)
		d.mu.Lock()
		if err != nil {
			d.p.log.Error("re-joining a topic after a plugin restart failed", "topic", old.req.Topic.Short(), "err", err)
			delete(d.joins, old.req.Topic)
		} else {
			d.joins[old.req.Topic] = j
		}
		d.mu.Unlock()
	}
}

// Leave leaves the topic in the plugin; the sink hears nothing more.
func (d *Discovery) Leave(ctx context.Context, topic framework.Topic) error {
	d.op.Lock()
	defer d.op.Unlock()
	d.mu.Lock()
	j := d.joins[topic]
	delete(d.joins, topic)
	d.mu.Unlock()
	if j == nil {
		return nil
	}
	j.stop()
	err := d.p.call(ctx, "Leave", func(ctx context.Context, inst *instance) error {
		reply, err := inst.discovery().Leave(ctx, &pb.TopicRequest{Topic: topic[:]})
		if err != nil {
			return err
		}
		return wire.DecodeError(reply.GetError())
	})
	if err != nil {
		return fmt.Errorf("%s: leave %s: %w", d.p.name, topic.Short(), err)
	}
	return nil
}

// Close leaves everything, asks the plugin to close and stops it.
func (d *Discovery) Close() error {
	d.op.Lock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.op.Unlock()
		return nil
	}
	d.closed = true
	joins := d.joins
	d.joins = map[framework.Topic]*djoin{}
	d.mu.Unlock()
	for _, j := range joins {
		j.stop()
	}
	var err error
	if inst := d.p.current(); inst != nil && !inst.dead() {
		err = d.p.call(context.Background(), "Close", func(ctx context.Context, inst *instance) error {
			reply, err := inst.discovery().Close(ctx, &pb.Empty{})
			if err != nil {
				return err
			}
			return wire.DecodeError(reply.GetError())
		})
		if errors.Is(err, framework.ErrClosed) {
			err = nil
		}
	}
	d.op.Unlock()
	d.pu.close()
	d.p.close()
	if err != nil {
		return fmt.Errorf("%s: close: %w", d.p.name, err)
	}
	return nil
}

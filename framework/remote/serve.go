package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dwebswarm/dwebswarm-go/framework"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// Plugins are the implementations one plugin binary serves. Usually one is
// set; [ServeTransport], [ServeDiscovery] and [ServeValidator] are the
// one-call shorthands.
type Plugins struct {
	Transport framework.Transport
	Discovery framework.Discovery
	Validator framework.PeerValidator
}

// ServeTransport serves t to the dwebswarm host that started this binary
// and returns when the host stops the plugin. Call it from main:
//
//	func main() { remote.ServeTransport(mytransport.New()) }
//
// Connections and listeners that are kernel sockets (*net.TCPConn,
// *net.UnixConn, *net.TCPListener, *net.UnixListener, exactly those types)
// are handed to the host by fd and closed here; any other net.Conn is
// relayed through a socketpair, and any other listener stays here.
func ServeTransport(t framework.Transport) { Serve(Plugins{Transport: t}) }

// ServeDiscovery serves d (see [ServeTransport]).
func ServeDiscovery(d framework.Discovery) { Serve(Plugins{Discovery: d}) }

// ServeValidator serves v (see [ServeTransport]).
func ServeValidator(v framework.PeerValidator) { Serve(Plugins{Validator: v}) }

// Serve serves every implementation set in p. Run directly (not by a
// host) it explains that it is a plugin and exits with status 1.
//
// Started by a host, it first starts every implementation that is a
// [framework.Starter] (the host does not forward Start: the plugin's
// process is the implementation's lifetime); when one fails, Serve writes
// the error to stderr, which the host reports, and exits with status 1.
func Serve(p Plugins) {
	if os.Getenv(MagicCookieKey) == MagicCookieValue {
		if err := startPlugins(context.Background(), p); err != nil {
			fmt.Fprintln(os.Stderr, "dwebswarm plugin:", err)
			os.Exit(1)
		}
	}
	plugin.Serve(ServeConfig(p))
}

// startPlugins starts the implementations of p that are a
// [framework.Starter], as Swarm.Start would: transport, discovery, then
// validator.
func startPlugins(ctx context.Context, p Plugins) error {
	for _, impl := range []interface{ Name() string }{p.Transport, p.Discovery, p.Validator} {
		if impl == nil {
			continue
		}
		if st, ok := impl.(framework.Starter); ok {
			if err := st.Start(ctx); err != nil {
				return fmt.Errorf("%s: start: %w", impl.Name(), err)
			}
		}
	}
	return nil
}

// ServeConfig returns the go-plugin configuration Serve uses; tests that run
// a plugin in process (go-plugin's ServeTestConfig) can start from it.
func ServeConfig(p Plugins) *plugin.ServeConfig {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: hclogKeys}))
	slog.SetDefault(logger)
	var fds *fdSender
	switch {
	case os.Getenv(MagicCookieKey) != MagicCookieValue:
		fds = &fdSender{err: errors.New("not started by a dwebswarm host")}
	case os.Getenv(connectEnv) != "":
		fds = openConnectSender(os.Getenv(connectEnv)) // the host passes no fds
	default:
		fds = openFDSender() // only when started by a host: fd 3 is ours then
	}
	set := plugin.PluginSet{}
	if p.Transport != nil {
		s := &transportServer{t: p.Transport, fds: fds, listeners: map[uint64]net.Listener{}}
		set[KindTransport] = &GRPCPlugin{Register: func(g *grpc.Server) { pb.RegisterTransportServer(g, s) }}
	}
	if p.Discovery != nil {
		s := &discoveryServer{d: p.Discovery, fds: fds, cur: map[framework.Topic]*pjoin{}}
		set[KindDiscovery] = &GRPCPlugin{Register: func(g *grpc.Server) { pb.RegisterDiscoveryServer(g, s) }}
	}
	if p.Validator != nil {
		s := &validatorServer{v: p.Validator}
		set[KindValidator] = &GRPCPlugin{Register: func(g *grpc.Server) { pb.RegisterValidatorServer(g, s) }}
	}
	return &plugin.ServeConfig{
		HandshakeConfig:  plugin.HandshakeConfig{MagicCookieKey: MagicCookieKey, MagicCookieValue: MagicCookieValue},
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.ChainUnaryInterceptor(recoverUnary), grpc.ChainStreamInterceptor(recoverStream))
			return grpc.NewServer(opts...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	}
}

// hclogKeys names slog's keys like hclog's JSON, which go-plugin's host
// parses from the plugin's stderr.
func hclogKeys(_ []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case slog.LevelKey:
		return slog.String("@level", map[slog.Level]string{slog.LevelDebug: "debug", slog.LevelInfo: "info", slog.LevelWarn: "warn", slog.LevelError: "error"}[a.Value.Any().(slog.Level)])
	case slog.MessageKey:
		return slog.Attr{Key: "@message", Value: a.Value}
	case slog.TimeKey:
		return slog.Attr{Key: "@timestamp", Value: a.Value}
	}
	return a
}

// Panics in an implementation become errors (codes.Aborted), never a dead
// plugin.
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic in plugin", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Aborted, "panic in plugin %s: %v", info.FullMethod, r)
		}
	}()
	return h(ctx, req)
}

func recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic in plugin", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Aborted, "panic in plugin %s: %v", info.FullMethod, r)
		}
	}()
	return h(srv, ss)
}

func pluginInfo(kind string, impl interface{ Name() string }) *pb.PluginInfo {
	info := &pb.PluginInfo{ProtocolVersion: ProtocolVersion, Kind: kind, Name: impl.Name(), Sdk: "dwebswarm-go/framework/remote " + runtime.Version()}
	if o, ok := impl.(framework.Ordered); ok {
		info.Order = int32(o.Order())
	}
	optionalInfo(info, impl)
	return info
}

// usePacketConn serves the UsePacketConn RPC: it makes the relay
// socketpair, sends the host its end under the request's token, and gives
// the implementation the other end as a net.PacketConn (see packetconn.go).
func usePacketConn(impl interface{ Name() string }, fds *fdSender, req *pb.UsePacketConnRequest) *pb.ErrorReply {
	u, ok := impl.(framework.PacketConnUser)
	if !ok {
		return &pb.ErrorReply{Error: encodeError(fmt.Errorf("%w: %s does not use the shared udp socket", framework.ErrInvalidOption, impl.Name()))}
	}
	local, err := addrFromProto(req.GetLocal())
	if err == nil {
		if _, ok := local.(*net.UDPAddr); !ok {
			err = fmt.Errorf("shared udp socket address %v is not a udp address", local)
		}
	}
	if err != nil {
		return &pb.ErrorReply{Error: encodeError(fmt.Errorf("%w: %v", framework.ErrInvalidOption, err))}
	}
	keep, err := fds.newPacketLink(req.GetToken())
	if err != nil {
		return &pb.ErrorReply{Error: encodeError(fmt.Errorf("hand the shared udp socket relay to the host: %w", err))}
	}
	pc := newPluginPacketConn(keep, local)
	if err := u.UsePacketConn(pc); err != nil {
		pc.Close()
		return &pb.ErrorReply{Error: encodeError(err)}
	}
	return &pb.ErrorReply{}
}

// ---- transport ----

type transportServer struct {
	pb.UnimplementedTransportServer
	t   framework.Transport
	fds *fdSender

	mu        sync.Mutex
	nextID    uint64
	listeners map[uint64]net.Listener
}

func (s *transportServer) Info(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return pluginInfo(KindTransport, s.t), nil
}

func (s *transportServer) UsePacketConn(_ context.Context, req *pb.UsePacketConnRequest) (*pb.ErrorReply, error) {
	return usePacketConn(s.t, s.fds, req), nil
}

func (s *transportServer) Listen(ctx context.Context, req *pb.ListenRequest) (*pb.ListenReply, error) {
	l, err := s.t.Listen(ctx, req.GetHost(), int(req.GetPort()))
	if err != nil {
		return &pb.ListenReply{Error: encodeError(err)}, nil
	}
	addr := addrToProto(l.Addr())
	if !s.fds.passesFDs() {
		l = keptListener{l} // no fd passing: every listener stays here
	}
	switch kl := l.(type) {
	case *net.TCPListener:
		if err := s.fds.sendSyscallConn(req.GetToken(), kl); err != nil {
			l.Close()
			return &pb.ListenReply{Error: encodeError(fmt.Errorf("hand listener to host: %w", err))}, nil
		}
		l.Close()
		return &pb.ListenReply{Kind: pb.Handoff_HANDOFF_FD, Token: req.GetToken(), Addr: addr}, nil
	case *net.UnixListener:
		if err := s.fds.sendSyscallConn(req.GetToken(), kl); err != nil {
			l.Close()
			return &pb.ListenReply{Error: encodeError(fmt.Errorf("hand listener to host: %w", err))}, nil
		}
		kl.SetUnlinkOnClose(false) // the host owns the socket now
		l.Close()
		return &pb.ListenReply{Kind: pb.Handoff_HANDOFF_FD, Token: req.GetToken(), Addr: addr}, nil
	}
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.listeners[id] = l
	s.mu.Unlock()
	return &pb.ListenReply{Kind: pb.Handoff_HANDOFF_REMOTE, ListenerId: id, Addr: addr}, nil
}

func (s *transportServer) Accept(ctx context.Context, req *pb.AcceptRequest) (*pb.ConnReply, error) {
	s.mu.Lock()
	l := s.listeners[req.GetListenerId()]
	s.mu.Unlock()
	if l == nil {
		return &pb.ConnReply{Error: encodeError(fmt.Errorf("listener %d: %w", req.GetListenerId(), net.ErrClosed))}, nil
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() { // the host gave up: drop whatever comes
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if r.err != nil {
		return &pb.ConnReply{Error: encodeError(r.err)}, nil
	}
	h, err := s.handoff(r.c, req.GetToken())
	if err != nil {
		return &pb.ConnReply{Error: encodeError(err)}, nil
	}
	return &pb.ConnReply{Conn: h}, nil
}

func (s *transportServer) CloseListener(_ context.Context, req *pb.CloseListenerRequest) (*pb.ErrorReply, error) {
	s.mu.Lock()
	l := s.listeners[req.GetListenerId()]
	delete(s.listeners, req.GetListenerId())
	s.mu.Unlock()
	if l == nil {
		return &pb.ErrorReply{}, nil
	}
	return &pb.ErrorReply{Error: encodeError(l.Close())}, nil
}

func (s *transportServer) Dial(ctx context.Context, req *pb.DialRequest) (*pb.ConnReply, error) {
	p, err := peerFromProto(req.GetPeer())
	if err != nil {
		return &pb.ConnReply{Error: encodeError(fmt.Errorf("%w: %v", framework.ErrInvalidPeer, err))}, nil
	}
	c, err := s.t.Dial(ctx, p)
	if err != nil {
		return &pb.ConnReply{Error: encodeError(err)}, nil
	}
	if ctx.Err() != nil {
		c.Close()
		return &pb.ConnReply{Error: encodeError(ctx.Err())}, nil
	}
	h, err := s.handoff(c, req.GetToken())
	if err != nil {
		return &pb.ConnReply{Error: encodeError(err)}, nil
	}
	return &pb.ConnReply{Conn: h}, nil
}

// handoff passes c to the host: the socket itself for kernel connections,
// else one end of a relay socketpair. c is owned by the relay or closed.
func (s *transportServer) handoff(c net.Conn, token uint64) (*pb.ConnHandoff, error) {
	h := &pb.ConnHandoff{Token: token, Local: addrToProto(c.LocalAddr()), Remote: addrToProto(c.RemoteAddr())}
	switch kc := c.(type) {
	case *net.TCPConn, *net.UnixConn:
		if !s.fds.passesFDs() {
			break // relayed like any other
		}
		err := s.fds.sendSyscallConn(token, kc.(syscall.Conn))
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("hand connection to host: %w", err)
		}
		h.Kind = pb.Handoff_HANDOFF_FD
		return h, nil
	}
	pc, err := s.fds.newRelay(token)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	go s.relay(c, pc, token)
	h.Kind = pb.Handoff_HANDOFF_RELAY
	return h, nil
}

const relayBuffer = 256 << 10

// keptListener hides a kernel listener's type where it cannot be handed off.
type keptListener struct{ net.Listener }

type closeWriter interface{ CloseWrite() error }

// onlyReader and onlyWriter hide ReadFrom/WriteTo so copies use the buffer.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// relay copies between the user-space connection c and the host's relay
// socket until both directions end. Before it shuts down its writing side
// of the relay it tells the host, on the fd channel, whether c ended
// cleanly, so the host can tell a clean EOF from a crash.
func (s *transportServer) relay(c net.Conn, pc streamConn, token uint64) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // peer → host
		defer wg.Done()
		_, err := io.CopyBuffer(onlyWriter{pc}, onlyReader{c}, make([]byte, relayBuffer))
		_ = s.fds.sendRelayEnd(token, err)
		if err != nil {
			pc.Close()
			return
		}
		_ = pc.CloseWrite()
	}()
	go func() { // host → peer
		defer wg.Done()
		_, err := io.CopyBuffer(onlyWriter{c}, onlyReader{pc}, make([]byte, relayBuffer))
		if cw, ok := c.(closeWriter); ok && err == nil {
			_ = cw.CloseWrite()
			return
		}
		c.Close() // no half-close: the host's close ends the connection
	}()
	wg.Wait()
	c.Close()
	pc.Close()
}

// ---- discovery ----

type discoveryServer struct {
	pb.UnimplementedDiscoveryServer
	d   framework.Discovery
	fds *fdSender

	mu     sync.Mutex // serializes Join and Leave of the implementation
	cur    map[framework.Topic]*pjoin
	closed bool
}

// pjoin is the plugin side of one join stream.
type pjoin struct {
	q    *eventQueue
	done chan struct{}
	once sync.Once
}

func (j *pjoin) end() {
	j.once.Do(func() { close(j.done); j.q.close() })
}

func (s *discoveryServer) Info(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return pluginInfo(KindDiscovery, s.d), nil
}

func (s *discoveryServer) UsePacketConn(_ context.Context, req *pb.UsePacketConnRequest) (*pb.ErrorReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &pb.ErrorReply{Error: encodeError(framework.ErrClosed)}, nil
	}
	return usePacketConn(s.d, s.fds, req), nil
}

func (s *discoveryServer) Join(req *pb.JoinRequest, stream pb.Discovery_JoinServer) error {
	joined := func(err error) error {
		return stream.Send(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Joined_{Joined: &pb.DiscoveryEvent_Joined{Error: encodeError(err)}}})
	}
	topic, err := framework.TopicFromBytes(req.GetTopic())
	if err != nil {
		return joined(err)
	}
	timeout := time.Duration(req.GetTimeoutMs()) * time.Millisecond
	if timeout <= 0 || timeout > time.Minute {
		timeout = DefaultCallTimeout
	}
	j := &pjoin{q: newEventQueue(), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return joined(framework.ErrClosed)
	}
	if old := s.cur[topic]; old != nil {
		old.end()
		delete(s.cur, topic)
	}
	ctx, cancel := context.WithTimeout(stream.Context(), timeout)
	err = s.d.Join(ctx, framework.JoinRequest{Topic: topic, Announce: req.GetAnnounce(), Lookup: req.GetLookup(), Port: int(req.GetPort())}, j.q)
	cancel()
	if err == nil {
		s.cur[topic] = j
	}
	s.mu.Unlock()
	if serr := joined(err); serr != nil {
		if err == nil {
			s.leaveIfCurrent(topic, j)
		}
		return serr
	}
	if err != nil {
		return nil
	}
	for {
		select {
		case <-j.q.signal:
			for _, ev := range j.q.drain() {
				if err := stream.Send(ev); err != nil {
					s.leaveIfCurrent(topic, j)
					return err
				}
			}
		case <-j.done:
			return nil
		case <-stream.Context().Done():
			s.leaveIfCurrent(topic, j) // the host went away without Leave
			return nil
		}
	}
}

func (s *discoveryServer) leaveIfCurrent(topic framework.Topic, j *pjoin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur[topic] != j {
		return
	}
	delete(s.cur, topic)
	j.end()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCallTimeout)
	defer cancel()
	_ = s.d.Leave(ctx, topic)
}

func (s *discoveryServer) Leave(ctx context.Context, req *pb.TopicRequest) (*pb.ErrorReply, error) {
	topic, err := framework.TopicFromBytes(req.GetTopic())
	if err != nil {
		return &pb.ErrorReply{Error: encodeError(err)}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.d.Leave(ctx, topic)
	if j := s.cur[topic]; j != nil {
		j.end()
		delete(s.cur, topic)
	}
	return &pb.ErrorReply{Error: encodeError(err)}, nil
}

func (s *discoveryServer) Close(context.Context, *pb.Empty) (*pb.ErrorReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &pb.ErrorReply{}, nil
	}
	s.closed = true
	err := s.d.Close()
	for t, j := range s.cur {
		j.end()
		delete(s.cur, t)
	}
	return &pb.ErrorReply{Error: encodeError(err)}, nil
}

// maxQueuedPeers bounds the peers waiting to be sent on one join stream;
// more are dropped (a discovery reports peers again in later cycles).
// Flushed and Updated are never dropped.
const maxQueuedPeers = 4096

// eventQueue is the DiscoverySink of one join stream: it never blocks.
type eventQueue struct {
	mu     sync.Mutex
	evs    []*pb.DiscoveryEvent
	peers  int
	closed bool
	signal chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

func (q *eventQueue) push(ev *pb.DiscoveryEvent, peer bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || (peer && q.peers >= maxQueuedPeers) {
		return
	}
	if peer {
		q.peers++
	}
	q.evs = append(q.evs, ev)
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *eventQueue) drain() []*pb.DiscoveryEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.evs
	q.evs, q.peers = nil, 0
	return out
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed, q.evs = true, nil
	q.mu.Unlock()
}

func (q *eventQueue) Peer(p framework.Peer) {
	q.push(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Peer{Peer: peerToProto(p)}}, true)
}
func (q *eventQueue) Flushed() {
	q.push(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Flushed{Flushed: &pb.Empty{}}}, false)
}
func (q *eventQueue) Updated() {
	q.push(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Updated{Updated: &pb.Empty{}}}, false)
}

// ---- validator ----

type validatorServer struct {
	pb.UnimplementedValidatorServer
	v framework.PeerValidator
}

func (s *validatorServer) Info(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return pluginInfo(KindValidator, s.v), nil
}

func (s *validatorServer) Validate(ctx context.Context, req *pb.Peer) (reply *pb.ValidateReply, err error) {
	p, err := peerFromProto(req)
	if err != nil {
		return &pb.ValidateReply{Rejection: encodeError(fmt.Errorf("%w: %v", framework.ErrInvalidPeer, err))}, nil
	}
	defer func() { // a panic rejects the peer, like the engine does in process
		if r := recover(); r != nil {
			reply = &pb.ValidateReply{Rejection: encodeError(fmt.Errorf("%w: validator %s panicked: %v", framework.ErrRejected, s.v.Name(), r))}
			err = nil
		}
	}()
	if err := s.v.Validate(ctx, p); err != nil {
		return &pb.ValidateReply{Rejection: encodeError(err)}, nil
	}
	return &pb.ValidateReply{Accepted: true}, nil
}

// Command testplugin is the plugin binary of framework/remote's tests: the
// built-ins served out of process, plus misbehaving plugins. Its first
// argument picks the mode.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testplugin MODE [args]")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch os.Args[1] {
	case "tcp": // the built-in TCP transport: every socket handed off by fd
		sdk.ServeTransport(tcp.New())
	case "relay": // TCP hidden behind user-space types: relayed connections, remote listener
		sdk.ServeTransport(userTransport{tcp.New()})
	case "utp": // the built-in uTP transport, on the host's shared UDP socket
		tr, err := utp.New(utp.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sdk.ServeTransport(tr)
	case "dht": // the built-in DHT discovery on the host's shared UDP socket; arg: bootstrap HOST:PORT,... (loopback in tests)
		d, err := dht.New(dht.Config{Bootstrap: strings.Split(arg, ","), SendRate: -1, QueryTimeout: 500 * time.Millisecond})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sdk.ServeDiscovery(d)
	case "static": // the built-in static discovery: arg lists ADDR[@TOPICHEX+TOPICHEX...],...; then an optional interval
		interval := 200 * time.Millisecond
		if len(os.Args) > 3 {
			interval, _ = time.ParseDuration(os.Args[3])
		}
		d, err := static.New(static.Config{Peers: entries(arg), Interval: interval})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sdk.ServeDiscovery(d)
	case "deny": // a validator that rejects the addresses in arg, and panics on port 1
		deny := map[string]bool{}
		for _, a := range strings.Split(arg, ",") {
			deny[a] = true
		}
		sdk.ServeValidator(denyValidator(deny))
	case "starter": // a validator that is a framework.Starter and rejects every peer until started; arg "fail": Start fails
		sdk.ServeValidator(&starterValidator{fail: arg == "fail"})
	case "hang": // a transport and validator that answer Info and nothing else
		sdk.Serve(sdk.Plugins{Transport: hangTransport{}, Validator: hangTransport{}})
	case "silent": // never completes the handshake
		time.Sleep(time.Hour)
	case "garbage": // prints garbage instead of the handshake line
		fmt.Println("Hello! I am definitely not a plugin.")
		time.Sleep(time.Hour)
	case "badversion": // a plugin built for a future protocol version
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: plugin.HandshakeConfig{MagicCookieKey: wire.MagicCookieKey, MagicCookieValue: wire.MagicCookieValue},
			VersionedPlugins: map[int]plugin.PluginSet{99: {wire.KindTransport: &wire.GRPCPlugin{Register: func(s *grpc.Server) {
				pb.RegisterTransportServer(s, pb.UnimplementedTransportServer{})
			}}}},
			GRPCServer: plugin.DefaultGRPCServer,
		})
	case "badreply": // answers everything with garbage
		fdc := fdChannel() // a copy of fd 3 before the SDK adopts it
		set := plugin.PluginSet{
			wire.KindTransport: &wire.GRPCPlugin{Register: func(s *grpc.Server) { pb.RegisterTransportServer(s, &badTransport{fdc: fdc}) }},
			wire.KindDiscovery: &wire.GRPCPlugin{Register: func(s *grpc.Server) { pb.RegisterDiscoveryServer(s, &badDiscovery{}) }},
			wire.KindValidator: &wire.GRPCPlugin{Register: func(s *grpc.Server) { pb.RegisterValidatorServer(s, &badValidator{}) }},
		}
		cfg := sdk.ServeConfig(sdk.Plugins{}) // the SDK's channel (the host waits for it where no fds pass)
		cfg.VersionedPlugins = map[int]plugin.PluginSet{wire.ProtocolVersion: set}
		cfg.GRPCServer = plugin.DefaultGRPCServer
		plugin.Serve(cfg)
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

func entries(list string) []static.Entry {
	var out []static.Entry
	for _, a := range strings.Split(list, ",") {
		if a == "" {
			continue
		}
		addr, topics, _ := strings.Cut(a, "@")
		e := static.Entry{Addr: addr}
		for _, h := range strings.Split(topics, "+") {
			if t, err := framework.ParseTopic(h); err == nil {
				e.Topics = append(e.Topics, t)
			}
		}
		out = append(out, e)
	}
	return out
}

// userTransport wraps TCP in types the SDK cannot hand off by fd.
type userTransport struct{ t *tcp.Transport }

type userConn struct{ net.Conn }

func (c userConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

type userListener struct{ net.Listener }

func (l userListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return userConn{c}, nil
}

func (u userTransport) Name() string { return "relaytcp" }
func (u userTransport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	l, err := u.t.Listen(ctx, host, port)
	if err != nil {
		return nil, err
	}
	return userListener{l}, nil
}
func (u userTransport) Dial(ctx context.Context, p framework.Peer) (net.Conn, error) {
	c, err := u.t.Dial(ctx, p)
	if err != nil {
		return nil, err
	}
	return userConn{c}, nil
}

type denyValidator map[string]bool

func (d denyValidator) Name() string { return "deny" }
func (d denyValidator) Validate(_ context.Context, p framework.Peer) error {
	if p.Port == 1 {
		panic("port 1")
	}
	if d[p.Addr()] {
		return fmt.Errorf("%w: %s is on the deny list", framework.ErrRejected, p.Addr())
	}
	return nil
}

// starterValidator accepts every peer once started.
type starterValidator struct {
	fail    bool
	started bool
}

func (s *starterValidator) Name() string { return "starter" }
func (s *starterValidator) Start(context.Context) error {
	if s.fail {
		return errors.New("no socket today")
	}
	s.started = true
	return nil
}
func (s *starterValidator) Validate(context.Context, framework.Peer) error {
	if !s.started {
		return errors.New("not started")
	}
	return nil
}

type hangTransport struct{}

func (hangTransport) Name() string { return "hang" }
func (hangTransport) Listen(ctx context.Context, _ string, _ int) (framework.Listener, error) {
	select {}
}
func (hangTransport) Dial(ctx context.Context, _ framework.Peer) (net.Conn, error) { select {} }
func (hangTransport) Validate(context.Context, framework.Peer) error               { select {} }

// ---- garbage ----

func fdChannel() *net.UnixConn {
	if os.Getenv(wire.ConnectEnv) != "" {
		return nil // the host passes no fds: fd 3 is not a channel (and not ours)
	}
	f := os.NewFile(3, "fdchan")
	defer f.Close() // FileConn made a copy
	c, err := net.FileConn(f)
	if err != nil {
		return nil
	}
	return c.(*net.UnixConn)
}

func info(kind string) *pb.PluginInfo {
	return &pb.PluginInfo{ProtocolVersion: wire.ProtocolVersion, Kind: kind, Name: "bad"}
}

type badTransport struct {
	pb.UnimplementedTransportServer
	fdc *net.UnixConn
}

func (b *badTransport) Info(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return info(wire.KindTransport), nil
}

func msg(typ byte, token uint64) []byte {
	m := make([]byte, 9)
	m[0] = typ
	binary.BigEndian.PutUint64(m[1:], token)
	return m
}

// Dial misbehaves by port: 1 unknown hand-off kind; 2 a pipe instead of a
// socket; 3 a token that is not the request's; 4 garbage on the fd
// channel and no fd at all; 5 a nil connection and no error; 6 an address
// that does not parse.
func (b *badTransport) Dial(_ context.Context, req *pb.DialRequest) (*pb.ConnReply, error) {
	tok := req.GetToken()
	addr := &pb.Addr{Network: "tcp", Address: "127.0.0.1:9"}
	switch req.GetPeer().GetPort() {
	case 1:
		return &pb.ConnReply{Conn: &pb.ConnHandoff{Kind: 77, Token: tok, Local: addr, Remote: addr}}, nil
	case 2:
		r, w, _ := os.Pipe()
		sendFD(b.fdc, msg(1, tok), r)
		r.Close()
		w.Close()
		return &pb.ConnReply{Conn: &pb.ConnHandoff{Kind: pb.Handoff_HANDOFF_FD, Token: tok, Local: addr, Remote: addr}}, nil
	case 3:
		return &pb.ConnReply{Conn: &pb.ConnHandoff{Kind: pb.Handoff_HANDOFF_FD, Token: tok + 1000, Local: addr, Remote: addr}}, nil
	case 4:
		if b.fdc != nil { // nil where the host passes no fds
			b.fdc.WriteMsgUnix([]byte("\xff garbage"), nil, nil)
			b.fdc.WriteMsgUnix(msg(9, tok), nil, nil)
		}
		return &pb.ConnReply{Conn: &pb.ConnHandoff{Kind: pb.Handoff_HANDOFF_RELAY, Token: tok, Local: addr, Remote: addr}}, nil
	case 5:
		return &pb.ConnReply{}, nil
	case 6:
		return &pb.ConnReply{Conn: &pb.ConnHandoff{Kind: pb.Handoff_HANDOFF_FD, Token: tok, Local: addr, Remote: &pb.Addr{Network: "tcp", Address: "not an address"}}}, nil
	}
	return nil, errors.New("no such case")
}

func (b *badTransport) Listen(_ context.Context, req *pb.ListenRequest) (*pb.ListenReply, error) {
	return &pb.ListenReply{Kind: pb.Handoff_HANDOFF_REMOTE, Addr: &pb.Addr{Network: "tcp", Address: "127.0.0.1:1"}}, nil // listener id 0
}

type badDiscovery struct {
	pb.UnimplementedDiscoveryServer
}

func (b *badDiscovery) Info(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return info(wire.KindDiscovery), nil
}

// Join acknowledges, then reports bad peers, one good one and Flushed.
func (b *badDiscovery) Join(req *pb.JoinRequest, s pb.Discovery_JoinServer) error {
	ev := func(e *pb.DiscoveryEvent) { _ = s.Send(e) }
	peer := func(p *pb.Peer) { ev(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Peer{Peer: p}}) }
	ev(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Joined_{Joined: &pb.DiscoveryEvent_Joined{}}})
	other := make([]byte, 32)
	peer(&pb.Peer{Host: "127.0.0.1", Port: 5000, Topic: other})              // wrong topic
	peer(&pb.Peer{Host: "127.0.0.1", Port: 0, Topic: req.GetTopic()})        // bad port
	peer(&pb.Peer{Host: "", Port: 5000, Topic: req.GetTopic()})              // no host
	peer(&pb.Peer{Host: "127.0.0.1", Port: 5000, Topic: req.GetTopic()[:5]}) // short topic
	peer(&pb.Peer{Host: "127.0.0.1", Port: 5000, Topic: req.GetTopic(), Referrer: &pb.Referrer{Host: "x", Port: 99999}})
	peer(nil)
	ev(&pb.DiscoveryEvent{})                                                                       // empty event
	ev(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Joined_{Joined: &pb.DiscoveryEvent_Joined{}}}) // joined twice
	peer(&pb.Peer{Host: "127.0.0.1", Port: 5001, Topic: req.GetTopic()})                           // the good one
	ev(&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Flushed{Flushed: &pb.Empty{}}})
	<-s.Context().Done()
	return nil
}

func (b *badDiscovery) Leave(context.Context, *pb.TopicRequest) (*pb.ErrorReply, error) {
	return &pb.ErrorReply{}, nil
}
func (b *badDiscovery) Close(context.Context, *pb.Empty) (*pb.ErrorReply, error) {
	return &pb.ErrorReply{}, nil
}

type badValidator struct {
	pb.UnimplementedValidatorServer
}

func (b *badValidator) Info(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return info(wire.KindValidator), nil
}
func (b *badValidator) Validate(context.Context, *pb.Peer) (*pb.ValidateReply, error) {
	return nil, nil // gRPC cannot marshal this: the host gets an error
}

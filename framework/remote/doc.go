// Package remote runs a [framework.Transport], [framework.Discovery] or
// [framework.PeerValidator] as a separate plugin binary: it is the host
// side. Plugin authors import package
// [github.com/dwebswarm/dwebswarm-go/framework/remote/sdk] instead.
//
// # Host side
//
// [NewTransport], [NewDiscovery] and [NewValidator] start a plugin from a
// [Config] (path, args, optional SHA-256 pin) and return an adapter that
// implements the framework interface (under fx, swarmfx.RemoteTransport,
// swarmfx.RemoteDiscovery and swarmfx.RemoteValidator provide them).
// A plugin that crashes is reported (slog and Config.OnEvent), restarted
// with bounded backoff, and the swarm keeps working; every call has a
// timeout; whatever a plugin replies is validated, so garbage becomes an
// error wrapping [ErrBadReply], never a panic.
//
// The adapters forward the optional interfaces the engine uses (see
// [Forwarded]) and implement [framework.Proxy], so the engine uses only
// those the plugin's implementation has. [Probe] asks a binary which kinds
// it serves.
//
// # Plugin side
//
//	func main() { sdk.ServeTransport(mytransport.New()) }
//
// (package sdk; [Serve] and friends here are what it calls.)
//
// # Protocol
//
// github.com/hashicorp/go-plugin starts the binary with a magic cookie in
// its environment ([MagicCookieKey]) and negotiates [ProtocolVersion]; the
// plugin then serves the gRPC services of remote.proto (in
// framework/remote/internal/wire/proto: the wire code hosts and the SDK
// share, not an API). Each plugin gets its own PLUGIN_UNIX_SOCKET_DIR for
// go-plugin's socket, removed when the instance ends.
//
// Bytes of connections never cross gRPC. The host gives every plugin an fd
// channel: on Linux a SOCK_SEQPACKET socketpair whose plugin end is the
// plugin's fd 3; on macOS (no SOCK_SEQPACKET) a SOCK_STREAM socketpair
// carrying the same messages framed. Windows passes no fds: the plugin
// connects back to a loopback port of the host instead, every connection
// is relayed over such a connection and every listener stays in the
// plugin (see the package README's Platforms section). Requests that produce a socket (Listen, Accept, Dial) carry a token
// chosen by the host; the plugin sends the socket's fd with SCM_RIGHTS under
// that token, then replies, and the host matches the two:
//
//   - kernel sockets (*net.TCPConn, *net.UnixConn, *net.TCPListener,
//     *net.UnixListener) are sent themselves and closed in the plugin: the
//     host reads, writes and accepts natively, at native speed, and they
//     outlive the plugin;
//   - other connections (user-space protocols) are relayed: the plugin
//     copies bytes between its connection and one end of a stream
//     socketpair and sends the other end. Before it ends its side of a
//     relay it sends a relay-end message (clean EOF or error) on the fd
//     channel, so the host can tell a clean close from a crash: a relay cut
//     by a dying plugin reads as an error wrapping [ErrCrashed], never EOF;
//   - other listeners stay in the plugin; the host calls Accept through
//     gRPC, and listens again on the same port after a restart.
//
// Plugins whose implementation is a [framework.PacketConnUser] (the DHT,
// uTP) get the swarm's shared UDP socket relayed: the adapters'
// UsePacketConn makes the plugin create a SOCK_SEQPACKET socketpair (a
// framed SOCK_STREAM one on macOS, a framed connection to the host on
// Windows) and send one end under a token; datagrams cross it behind a small address
// header (layout in packetconn.go), and every restarted instance gets a
// fresh pair.
//
// The channel's byte layout is documented in fdchan.go. The kernel closes
// the plugin's end when the plugin exits, so the host learns of a crash
// immediately by reading EOF on the channel.
package remote

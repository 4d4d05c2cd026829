// Package remote runs a [framework.Transport], [framework.Discovery] or
// [framework.PeerValidator] as a separate plugin binary: it is the host
// side, which starts and supervises plugins. Plugin authors import package
// [github.com/dwebswarm/dwebswarm-go/framework/remote/sdk] instead, the
// plugin side, which does not link this one.
//
// [NewTransport], [NewDiscovery] and [NewValidator] start a plugin from a
// [Config] (path, args, optional SHA-256 pin) and return an adapter that
// implements the framework interface (under fx, swarmfx.RemoteTransport,
// swarmfx.RemoteDiscovery and swarmfx.RemoteValidator provide them).
// A plugin that crashes is reported (slog and Config.OnEvent), restarted
// with bounded backoff, and the swarm keeps working; every call has a
// timeout; whatever a plugin replies is validated, so garbage becomes an
// error wrapping [ErrBadReply], never a panic. [Probe] asks a binary which
// kinds it serves.
//
// The adapters forward the optional interfaces the engine uses (see
// [Forwarded]) and implement [framework.Proxy], so the engine uses only
// those the plugin's implementation has.
//
// # How the host runs a plugin
//
// github.com/hashicorp/go-plugin starts the binary with a magic cookie in
// its environment ([MagicCookieKey]) and negotiates [ProtocolVersion]; the
// plugin then serves the gRPC services of remote.proto. Each plugin
// instance gets its own PLUGIN_UNIX_SOCKET_DIR for go-plugin's socket,
// removed when the instance ends.
//
// Bytes of connections never cross gRPC. The host gives every instance an
// fd channel (on Linux a SOCK_SEQPACKET socketpair whose plugin end is the
// plugin's fd 3; on macOS a framed SOCK_STREAM one; on Windows, which
// passes no fds, a connection the plugin makes back to the host). Requests
// that produce a socket (Listen, Accept, Dial) carry a token chosen by the
// host; the plugin hands the socket over under that token, then replies,
// and the host matches the two:
//
//   - kernel sockets (*net.TCPConn, *net.UnixConn, *net.TCPListener,
//     *net.UnixListener) are sent themselves: the host reads, writes and
//     accepts natively, at native speed, and they outlive the plugin;
//   - other connections are relayed through a socketpair (Windows: a
//     loopback connection); a relay cut by a dying plugin reads as an error
//     wrapping [ErrCrashed], never EOF;
//   - other listeners stay in the plugin; the host calls Accept through
//     gRPC, and listens again on the same port after a restart.
//
// Plugins whose implementation is a [framework.PacketConnUser] (the DHT,
// uTP) get the swarm's shared UDP socket relayed, and every restarted
// instance gets a fresh relay. The kernel closes the plugin's end of the
// fd channel when the plugin exits, so the host learns of a crash at once.
//
// The wire formats (remote.proto, the fd channel's messages, the
// connect-back hellos, the shared socket's datagram header) are documented
// beside their code in framework/remote/internal/wire, which this package
// and package sdk share; it is not an API. The package README has the
// author's guide, the platform table and figures.
package remote

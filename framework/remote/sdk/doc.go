// Package sdk is the one package a dwebswarm plugin binary's main imports:
// it serves a [framework.Transport], [framework.Discovery] or
// [framework.PeerValidator] to the dwebswarm host that started the binary.
//
//	func main() { sdk.ServeTransport(mytransport.New()) }
//
// It is the plugin side only: it does not link the host side (package
// github.com/dwebswarm/dwebswarm-go/framework/remote, which starts and
// supervises plugins), and the two share nothing but the wire code of
// framework/remote/internal/wire (the handshake, remote.proto, the fd
// channel, relays and the shared UDP socket's datagram layout, each
// documented beside its code there).
//
// What crosses the process boundary:
//
//   - Connections and listeners that are kernel sockets (*net.TCPConn,
//     *net.UnixConn, *net.TCPListener, *net.UnixListener, exactly those
//     types) are handed to the host by fd and closed here; any other
//     net.Conn is relayed through a socketpair, and any other listener
//     stays here and is accepted on through gRPC. Where no fds pass
//     (Windows) every connection is relayed and every listener stays here.
//   - Errors keep their meaning: one that wraps a sentinel of package
//     framework, context.Canceled or DeadlineExceeded, net.ErrClosed or a
//     syscall.Errno still matches errors.Is on the host.
//   - A panic in a call becomes an error (a validator's panic rejects the
//     peer); log/slog's default logger writes to the host's log.
//   - Optional interfaces the host forwards, each announced in the plugin's
//     Info so the host calls only what the implementation has:
//     [framework.PacketConnUser] (the swarm's shared UDP socket, relayed),
//     a discovery's [framework.HolePuncher], [framework.ConnectivityReporter]
//     and [framework.Refresher], a transport's [framework.DialFilter] and
//     [framework.Drainer], and [framework.Ordered]. remote.Forwarded lists
//     every interface of package framework and how, or why not, it crosses.
//   - An implementation that is a [framework.Starter] is started by Serve,
//     in the plugin's process, before it serves (Start is not forwarded).
//
// Run by hand (not by a host), a plugin explains that it is a plugin and
// exits with status 1.
package sdk

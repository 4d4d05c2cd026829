// Package wire is the code the host side (package remote) and the plugin
// side (package sdk) of dwebswarm's out-of-process plugins share: the
// protocol between them, each part documented beside its code. It is
// internal: neither hosts nor plugin authors import it.
//
//   - handshake.go: the go-plugin handshake (magic cookie, protocol
//     version), the plugin kinds, the gRPC glue, call timeouts.
//   - proto/remote.proto: the gRPC services, Transport, Discovery and
//     Validator.
//   - errors.go, decode.go: errors and framework values in their wire form,
//     and the decoders that validate what the other side sent (garbage is
//     an error wrapping [ErrBadReply], never a panic).
//   - fdchan.go: the fd channel, by which sockets reach the host under a
//     token (both ends: [FDChan] is the host's, [FDSender] the plugin's),
//     and the hand-off modes of the platforms ([HandoffMode]);
//     fdchan_unix.go, fdchan_windows.go, sockpair_*.go: the platform parts.
//   - connect.go: where no fds pass (Windows), the connections the plugin
//     makes back to the host instead, and their hello.
//   - framing.go: frames on stream sockets, and [MsgConn], one message per
//     datagram over a SOCK_SEQPACKET socket or a framed stream.
//   - packetconn.go: the swarm's shared UDP socket out of process: the
//     datagram header on the relay and the plugin's net.PacketConn.
//
// Bump [ProtocolVersion] for any incompatible change of any of them.
package wire

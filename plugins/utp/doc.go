// Package utp is the uTP [framework.Transport] ("utp"): BEP 29 micro
// transport protocol streams on the swarm's shared UDP socket, so that the
// NAT mapping made by DHT traffic serves uTP (and hole punching).
//
// # Use
//
// The transport implements [framework.PacketConnUser]: the swarm binds one
// UDP socket on its listening port, demultiplexes it with internal/udpmux
// and hands the non-KRPC side to UsePacketConn. The transport reads every
// packet from that PacketConn, writes through it, and never closes it.
// Listen returns a listener on that socket; it works in either order
// (UsePacketConn first, or — as framework/accept.go does today — Listen
// first: the listener then reserves the port number and starts accepting
// when the socket arrives). Dial and Accept without a socket fail with
// [ErrNoPacketConn].
//
// # Backend decision (measured on this 2-core machine)
//
//   - github.com/anacrolix/utp v0.2.0: no congestion control (256 packets
//     in flight); with stock 208 KiB socket buffers it stalls on loopback
//     bulk transfers. Rejected: not robust.
//   - github.com/anacrolix/go-libutp v1.3.2 (cgo, libutp + LEDBAT): robust
//     but ~22 MiB/s on loopback, needs cgo, and its NewSocket only opens a
//     socket of its own (no way to run it on a given net.PacketConn, i.e.
//     on the swarm's shared socket). Rejected.
//   - This package: a pure-Go uTP over the PacketConn. Builds with
//     CGO_ENABLED=0. First measured on loopback (stock rmem 208 KiB, shared
//     udpmux sockets on both sides, data verified by SHA-256): 64 MiB one
//     way 360–440 MiB/s at 16 KiB packets, 150–175 MiB/s at 1400-byte
//     packets (both ≥ 2× go-libutp's 22 MiB/s, which is ~44).
//
// # Throughput
//
// BenchmarkLoopbackThroughput moves 256 MiB over uTP and over TCP on
// loopback in each iteration and reports both rates and utp/tcp (only the
// ratio of one run means much on this shared 2-core machine):
//
//	go test -run '^$' -bench LoopbackThroughput -benchtime 3x ./plugins/utp/
//
// packet=1400 forces 1 400-byte datagrams (what every non-loopback peer
// gets); src=generated has the sender make each byte with a ChaCha8
// stream first (≈ 1 GiB/s of CPU charged to both transports, as in the
// issue's ≈ 0.14× figure), the others write a fixed buffer, so that only
// the transports are measured. The cost was per datagram: one syscall per
// datagram each way, a copy and an address allocated per datagram in
// udpmux, two allocations per packet sent, an ack per 8 packets and
// retransmissions from overflowing 208 KiB socket buffers. Now: one batch
// per pump, sent as UDP_SEGMENT (GSO) runs of up to 64 datagrams (udpmux
// Conn.WriteBatch; one send per datagram off Linux); UDP_GRO reads split
// back into datagrams; pooled packets and receive buffers (≈ 0.03
// allocations per packet, from 2); acks, and the reader's wake-up, at the
// end of a read burst (see Protocol); 4 MiB socket buffers. On a
// *udpmux.Conn the transport takes its datagrams in the Mux's read loop
// (udpmux Conn.SetHandler): no copy into a pooled packet, no queue and no
// hand-off to a read goroutine of its own per datagram, and the burst ends
// when the socket has nothing more waiting (the Mux tells it: Drained),
// as libutp acks once per socket drain; on any other PacketConn it runs
// a read loop of its own. The receive and send buffers are rings (a slice
// compacted to its front moved up to a whole window on every push: a
// third of the CPU of a bulk transfer). Resends that prove unneeded are
// undone (see Protocol): on a loaded 2-core machine a receiver starved of
// CPU for more than 5 ms made the tail-loss probe fire hundreds of times
// per 256 MiB, and each such probe's ack used to declare the rest of the
// window lost (400–1 700 needless resends per 256 MiB, each episode
// halving the window; now 2–8). Figures: see README (Benchmarks).
//
// # Protocol
//
// Wire format: BEP 29 (20-byte header, types DATA/FIN/STATE/RESET/SYN,
// version 1, selective-ack extension 1). The first byte of a uTP packet is
// type<<4|1, never 'd', so udpmux never routes it to the DHT.
//
//   - Handshake: the initiator picks a receive id R and sends SYN with
//     connection_id R; the answerer replies STATE (the SYN-ACK: its random
//     initial seq_nr, ack_nr = the SYN's seq_nr) and sends with id R,
//     receives with R+1. The initiator answers the SYN-ACK at once with an
//     empty DATA packet, sent reliably (BEP 29 has no third packet; a
//     libutp acceptor stays in SYN_RECV, unable to send, until a DATA
//     packet arrives, so a STATE would leave a server that speaks first
//     waiting; go-libutp's dialler does the same empty write). Until a
//     packet acking the SYN-ACK's
//     seq_nr arrives the connection is half-open: it is not in the accept
//     backlog (Accept and a swarm's maxPeers never see it), sends nothing
//     but its SYN-ACK and at most three more to repeated SYNs (no
//     keep-alive; a RESET only when the transport shuts down), and ends
//     silently after HalfOpenTimeout (15 s). Half-open connections are bounded in total (MaxHalfOpen
//     1024: the oldest gives way) and per source IP (MaxHalfOpenPerIP
//     128: further SYNs are dropped); SYNs are rate-limited per source IP
//     (SynRate 32/s, SynBurst 128, MaxSynSources 4096 tracked, the rest
//     share one bucket). A spoofing sender thus gets at most one 20-byte
//     packet per 20-byte SYN, and none over its rate.
//     Repeated SYNs get the same answer; SYN retries at 250 ms, doubling
//     to 2 s, until the dial's context or DialTimeout (10 s) ends. A SYN
//     to a socket that does not listen is answered with RESET (dial fails
//     at once with ECONNREFUSED); unknown connections get RESET, at most
//     100 per second.
//   - Reliability: cumulative ack_nr plus selective acks (up to 256
//     packets beyond ack_nr); a packet is lost when three packets sent
//     after it are selectively acked, or after three duplicate acks, or
//     when the ack of a resent packet shows that the resend overtook it
//     (it was sent before the resend and is not acked: a window lost at
//     its head is resent at once, not one packet per probe; libutp's acks
//     then carry an empty selective ack, which the other rules do not
//     count); an ack that covers a resent packet gives no RTT sample
//     (Karn: the packets after it may have waited at the peer since they
//     were sent; one such sample made the SRTT 1.3 s); a recovery whose
//     resends all prove unneeded is undone when it ends (its window
//     reduction is reversed): a resend is unneeded when the peer's ack
//     was sent before the first resend reached it, which uTP's timestamps
//     tell (ts − timestamp_difference is the timestamp of the last packet
//     the peer had received, later only by the peer's delay in acking, so
//     a resend that was needed is never taken for an unneeded one; a peer
//     that sends no timestamp_difference gets no undo), and then nothing
//     sent before the resend is presumed lost either (RFC 3522's Eifel
//     detection, with uTP's timestamps, and Linux's rule that every resend
//     of the episode must be unneeded; Stats.SpuriousRecoveries). A peer
//     that lies in its timestamps can so keep its window from shrinking on
//     loss, as a peer that acks data it never received could anyway (uTP
//     acks prove nothing) and as it steers LEDBAT with the delays it
//     reports; a
//     tail-loss probe resends the oldest packet after max(2·SRTT, 5 ms)
//     without acks, twice at most, the second after twice the first
//     timeout; then only the retransmission timeout sends: SRTT+4·RTTVAR
//     clamped to [200 ms, 8 s], doubling on each timeout (the window then
//     restarts at one packet), and a resend does not postpone it. Into a
//     dead path a connection thus sends at most 12 datagrams before the
//     30 s idle timeout ends it (the packet, 2 probes, 8 timeouts at
//     0.2, 0.6, 1.4, 3, 6.2, 12.6, 20.6, 28.6 s, the RESET); before, it
//     sent a probe every 2·SRTT: ≈5 400 on loopback (TestDeadPathBacksOff
//     counts 7 with a 2 s idle timeout, 198 before the change). Acks are
//     coalesced: one per 8 data packets, in order or not (a selective ack
//     while packets are missing), else after 1 ms; at once for the packet
//     that fills a hole, a duplicate or a FIN; and while the socket has
//     more datagrams queued (a burst being read), the ack due waits for
//     the burst's end (at most 64 datagrams), as libutp acks once per
//     burst read (65–243 acks for 12 490 packets); we acked every second
//     packet and every out-of-order one with a full selective ack (7 168),
//     then 1 750–1 870 for 16 MiB (≈12 170 packets) from libutp on
//     loopback.
//   - Congestion control: LEDBAT (RFC 6817) with a 60 ms target
//     (LEDBAT++'s, draft-irtf-iccrg-ledbat-plus-plus; RFC 6817 allows up
//     to 100 ms, libutp uses 100, and a flow with a lower target yields to
//     one with a higher) over the one-way delays the peer echoes (base
//     delay = minimum over two 1-minute buckets, current = minimum of the
//     last three samples). Slow start while the queuing delay stays under
//     half the target; below the target the window grows by at most one
//     packet per RTT, and only when it limited the sending; above the
//     target it shrinks by (delay/target − 1) of itself per RTT, at most
//     half (LEDBAT++'s multiplicative decrease), whether or not it limited
//     the sending, and once the queue is gone slow start may take it back
//     to where it was before that decrease (a delay spike, e.g. a peer
//     starved of CPU, costs a few RTTs, not a linear climb from two
//     packets); TestLEDBATResponse holds these on a fake timeline; a
//     loss halves the window once per window; bursts are capped at 128 KiB
//     per send opportunity so that an opening window does not overflow
//     the peer's socket buffer. With a 100 ms target and RFC 6817's
//     decrease of at most one packet per RTT, a libutp flow kept 18 % of a
//     shared link. Flow control: the receive window (ReadBuffer, 4 MiB,
//     and at most a quarter of the UDP socket's receive buffer: 52 KiB
//     on Linux's default 208 KiB; the swarm's socket, which asks for
//     4 MiB (Linux reports twice what it grants) and queues 512 datagrams
//     in udpmux, gives ≈ 2.3 MiB when net.core.rmem_max allows 4 MiB and
//     ≈ 360 KiB at the default rmem_max) is advertised in wnd_size. libutp puts a whole window in flight in
//     bursts; with 4 MiB on a 208 KiB socket the kernel dropped 45–257 of
//     its datagrams per 16 MiB, and a libutp dialler whose initial seq_nr
//     is in the upper half of the sequence space never fast-retransmits
//     (its fast_resend_seq_nr starts at 1, before the random seq_nr is
//     drawn, and its wrapping comparison never advances it), so each loss
//     cost it a 1–1.5 s timeout (issue 16). A closed window is probed on
//     a timer and reopened by a window update. See "LEDBAT on a shared
//     link" below for the figures.
//   - Packet size: 1400-byte datagrams (header included; PacketSize) to
//     every peer unless it announced it reads larger ones: other BEP 29
//     implementations read less than 64 KiB (anacrolix/utp reads 8 KiB
//     and took our 16 KiB datagrams truncated, delivering wrong data).
//     Our SYN and SYN-ACK carry the size we read (64 KiB) in an
//     extension of ours, id 0x44, 4 bytes big-endian, chained after an
//     all-zero extension 2 (libutp drops packets whose first extension
//     id is 3 or more but skips unknown ones later in the chain;
//     anacrolix/utp and libtorrent skip both). A loopback peer that
//     announced ≥ LoopbackPacketSize gets 16 KiB datagrams (the loopback
//     MTU is 64 KiB; 8 KiB gave ~300 MiB/s, 32–64 KiB lost more packets
//     to the 208 KiB buffer); other paths keep PacketSize (no path-MTU
//     discovery).
//   - Liveness: a connection quiet for 10 s sends a keep-alive STATE; one
//     whose peer sent nothing for 30 s fails with [ErrPeerSilent] (so a
//     vanished peer is an error, not a hang).
//   - Close: CloseWrite sends FIN after the queued data (half-close: the
//     peer reads io.EOF and can still write). Close delivers the queued
//     data and FIN in the background for up to Linger (30 s); unread data,
//     or data arriving after Close, resets the connection (the writer gets
//     ECONNRESET), as TCP does.
//
// # Interop
//
// plugins/utp/interop (a module of its own, for cgo and the other
// implementations' dependencies) tests us against libutp through
// github.com/anacrolix/go-libutp v1.3.2 and against
// github.com/anacrolix/utp v0.2.0 on loopback, both ways of dialling: 16
// MiB each way at once with a content check while we half-close (the
// peer reads io.EOF, then goes on writing), a reset (our Close with
// unread data: their read fails), their Close (our read: the data, then
// io.EOF), and an acceptor that speaks first. One libutp limit remains:
// an acceptor whose application writes before our first DATA packet has
// reached it waits until something else wakes it (libutp raises no
// writable event for SYN_RECV → CONNECTED); the test writes after that
// packet was acked.
//
// # LEDBAT on a shared link
//
// BenchmarkLEDBATSharedLink (interop module) sends bulk flows through a
// user-space relay whose flows all leave through one internal/impair
// socket: one 20 Mbit/s rate cap, one 500 kB tail-drop queue (200 ms), 10
// ms one way; acks return unimpaired. Over 8 s after 3 s of warm-up it
// reports the queueing delay each data packet met entering the queue
// (impair's QueueDelay; median and 95th percentile), the link's delivered
// rate, and libutp's share of it when a libutp flow competes:
//
//	(cd plugins/utp/interop && go test -run '^$' -bench LEDBAT -benchtime 1x .)
//
// Figures: see README (uTP). The latecomer case stays LEDBAT's known
// weakness: a flow that starts while another keeps a standing queue takes
// that queue for its base delay.
//
// Not done: path-MTU discovery, pacing beyond the burst cap, LEDBAT++'s
// periodic slowdowns (they re-measure the base delay only against flows
// that slow down too).
package utp

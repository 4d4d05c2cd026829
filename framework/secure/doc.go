// Package secure holds a swarm's identity — its static X25519 key pair, the
// key file it is kept in, and the text form of public keys — and the
// encrypted, authenticated session (Noise XX) every swarm connection runs.
//
// Public keys print in z-base-32 (52 characters: lowercase, no padding, no
// look-alike pairs such as 0/o or 1/l — the alphabet pkarr and hyperdht use
// for keys), and parse from z-base-32 or hex (64 characters, hyperswarm's
// form). A key file holds one line, "dwebswarm-private-key-v1 " and the
// private key in hex, then a comment with the public key; it is created
// with mode 0600 and refused when group or others may read it.
//
// # Sessions
//
// [Client] (the dialler, the Noise initiator) and [Server] (the responder)
// run a handshake on a connected byte stream (TCP, uTP, a socket handed
// over by an out-of-process transport) and return a [*Conn]: a net.Conn
// (with CloseWrite) whose bytes travel encrypted and authenticated. The
// handshake proves each side's static key ([Conn.RemotePublicKey]) and
// the topic the initiator dials for, without revealing the topic.
//
// # Wire format, version 1
//
// Everything below is what another implementation must send and check.
// Integers are big-endian. "||" is concatenation.
//
// Noise protocol: Noise_XX_25519_AESGCM_SHA256 (the Noise Protocol
// Framework, revision 34), prologue the 29 ASCII bytes
// "dwebswarm/1 session handshake". The prologue names the handshake
// format; the session protocol versions are negotiated inside it (below).
//
// Handshake messages travel as a 2-byte length L (1..65535) then L bytes
// of Noise message. A length of 0 introduces a reject instead (below).
//
//	msg1  initiator → responder   -> e        payload in clear
//	msg2  responder → initiator   <- e, ee, s, es   payload encrypted
//	msg3  initiator → responder   -> s, se     payload encrypted
//	then  transport frames both ways; the initiator's may follow msg3 at once
//
// msg1's payload (after the 32-byte ephemeral key; it is in clear, but
// Noise mixes it into the handshake hash, so any change to it makes msg2
// fail to authenticate):
//
//	n        1 byte, 1..16: how many versions follow
//	versions n bytes: the session versions the initiator speaks (this package: 1)
//	kind     1 byte: 0 = no topic, 1 = topic
//	cap1     32 bytes, only when kind = 1
//	...      further bytes are ignored by version 1 (they are hashed)
//
// cap1 = HMAC-SHA256(key = topic, "dwebswarm/1 cap initiator" || e) where
// topic is the 32-byte topic and e the initiator's ephemeral public key
// (the first 32 bytes of msg1). The responder recomputes it for each
// topic its Topics() returns (O(number of topics)) and compares in
// constant time.
//
// The responder then either rejects, in clear, with
//
//	0x00 0x00  reason (1 byte: 1 = no common version, 2 = topic)  n (1 byte)  versions (n bytes, its own)
//
// and closes — reason 1 when no version is in both lists (both sides
// fail with [ErrVersion]), reason 2 when cap1 matches no topic it
// accepts, or kind is 0 and it does not allow initiators without a topic
// (both sides fail with [ErrTopic]) — or answers with msg2, whose
// encrypted payload is
//
//	version  1 byte: the highest version in both lists
//	kind     1 byte: msg1's kind
//	proof2   32 bytes, only when kind = 1
//
// proof2 = HMAC-SHA256(key = topic, "dwebswarm/1 cap responder" || h1),
// h1 the Noise handshake hash after msg1 (which covers the prologue, e,
// and msg1's whole payload, cap1 included). The initiator fails with
// [ErrVersion] if the version is not one it offered, and with [ErrTopic]
// if the kind differs from its own or proof2 is wrong. Once msg2 is read
// the initiator knows the responder's static key and runs its Accept.
//
// msg3's encrypted payload is one status byte: 0 = accepted, 1 = the
// initiator's Accept refused (both sides fail with [ErrRefused]), 2 = the
// responder's proof failed (the responder fails with [ErrTopic]). A
// non-zero status ends the handshake: the initiator closes after msg3.
//
// On status 0 the handshake is complete for the initiator: [Client]
// returns once msg3 is written, and the initiator may send transport
// frames right behind it. The responder, reading msg3, learns the
// initiator's static key and runs its Accept. If Accept agrees, the
// responder sends a keep-alive frame as its first frame — the
// confirmation — and [Server] returns; its other transport frames follow.
// The confirmation is the point where the session is decided on both
// sides: the initiator's [Conn.Confirmed] closes when the responder's
// first frame other than close authenticates (a conforming responder's
// first frame is the keep-alive; a later implementation must send some
// frame at once too). An initiator that must not act on a session the
// responder may still refuse — the swarm does not report a dialled
// session before it — waits for it; the data it writes meanwhile flows
// without waiting. If it refuses, the responder sends, as its first
// and only frame, close with reason 1 (refused), ends its write direction,
// reads and discards whatever the initiator sent after msg3 until the
// initiator closes (at most 2 s; closing with that data unread would
// reset the connection, and the reset could overtake the close frame),
// and closes; its Server fails with [ErrRefused]. No frame the initiator
// sent is ever opened or delivered to the responder's application. On the
// initiator that close frame ends the session: Read returns (and
// [Conn.Err], Config.OnClose report) an error wrapping [ErrRefused], and
// Done closes. So a responder's refusal costs the initiator no extra
// round trip on success, and on refusal the data it wrote is lost.
// (The responder's topic check is complete at msg1, so a refusal after
// msg3 is always Accept's; a responder that cannot open msg3 — it was
// altered — closes without a close frame: [ErrClosedByPeer] on the
// initiator.)
//
// Round trips: the initiator waits 1 round trip beyond the TCP connect
// (msg1 →, ← msg2; msg3 and the first data → without waiting), and one
// more for the confirmation (msg3 →, ← confirmation); the responder's
// Server returns on msg3, 1 round trip after it sent msg2.
// Rejects at msg1 (version, topic) and a bad msg2 (version, proof2) fail
// Client itself, as does the initiator's own Accept.
//
// Transport frames (after msg3; initiator → responder with the first
// CipherState of Noise's Split, responder → initiator with the second):
//
//	length     2 bytes: the ciphertext length, 17..65535
//	ciphertext AESGCM(k, n, ad = empty, plaintext), 16-byte tag included
//	plaintext  type (1 byte) || body (0..65518 bytes)
//
// The nonce n is implicit: each direction counts its frames from 0 (the
// 12-byte AESGCM nonce is 4 zero bytes and the 8-byte big-endian
// counter, as Noise specifies), so a frame replayed, dropped, reordered,
// or altered in any bit — length field included — fails authentication. Types:
//
//	0 data        body: application bytes (at most 65518 per frame; Write splits)
//	1 keep-alive  empty body
//	2 FIN         empty body: the sender's CloseWrite; no data follows in that direction
//	3 close       body: reason (1 byte: 0 = normal, 1 = refused, sent by a refusing responder as its first frame (above); other values read as 0); the sender then closes the transport
//	4..255        reserved: version 1 ignores them (a later version may add frame types)
//
// A frame that fails authentication, a length under 17, a stream that ends
// in the middle of a frame, or data after FIN ends the session with
// [ErrTampered]; the frame's body is never delivered (data
// of earlier frames, which did authenticate, is). The transport ending
// at a frame boundary without a close frame (a reset, or a truncation by a
// relay) ends it with [ErrClosedByPeer] and Read returns that error, not
// io.EOF. After a close frame Read returns the data buffered and then
// io.EOF, and Err is [ErrClosedByPeer] (after one with reason refused,
// [ErrRefused] in both places). Once both sides have sent FIN the
// session ends with no error. A sender must close the transport after
// 2^64-1 frames in one direction (Noise's nonce limit).
//
// Keep-alive: a side sends a keep-alive frame after KeepAlive
// (default 5 s) without sending anything; a side that receives nothing
// for Timeout (default 15 s) ends the session with [ErrTimeout]. Time the
// receiver spends not reading because its application has not made room
// (below) does not count as silence. So a silent or vanished peer is
// detected within Timeout, and a peer that closed or reset within the
// time the transport takes to report it, whether the application reads
// or not.
//
// # Topic capability: what it protects
//
// A DHT node knows only the topic's infohash (a SHA-256 of the topic with
// a prefix, truncated; or any other hash of it). cap1 and proof2 are
// keyed by the topic itself, so the infohash (or sha1/sha256 of the
// topic) neither computes them nor inverts them: such an attacker can
// neither be accepted as an initiator for the topic nor pass as a
// responder of it, and learns nothing of the topic from msg1 beyond what
// a guess can test (a low-entropy topic — a short name hashed — can be
// found by trying candidates against an observed cap1; topics should be
// random or hash a secret). cap1 binds the initiator's ephemeral key, so
// an observed msg1 replayed by someone else is useless (msg3 needs that
// key's private half), and a relay that substitutes its own ephemeral
// key to read the session cannot recompute cap1. proof2 binds h1, so it
// cannot be taken from another handshake. A man in the middle who knows
// the topic can terminate both sessions with its own key: both sides then
// see the MITM's RemotePublicKey, which key pinning in Accept catches.
// Rejects are unauthenticated (an active attacker could forge one; it
// could equally cut the connection); everything else is authenticated.
// The topic search is constant-time per comparison but stops at the
// first match.
//
// # Local behaviour
//
// Each session has one goroutine, which reads frames continuously. It
// reads the transport ahead into a pooled buffer of two maximal frames and
// opens the frames in it in place: on a TCP or Unix socket through the
// socket's RawConn, taking the buffer when the socket is readable and
// giving it back when a read finds nothing and nothing waits, so that a
// stream costs one read system call per burst of frames, as a plain
// socket's reader would; on other transports (uTP, pipes) it waits with a
// 2-byte read and reads ahead once bytes come. An opened frame's data goes
// straight into the buffer of a Read that waits, or else into a receive
// buffer of at most 256 KiB of data (recvBufMax, which one frame may
// overshoot; 64 KiB chunks filled in order, so at most seven of them in
// memory, and the 128 KiB read-ahead);
// when it is full the goroutine stops reading until the application reads,
// and the sender blocks in TCP flow control. Write seals up to four
// maximal frames into one transport write (a 64 KiB Write is two frames,
// one write). All these buffers come from sync.Pools and are held only
// while data waits or flows, so an idle session holds
// none. Deadlines behave as net.Conn's (os.ErrDeadlineExceeded); a
// write deadline that passes before a frame is written leaves the
// session intact, one that passes in the middle of a frame ends it.
// Close sends a close frame when no Write is blocked, closes the
// transport, unblocks Read and Write, and returns without waiting; Done
// closes after OnClose returned. Keep-alive and timeout run on
// Config.Clock.
//
// # Measurements (2-core AMD EPYC VM with AES-NI and SHA-NI, shared with other builds; go test -bench)
//
// Cipher on a maximal frame (BenchmarkCipher): AESGCM 4678–4698 MB/s,
// ChaChaPoly 1339–2177 MB/s. A whole XX handshake in memory, both sides
// (BenchmarkHandshakeSuite, machine loaded, best of 4): AESGCM/SHA256
// 474 µs, AESGCM/BLAKE2s 477 µs, ChaChaPoly/SHA256 427 µs,
// ChaChaPoly/BLAKE2s 446 µs. The hash makes no difference beyond the
// noise; the cipher costs AESGCM about 40 µs more per handshake (key
// setup) but gives 2.2–3.5× the throughput, which is what a session
// spends its CPU on: so AESGCM and SHA256. (On CPUs without AES
// instructions ChaChaPoly would win; the suite is fixed per protocol
// version.) X25519 runs on raw keys (x25519.go): a fresh ephemeral key's
// public half is a fixed-base multiplication on edwards25519
// (filippo.io/edwards25519; BenchmarkX25519, loaded machine: 76 µs
// against 129 µs for crypto/ecdh's NewPrivateKey), each DH one
// Montgomery ladder (124 µs there, 38 µs on a quiet machine).
// flynn/noise's DH25519 goes through x/crypto's curve25519.X25519, which
// re-derives the public key on every DH, two scalar multiplications
// instead of one; the same handshakes with it took 632–739 µs. Process
// CPU of 1000 in-memory handshakes (BenchmarkHandshakeSuite, both sides,
// load 20 on 2 cores, 3 runs each, alternating): 390–460 µs per
// handshake, against 480–680 µs with the former crypto/ecdh keys.
//
// On loopback TCP, in the same run (BenchmarkThroughput, 64 MiB per
// round): quiet machine raw TCP 1337 MiB/s, session 1563 MiB/s (1.17×:
// the session's reader goroutine overlaps receiving with the
// application's reads); loaded machine (load 4.7 on 2 cores) raw 516
// MiB/s, session 370 MiB/s (0.72×). Handshake CPU beyond the TCP connect,
// both sides together, so twice one peer's cost (BenchmarkHandshake,
// load 3–4.5, 4 runs each, old and new code back to back): with the
// 1-round-trip handshake 520–640 µs (one run in a load spike: 995 µs),
// 260–320 µs per peer against the goal of 300; with the former
// confirmation frame 610–790 µs (613–720 µs in an earlier run). About
// 300 µs of it is the 8 X25519 operations, the rest system calls and
// scheduling. Wall time until Client returns, the initiator's wait: 447–
// 614 µs, formerly 523–655 µs; until both sides have returned 492–676
// µs; the TCP connect itself 80–200 µs. Loopback's round trip is a few
// tens of µs, so the saving there is small; on a network it is one round
// trip per connection. Memory per idle
// session end, its goroutine and TCP connection included
// (BenchmarkIdleSessionMemory, 1000 sessions): 8.2–8.9 KiB (goal 16 KiB),
// 7.7–8.3 KiB of it beyond the bare TCP connection.
//
// With the read-ahead, batched writes, direct hand-over to a waiting Read
// and the fixed-base ephemeral key, one run at load 25–28 on the 2 cores
// (AESGCM at 1044 MB/s in BenchmarkCipher then): BenchmarkThroughput raw
// 247 MiB/s, session 145 MiB/s (0.59×); BenchmarkHandshake 258–280 µs of
// CPU per side beyond the TCP connect (goal 300), the initiator's wait
// 422–471 µs, the connect 62–107 µs; BenchmarkIdleSessionMemory 8.0 KiB
// per session end (7.5 KiB beyond TCP). The swarm-level figures are in the
// README (Benchmarks, Sessions).
package secure

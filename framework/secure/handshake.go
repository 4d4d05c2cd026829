package secure

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"
)

// prologue is mixed into the Noise handshake hash by both sides: a peer
// speaking another handshake format (or a relay pretending so) fails at
// the first authenticated message.
const prologue = "dwebswarm/1 session handshake"

// Capability labels (see doc.go).
const (
	capLabelInitiator = "dwebswarm/1 cap initiator"
	capLabelResponder = "dwebswarm/1 cap responder"
)

// supportedVersions are the session protocol versions this package speaks,
// ascending.
var supportedVersions = []byte{1}

// Topic kinds in msg1 and msg2.
const (
	kindNoTopic = 0
	kindTopic   = 1
)

// msg3 status codes.
const (
	statusOK      = 0
	statusRefused = 1
	statusTopic   = 2
)

// reject reasons (the responder's cleartext answer instead of msg2).
const (
	rejectVersion = 1
	rejectTopic   = 2
)

const maxVersions = 16

// hello is msg1's cleartext payload.
type hello struct {
	versions []byte
	kind     byte
	cap      [32]byte
}

func (h *hello) marshal() []byte {
	b := append([]byte{byte(len(h.versions))}, h.versions...)
	b = append(b, h.kind)
	if h.kind == kindTopic {
		b = append(b, h.cap[:]...)
	}
	return b
}

// parseHello decodes msg1's payload; bytes after the known fields are
// ignored (they are covered by the handshake hash).
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) < 1 || b[0] == 0 || int(b[0]) > maxVersions || len(b) < 1+int(b[0])+1 {
		return h, fmt.Errorf("%w: malformed msg1 payload", ErrHandshake)
	}
	n := int(b[0])
	h.versions = append([]byte(nil), b[1:1+n]...)
	b = b[1+n:]
	h.kind = b[0]
	switch h.kind {
	case kindNoTopic:
	case kindTopic:
		if len(b) < 1+32 {
			return h, fmt.Errorf("%w: msg1 capability truncated", ErrHandshake)
		}
		copy(h.cap[:], b[1:33])
	default:
		return h, fmt.Errorf("%w: msg1 topic kind %d", ErrHandshake, h.kind)
	}
	return h, nil
}

// reply is msg2's encrypted payload.
type reply struct {
	version byte
	kind    byte
	proof   [32]byte
	flags   byte // optional trailing byte: replyRelayed
}

// replyRelayed: the responder was reached through a relay.
const replyRelayed = 1

func (r *reply) marshal() []byte {
	b := []byte{r.version, r.kind}
	if r.kind == kindTopic {
		b = append(b, r.proof[:]...)
	}
	if r.flags != 0 { // absent when zero: the bytes of older versions
		b = append(b, r.flags)
	}
	return b
}

func parseReply(b []byte) (reply, error) {
	var r reply
	if len(b) < 2 {
		return r, fmt.Errorf("%w: malformed msg2 payload", ErrHandshake)
	}
	r.version, r.kind = b[0], b[1]
	rest := b[2:]
	switch r.kind {
	case kindNoTopic:
	case kindTopic:
		if len(b) < 2+32 {
			return r, fmt.Errorf("%w: msg2 proof truncated", ErrHandshake)
		}
		copy(r.proof[:], b[2:34])
		rest = b[34:]
	default:
		return r, fmt.Errorf("%w: msg2 topic kind %d", ErrHandshake, r.kind)
	}
	if len(rest) > 0 {
		r.flags = rest[0]
	}
	return r, nil
}

func parseFinish(b []byte) (byte, error) {
	if len(b) < 1 || b[0] > statusTopic {
		return 0, fmt.Errorf("%w: malformed msg3 payload", ErrHandshake)
	}
	return b[0], nil
}

// parseReject decodes a reject body (after the zero length): reason, then
// the responder's versions.
func parseReject(b []byte) (reason byte, versions []byte, err error) {
	if len(b) < 2 || int(b[1]) > maxVersions || len(b) < 2+int(b[1]) {
		return 0, nil, fmt.Errorf("%w: malformed reject", ErrHandshake)
	}
	return b[0], b[2 : 2+int(b[1])], nil
}

func capInitiator(topic [32]byte, ephemeral []byte) [32]byte {
	m := hmac.New(sha256.New, topic[:])
	m.Write([]byte(capLabelInitiator))
	m.Write(ephemeral)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

func capResponder(topic [32]byte, h1 []byte) [32]byte {
	m := hmac.New(sha256.New, topic[:])
	m.Write([]byte(capLabelResponder))
	m.Write(h1)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// highestCommon is the highest version in both ascending-or-not lists, 0 if none.
func highestCommon(ours, theirs []byte) byte {
	var best byte
	for _, a := range ours {
		if a != 0 && a > best && bytes.IndexByte(theirs, a) >= 0 {
			best = a
		}
	}
	return best
}

func writeMsg(c net.Conn, msg []byte) error {
	b := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(b, uint16(len(msg)))
	copy(b[2:], msg)
	_, err := c.Write(b)
	return err
}

// readMsg reads one length-prefixed handshake message; a zero length is a
// reject, returned as (nil, body).
func readMsg(c net.Conn) (msg, rejectBody []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		var rh [2]byte
		if _, err := io.ReadFull(c, rh[:]); err != nil {
			return nil, nil, err
		}
		body := make([]byte, 2+int(rh[1]))
		copy(body, rh[:])
		if _, err := io.ReadFull(c, body[2:]); err != nil {
			return nil, nil, err
		}
		return nil, body, nil
	}
	msg = make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		return nil, nil, err
	}
	return msg, nil, nil
}

func writeReject(c net.Conn, reason byte, versions []byte) {
	b := append([]byte{0, 0, reason, byte(len(versions))}, versions...)
	c.Write(b) //nolint:errcheck // best effort: the handshake fails anyway
}

func rejectErr(body []byte) error {
	reason, versions, err := parseReject(body)
	if err != nil {
		return err
	}
	switch reason {
	case rejectVersion:
		return fmt.Errorf("%w: the responder speaks versions %v", ErrVersion, versions)
	case rejectTopic:
		return fmt.Errorf("%w: the responder accepts no such topic", ErrTopic)
	}
	return fmt.Errorf("%w: rejected (reason %d)", ErrHandshake, reason)
}

// watchCtx makes ctx bound I/O on c: its deadline becomes c's, and its
// cancellation expires c's deadline. stop undoes both and reports
// ctx's error if it fired.
func watchCtx(ctx context.Context, c net.Conn) (stop func() error) {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	after := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		if !after() && ctx.Err() != nil {
			return ctx.Err()
		}
		c.SetDeadline(time.Time{})
		return nil
	}
}

func ioErr(ctx context.Context, step string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %s: %w", ErrHandshake, step, cerr)
	}
	return fmt.Errorf("%w: %s: %w", ErrHandshake, step, err)
}

func newHandshake(cfg *Config, initiator bool, random io.Reader, dh *dh25519) (*noise.HandshakeState, error) {
	if err := rememberStatic(cfg.KeyPair); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   newSuite(dh),
		Random:        random,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      []byte(prologue),
		StaticKeypair: noise.DHKey{Private: cfg.KeyPair.Private[:], Public: cfg.KeyPair.Public[:]},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return hs, nil
}

// Client runs the initiator side of the handshake on c (the dialler).
// ctx bounds the handshake. It returns once msg3 is sent, one round trip
// after the connect, and the session may send at once; the responder's
// Accept runs on msg3, so a refusal by it arrives after Client returned:
// the session then ends with an error wrapping [ErrRefused] (Read
// returns it, OnClose gets it, Done closes), and what was written is
// discarded by the responder. A responder that rejects the version or
// the topic at msg1, or fails to prove the topic in msg2, makes Client
// itself fail. On error c is closed.
func Client(ctx context.Context, c net.Conn, cfg Config) (*Conn, error) {
	cfg.fill()
	stop := watchCtx(ctx, c)
	s, err := clientHandshake(ctx, c, &cfg)
	if cerr := stop(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", ErrHandshake, cerr)
	}
	if err != nil {
		c.Close()
		cfg.Logger.Debug("secure: client handshake failed", "remote", c.RemoteAddr(), "err", err)
		return nil, err
	}
	s.start()
	return s, nil
}

func clientHandshake(ctx context.Context, c net.Conn, cfg *Config) (*Conn, error) {
	dh := new(dh25519)
	eph, err := dh.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	// flynn/noise draws the ephemeral key from Random: hand it the one we
	// made, so that the capability can bind its public half.
	hs, err := newHandshake(cfg, true, bytes.NewReader(eph.Private), dh)
	if err != nil {
		return nil, err
	}
	h := hello{versions: cfg.versions}
	if cfg.Topic != ([32]byte{}) {
		h.kind = kindTopic
		h.cap = capInitiator(cfg.Topic, eph.Public)
	}
	msg1, _, _, err := hs.WriteMessage(nil, h.marshal())
	if err != nil {
		return nil, fmt.Errorf("%w: msg1: %w", ErrHandshake, err)
	}
	if !bytes.Equal(msg1[:32], eph.Public) {
		return nil, fmt.Errorf("%w: ephemeral key mismatch", ErrHandshake)
	}
	h1 := append([]byte(nil), hs.ChannelBinding()...)
	if err := writeMsg(c, msg1); err != nil {
		return nil, ioErr(ctx, "write msg1", err)
	}
	msg2, rej, err := readMsg(c)
	if err != nil {
		return nil, ioErr(ctx, "read msg2", err)
	}
	if rej != nil {
		return nil, rejectErr(rej)
	}
	p2, _, _, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, fmt.Errorf("%w: msg2: %w", ErrHandshake, err)
	}
	r, err := parseReply(p2)
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(cfg.versions, r.version) < 0 || r.version == 0 {
		return nil, fmt.Errorf("%w: the responder chose version %d", ErrVersion, r.version)
	}
	var remote PublicKey
	copy(remote[:], hs.PeerStatic())
	status, fail := byte(statusOK), error(nil)
	switch {
	case h.kind == kindTopic && (r.kind != kindTopic || !hmac.Equal(r.proof[:], capResponderSlice(cfg.Topic, h1))):
		status, fail = statusTopic, fmt.Errorf("%w: the responder %s did not prove the topic", ErrTopic, remote.Short())
	case h.kind == kindNoTopic && r.kind != kindNoTopic:
		status, fail = statusTopic, fmt.Errorf("%w: the responder claims a topic we did not name", ErrTopic)
	case cfg.Accept != nil:
		if aerr := cfg.Accept(remote, cfg.Topic); aerr != nil {
			status, fail = statusRefused, fmt.Errorf("%w: %s: %w", ErrRefused, remote.Short(), aerr)
		}
	}
	msg3, cs1, cs2, err := hs.WriteMessage(nil, []byte{status})
	if err != nil {
		return nil, fmt.Errorf("%w: msg3: %w", ErrHandshake, err)
	}
	if err := writeMsg(c, msg3); err != nil && fail == nil {
		return nil, ioErr(ctx, "write msg3", err)
	}
	if fail != nil {
		return nil, fail
	}
	// The session starts now, one round trip after the TCP connect: the
	// responder runs its Accept on msg3 and, if it refuses, answers with a
	// close frame (refused) that ends this session with ErrRefused.
	s := newConn(c, cfg, true, remote, cfg.Topic, cs1, cs2)
	s.relayed = r.flags&replyRelayed != 0
	s.awaitConfirmation()
	return s, nil
}

func capResponderSlice(topic [32]byte, h1 []byte) []byte {
	p := capResponder(topic, h1)
	return p[:]
}

// Server runs the responder side of the handshake on c. ctx bounds the
// handshake. On error c is closed.
func Server(ctx context.Context, c net.Conn, cfg Config) (*Conn, error) {
	cfg.fill()
	stop := watchCtx(ctx, c)
	s, err := serverHandshake(ctx, c, &cfg)
	if cerr := stop(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", ErrHandshake, cerr)
	}
	if err != nil {
		c.Close()
		cfg.Logger.Debug("secure: server handshake failed", "remote", c.RemoteAddr(), "err", err)
		return nil, err
	}
	s.start()
	return s, nil
}

func serverHandshake(ctx context.Context, c net.Conn, cfg *Config) (*Conn, error) {
	msg1, rej, err := readMsg(c)
	if err != nil {
		return nil, ioErr(ctx, "read msg1", err)
	}
	if rej != nil || len(msg1) < 32 {
		return nil, fmt.Errorf("%w: msg1 too short", ErrHandshake)
	}
	h, err := parseHello(msg1[32:])
	if err != nil {
		return nil, err
	}
	version := highestCommon(cfg.versions, h.versions)
	if version == 0 {
		writeReject(c, rejectVersion, cfg.versions)
		return nil, fmt.Errorf("%w: the initiator speaks versions %v, we %v", ErrVersion, h.versions, cfg.versions)
	}
	var topic [32]byte
	switch h.kind {
	case kindTopic:
		found := false
		if cfg.Topics != nil {
			for _, t := range cfg.Topics() {
				want := capInitiator(t, msg1[:32])
				if hmac.Equal(want[:], h.cap[:]) {
					topic, found = t, true
					break
				}
			}
		}
		if !found {
			writeReject(c, rejectTopic, cfg.versions)
			return nil, fmt.Errorf("%w: the initiator proved no topic we accept", ErrTopic)
		}
	case kindNoTopic:
		if !cfg.AllowNoTopic {
			writeReject(c, rejectTopic, cfg.versions)
			return nil, fmt.Errorf("%w: the initiator named no topic", ErrTopic)
		}
	}
	hs, err := newHandshake(cfg, false, rand.Reader, new(dh25519))
	if err != nil {
		return nil, err
	}
	if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
		return nil, fmt.Errorf("%w: msg1: %w", ErrHandshake, err)
	}
	h1 := append([]byte(nil), hs.ChannelBinding()...)
	r := reply{version: version, kind: h.kind}
	if cfg.Relayed {
		r.flags |= replyRelayed
	}
	if h.kind == kindTopic {
		r.proof = capResponder(topic, h1)
	}
	msg2, _, _, err := hs.WriteMessage(nil, r.marshal())
	if err != nil {
		return nil, fmt.Errorf("%w: msg2: %w", ErrHandshake, err)
	}
	if err := writeMsg(c, msg2); err != nil {
		return nil, ioErr(ctx, "write msg2", err)
	}
	msg3, rej, err := readMsg(c)
	if err != nil {
		return nil, ioErr(ctx, "read msg3", err)
	}
	if rej != nil {
		return nil, fmt.Errorf("%w: reject in place of msg3", ErrHandshake)
	}
	p3, cs1, cs2, err := hs.ReadMessage(nil, msg3)
	if err != nil {
		return nil, fmt.Errorf("%w: msg3: %w", ErrHandshake, err)
	}
	status, err := parseFinish(p3)
	if err != nil {
		return nil, err
	}
	var remote PublicKey
	copy(remote[:], hs.PeerStatic())
	switch status {
	case statusRefused:
		return nil, fmt.Errorf("%w: by the initiator %s", ErrRefused, remote.Short())
	case statusTopic:
		return nil, fmt.Errorf("%w: the initiator %s did not accept our topic proof", ErrTopic, remote.Short())
	}
	s := newConn(c, cfg, false, remote, topic, cs2, cs1)
	s.relayed = cfg.Relayed
	if cfg.Accept != nil {
		if aerr := cfg.Accept(remote, topic); aerr != nil {
			if s.writeControl(frameClose, closeRefused) == nil {
				lingerRefused(ctx, c)
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrRefused, remote.Short(), aerr)
		}
	}
	// the confirmation: our first frame tells the initiator that Accept
	// agreed (see doc.go, Confirmed)
	if err := s.writeControl(frameKeepAlive); err != nil {
		return nil, ioErr(ctx, "write the confirmation", err)
	}
	s.confirmed = closedChan
	return s, nil
}

// refuseLinger bounds how long a refusing responder reads after its close
// frame.
const refuseLinger = 2 * time.Second

// lingerRefused runs after the close frame (refused): it ends our write
// direction and discards what the initiator sent after msg3 (data it may
// send at once, which never reaches our application) until the initiator,
// having read the close frame, closes — at most refuseLinger (or until
// ctx's deadline). Closing with that data unread would
// make the kernel reset the connection, and a reset can overtake the
// close frame or fail the initiator's writes first, so the initiator
// would see ErrClosedByPeer instead of ErrRefused.
func lingerRefused(ctx context.Context, c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() //nolint:errcheck // best effort
	}
	dl := time.Now().Add(refuseLinger)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.SetReadDeadline(dl)
	io.Copy(io.Discard, c) //nolint:errcheck // ends at EOF or the deadline
}

package secure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/flynn/noise"
)

// lowOrderPoints are X25519 public keys of small order: any scalar times
// one of them is the identity, so the DH output is all zeros and a peer
// that sends one knows the "shared" secret without any private key.
var lowOrderPoints = map[string]string{
	"zero":   "0000000000000000000000000000000000000000000000000000000000000000",
	"one":    "0100000000000000000000000000000000000000000000000000000000000000",
	"order8": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
}

// lyingDH is an attacker's X25519: for its fake private key every DH is
// all zeros (what a low-order public key gives the other side), and, when
// ephemeral is set, its ephemeral key is the low-order point.
type lyingDH struct {
	dh25519
	fakePriv, point []byte
	ephemeral       bool
}

func (d *lyingDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	if d.ephemeral {
		return noise.DHKey{Private: d.fakePriv, Public: d.point}, nil
	}
	return d.dh25519.GenerateKeypair(rng)
}

func (d *lyingDH) DH(priv, pub []byte) ([]byte, error) {
	if bytes.Equal(priv, d.fakePriv) {
		return make([]byte, 32), nil
	}
	return d.dh25519.DH(priv, pub)
}

// lowOrderInitiator runs an XX initiator whose static (or ephemeral) key
// is point, as far as the responder lets it.
func lowOrderInitiator(c net.Conn, point []byte, ephemeral bool) {
	defer c.Close()
	d := &lyingDH{fakePriv: bytes.Repeat([]byte{7}, 32), point: point, ephemeral: ephemeral}
	static := noise.DHKey{Private: d.fakePriv, Public: point}
	if ephemeral {
		k, _ := GenerateKeyPair()
		static = noise.DHKey{Private: k.Private[:], Public: k.Public[:]}
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noise.NewCipherSuite(d, noise.CipherAESGCM, noise.HashSHA256), Random: rand.Reader,
		Pattern: noise.HandshakeXX, Initiator: true, Prologue: []byte(prologue), StaticKeypair: static,
	})
	if err != nil {
		return
	}
	h := hello{versions: []byte{1}, kind: kindNoTopic}
	msg1, _, _, err := hs.WriteMessage(nil, h.marshal())
	if err != nil || writeMsg(c, msg1) != nil {
		return
	}
	msg2, _, err := readMsg(c)
	if err != nil || msg2 == nil {
		return
	}
	if _, _, _, err := hs.ReadMessage(nil, msg2); err != nil {
		return
	}
	msg3, _, _, err := hs.WriteMessage(nil, []byte{statusOK})
	if err != nil {
		return
	}
	writeMsg(c, msg3)      //nolint:errcheck // the responder decides
	io.Copy(io.Discard, c) //nolint:errcheck // until the responder closes
}

// A peer whose static or ephemeral key is a low-order point (the zero key
// among them) would make a DH whose result it knows without a private
// key: the responder refuses it (X25519 rejects an all-zero result), and
// its Accept never sees such a key.
func TestLowOrderKeysAreRefused(t *testing.T) {
	for name, h := range lowOrderPoints {
		point, _ := hex.DecodeString(h)
		for _, ephemeral := range []bool{false, true} {
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			cn, sn := tcpPair(t)
			go lowOrderInitiator(cn, point, ephemeral)
			var accepted atomic.Bool
			s, err := Server(ctx, sn, Config{KeyPair: mustKey(t), AllowNoTopic: true,
				Accept: func(PublicKey, [32]byte) error { accepted.Store(true); return nil }})
			cancel()
			if err == nil {
				s.Close()
				t.Fatalf("%s (ephemeral %v): the responder accepted a low-order key", name, ephemeral)
			}
			if !errors.Is(err, ErrHandshake) || accepted.Load() {
				t.Fatalf("%s (ephemeral %v): %v, Accept ran %v; want ErrHandshake before Accept", name, ephemeral, err, accepted.Load())
			}
		}
	}
}

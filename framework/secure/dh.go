package secure

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/flynn/noise"
)

// dh25519 is X25519 for flynn/noise through crypto/ecdh, exactly
// noise.DH25519 on the wire, but keeping the parsed private keys of one
// handshake (and the static key across handshakes): noise.DH25519 goes
// through x/crypto's curve25519.X25519, which re-derives the public key
// on every DH and so costs two scalar multiplications instead of one
// (BenchmarkHandshake: the difference is about half the handshake's CPU).
// One value serves one handshake; it is not safe for concurrent use.
type dh25519 struct {
	keys []*ecdh.PrivateKey
}

// staticKeys caches the last static private keys parsed (a process has
// one or a few identities).
var (
	staticKeys [4]atomic.Pointer[ecdh.PrivateKey]
	staticNext atomic.Uint32
)

func cachedStatic(priv []byte) *ecdh.PrivateKey {
	for i := range staticKeys {
		if k := staticKeys[i].Load(); k != nil && bytes.Equal(k.Bytes(), priv) {
			return k
		}
	}
	return nil
}

func (d *dh25519) private(priv []byte) (*ecdh.PrivateKey, error) {
	for _, k := range d.keys {
		if bytes.Equal(k.Bytes(), priv) {
			return k, nil
		}
	}
	if k := cachedStatic(priv); k != nil {
		return k, nil
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	d.keys = append(d.keys, k)
	return k, nil
}

// GenerateKeypair reads a private key from rng, as noise.DH25519 does.
func (d *dh25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return noise.DHKey{}, err
	}
	k, err := d.private(b[:])
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// DH is X25519(priv, pub); an all-zero result (a low-order point) is an error.
func (d *dh25519) DH(priv, pub []byte) ([]byte, error) {
	k, err := d.private(priv)
	if err != nil {
		return nil, err
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	out, err := k.ECDH(p)
	if err != nil {
		return nil, fmt.Errorf("x25519: %w", err)
	}
	return out, nil
}

func (d *dh25519) DHLen() int     { return 32 }
func (d *dh25519) DHName() string { return "25519" }

// rememberStatic checks kp and caches its parsed private key for later
// handshakes.
func rememberStatic(kp KeyPair) error {
	if kp.Public.IsZero() {
		return fmt.Errorf("%w: no key pair", ErrBadKey)
	}
	if k := cachedStatic(kp.Private[:]); k != nil {
		if !bytes.Equal(k.PublicKey().Bytes(), kp.Public[:]) {
			return fmt.Errorf("%w: the public key does not match the private key", ErrBadKey)
		}
		return nil
	}
	k, err := ecdh.X25519().NewPrivateKey(kp.Private[:])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if !bytes.Equal(k.PublicKey().Bytes(), kp.Public[:]) {
		return fmt.Errorf("%w: the public key does not match the private key", ErrBadKey)
	}
	staticKeys[staticNext.Add(1)%uint32(len(staticKeys))].Store(k)
	return nil
}

// newSuite is the cipher suite of one handshake (doc.go: the choice).
func newSuite(d *dh25519) noise.CipherSuite {
	return noise.NewCipherSuite(d, noise.CipherAESGCM, noise.HashSHA256)
}

package secure

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/flynn/noise"
)

// dh25519 is X25519 for flynn/noise, exactly noise.DH25519 on the wire,
// on raw keys (x25519.go): a fresh key pair costs a fixed-base
// multiplication and a DH one variable-base multiplication, where
// noise.DH25519 (x/crypto's curve25519.X25519, through crypto/ecdh)
// re-derives the private key's public half on every DH, two variable-base
// multiplications each (BenchmarkHandshakeSuite).
type dh25519 struct{}

// GenerateKeypair reads a private key from rng, as noise.DH25519 does.
func (d *dh25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return noise.DHKey{}, err
	}
	pub, err := x25519Base(b[:])
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: b[:], Public: pub}, nil
}

// DH is X25519(priv, pub); an all-zero result (a low-order point) is an error.
func (d *dh25519) DH(priv, pub []byte) ([]byte, error) {
	return x25519(priv, pub)
}

func (d *dh25519) DHLen() int     { return 32 }
func (d *dh25519) DHName() string { return "25519" }

// checkedKeys remembers key pairs already checked (a process has one or
// a few identities), so that each handshake need not derive the public key
// again.
var (
	checkedKeys [4]atomic.Pointer[KeyPair]
	checkedNext atomic.Uint32
)

// rememberStatic checks that kp's public key is its private key's.
func rememberStatic(kp KeyPair) error {
	if kp.Public.IsZero() {
		return fmt.Errorf("%w: no key pair", ErrBadKey)
	}
	for i := range checkedKeys {
		if k := checkedKeys[i].Load(); k != nil && *k == kp {
			return nil
		}
	}
	pub, err := x25519Base(kp.Private[:])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if !bytes.Equal(pub, kp.Public[:]) {
		return fmt.Errorf("%w: the public key does not match the private key", ErrBadKey)
	}
	checkedKeys[checkedNext.Add(1)%uint32(len(checkedKeys))].Store(&kp)
	return nil
}

// newSuite is the cipher suite of one handshake (doc.go: the choice).
func newSuite(d *dh25519) noise.CipherSuite {
	return noise.NewCipherSuite(d, noise.CipherAESGCM, noise.HashSHA256)
}

package secure

import (
	"errors"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// X25519 (RFC 7748) on raw 32-byte keys, for the handshake: crypto/ecdh
// cannot make a private key without deriving its public key by a
// variable-base scalar multiplication, and has no fixed-base one. Here a
// fresh key's public half is a fixed-base multiplication on edwards25519
// (precomputed tables, about half the cost: BenchmarkX25519), and DH is
// one Montgomery-ladder multiplication.

var errLowOrder = errors.New("x25519: low-order point")

// x25519Base returns the public key of the private key priv.
func x25519Base(priv []byte) ([]byte, error) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(priv)
	if err != nil {
		return nil, err
	}
	// [s]B on edwards25519 maps to [s]9 on Curve25519 (the base points
	// correspond, and clamping multiplies by the cofactor, which B's
	// prime order absorbs).
	return new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery(), nil
}

// x25519 returns X25519(scalar, point); an all-zero result (point of low
// order) is errLowOrder.
func x25519(scalar, point []byte) ([]byte, error) {
	if len(scalar) != 32 || len(point) != 32 {
		return nil, errors.New("x25519: keys are 32 bytes")
	}
	var out [32]byte
	x25519ScalarMult(&out, scalar, point)
	var zero byte
	for _, b := range out {
		zero |= b
	}
	if zero == 0 {
		return nil, errLowOrder
	}
	return out[:], nil
}

// x25519ScalarMult is the RFC 7748 Montgomery ladder, as in Go's
// crypto/ecdh (x25519.go; Copyright 2022 The Go Authors, BSD-style
// license), on filippo.io/edwards25519's field elements.
func x25519ScalarMult(dst *[32]byte, scalar, point []byte) {
	var e [32]byte

	copy(e[:], scalar)
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	x1.SetBytes(point) // ignores the top bit, as RFC 7748 requires
	x2.One()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := e[pos/8] >> uint(pos&7)
		b &= 1
		swap ^= int(b)
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = int(b)

		tmp0.Subtract(&x3, &z3)
		tmp1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&tmp0, &x2)
		z2.Multiply(&z2, &tmp1)
		tmp0.Square(&tmp1)
		tmp1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&tmp1, &tmp0)
		tmp1.Subtract(&tmp1, &tmp0)
		z2.Square(&z2)

		z3.Mult32(&tmp1, 121666)
		x3.Square(&x3)
		tmp0.Add(&tmp0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&tmp1, &tmp0)
	}

	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(dst[:], x2.Bytes())
}

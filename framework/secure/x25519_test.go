package secure

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// x25519Base and x25519 agree with crypto/ecdh on random keys.
func TestX25519MatchesCryptoECDH(t *testing.T) {
	for range 200 {
		a, b := make([]byte, 32), make([]byte, 32)
		rand.Read(a)
		rand.Read(b)
		ka, err := ecdh.X25519().NewPrivateKey(a)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := ecdh.X25519().NewPrivateKey(b)
		pa, err := x25519Base(a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pa, ka.PublicKey().Bytes()) {
			t.Fatalf("public key of %x: %x, crypto/ecdh %x", a, pa, ka.PublicKey().Bytes())
		}
		want, _ := kb.ECDH(ka.PublicKey())
		got, err := x25519(b, pa)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("DH: %x, %v; crypto/ecdh %x", got, err, want)
		}
	}
}

// RFC 7748 section 5.2's first test vector, and a low-order point.
func TestX25519Vectors(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got, err := x25519(h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"), h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
	if err != nil || !bytes.Equal(got, h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")) {
		t.Fatalf("RFC 7748 vector: %x, %v", got, err)
	}
	if _, err := x25519(h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"), make([]byte, 32)); !errors.Is(err, errLowOrder) {
		t.Fatalf("the zero point: %v, want errLowOrder", err)
	}
}

// BenchmarkX25519 compares a fresh key's public half here (fixed base)
// with crypto/ecdh's NewPrivateKey, and a DH.
func BenchmarkX25519(b *testing.B) {
	k := make([]byte, 32)
	rand.Read(k)
	p, _ := x25519Base(k)
	b.Run("base", func(b *testing.B) {
		for b.Loop() {
			x25519Base(k)
		}
	})
	b.Run("ecdh-NewPrivateKey", func(b *testing.B) {
		for b.Loop() {
			ecdh.X25519().NewPrivateKey(k)
		}
	})
	b.Run("dh", func(b *testing.B) {
		for b.Loop() {
			x25519(k, p)
		}
	})
}

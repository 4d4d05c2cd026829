package secure

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size of a public or private key: X25519, 32 bytes.
const KeySize = 32

// PublicKey is a swarm's static public key: an X25519 point, the identity
// a Noise XX handshake proves.
type PublicKey [KeySize]byte

// KeyPair is a swarm's static key pair.
type KeyPair struct {
	Public  PublicKey
	Private [KeySize]byte
}

// ErrBadKey is wrapped by every error about a malformed key or key file.
var ErrBadKey = errors.New("secure: bad key")

// zbase32 is z-base-32 (the alphabet pkarr and hyperdht use for keys):
// lowercase, no padding, no look-alike pairs such as 0/o or 1/l, so a key
// survives being read aloud, typed or double-click-selected (52 letters
// and digits for 32 bytes).
var zbase32 = base32.NewEncoding("ybndrfg8ejkmcpqxot1uwisza345h769").WithPadding(base32.NoPadding)

// String is the key in z-base-32: 52 characters.
func (k PublicKey) String() string { return zbase32.EncodeToString(k[:]) }

// Short is the key's first 8 characters, for logs (not an identifier: use
// String to compare or store keys).
func (k PublicKey) Short() string { return k.String()[:8] }

// IsZero reports whether k is the zero key (no key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// MarshalText implements encoding.TextMarshaler (z-base-32).
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; see [ParsePublicKey].
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ParsePublicKey parses a public key in z-base-32 (52 characters, what
// String prints) or hex (64 characters, as hyperswarm prints keys).
// Surrounding spaces are ignored; case is not significant.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	s = strings.ToLower(strings.TrimSpace(s))
	var b []byte
	var err error
	switch len(s) {
	case 52:
		b, err = zbase32.DecodeString(s)
	case 64:
		b, err = hex.DecodeString(s)
	default:
		return k, fmt.Errorf("%w: %d characters, want 52 (z-base-32) or 64 (hex)", ErrBadKey, len(s))
	}
	if err != nil || len(b) != KeySize {
		return k, fmt.Errorf("%w: %q is not z-base-32 or hex", ErrBadKey, s)
	}
	copy(k[:], b)
	if k.IsZero() {
		return k, fmt.Errorf("%w: the zero key", ErrBadKey)
	}
	return k, nil
}

// GenerateKeyPair returns a new X25519 key pair from crypto/rand.
func GenerateKeyPair() (KeyPair, error) { return generate(rand.Reader) }

func generate(r io.Reader) (KeyPair, error) {
	priv, err := ecdh.X25519().GenerateKey(r)
	if err != nil {
		return KeyPair{}, fmt.Errorf("secure: generate key: %w", err)
	}
	return keyPairFrom(priv), nil
}

func keyPairFrom(priv *ecdh.PrivateKey) KeyPair {
	var kp KeyPair
	copy(kp.Private[:], priv.Bytes())
	copy(kp.Public[:], priv.PublicKey().Bytes())
	return kp
}

// KeyPairFromPrivate derives the key pair of an X25519 private key.
func KeyPairFromPrivate(private [KeySize]byte) (KeyPair, error) {
	priv, err := ecdh.X25519().NewPrivateKey(private[:])
	if err != nil {
		return KeyPair{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return keyPairFrom(priv), nil
}

// keyFileHeader starts every key file; the private key follows in hex.
const keyFileHeader = "dwebswarm-private-key-v1 "

// WriteKeyFile writes kp's private key to path, creating it with mode 0600
// (it fails if the file exists: rotate by writing a new file).
func WriteKeyFile(path string, kp KeyPair) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("secure: key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("secure: key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s%s\n# public key %s\n", keyFileHeader, hex.EncodeToString(kp.Private[:]), kp.Public)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("secure: key file: %w", err)
	}
	return nil
}

// ReadKeyFile reads a key file written by [WriteKeyFile]. On Unix it
// refuses a file that group or others may read or write (mode & 0o077),
// as ssh does: chmod 600 it.
func ReadKeyFile(path string) (KeyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return KeyPair{}, fmt.Errorf("secure: key file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return KeyPair{}, fmt.Errorf("%w: %s has mode %04o: %s may access it; chmod 600 %s", ErrBadKey, path, st.Mode().Perm(), whoMayAccess(st.Mode().Perm()), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return KeyPair{}, fmt.Errorf("secure: key file: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte(keyFileHeader))
	var priv [KeySize]byte
	if n, err := hex.Decode(priv[:], bytes.TrimSpace(rest)); !ok || err != nil || n != KeySize || len(bytes.TrimSpace(rest)) != 2*KeySize {
		return KeyPair{}, fmt.Errorf("%w: %s: not a dwebswarm key file (want a first line %q and 64 hex digits)", ErrBadKey, path, strings.TrimSpace(keyFileHeader))
	}
	return KeyPairFromPrivate(priv)
}

// LoadOrCreateKeyFile reads the key file at path, or, when there is none,
// generates a key pair and writes it there (mode 0600). created says which.
func LoadOrCreateKeyFile(path string) (kp KeyPair, created bool, err error) {
	kp, err = ReadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return kp, false, err
	}
	if kp, err = GenerateKeyPair(); err != nil {
		return kp, false, err
	}
	if err := WriteKeyFile(path, kp); err != nil {
		if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
			kp, err = ReadKeyFile(path)
			return kp, false, err
		}
		return kp, false, err
	}
	return kp, true, nil
}

// whoMayAccess names the classes a key file's mode lets in besides its
// owner: "group", "others" or "group and others".
func whoMayAccess(perm fs.FileMode) string {
	switch g, o := perm&0o070 != 0, perm&0o007 != 0; {
	case g && o:
		return "group and others"
	case g:
		return "group"
	default:
		return "others"
	}
}

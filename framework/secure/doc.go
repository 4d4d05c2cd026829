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
package secure

package hostconfig

import (
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// peerKey on a connect service: decoded in z-base-32 or hex, the service
// then joins the peer instead of its topic; connect services reaching
// different keys may share a topic.
func TestServicePeerKey(t *testing.T) {
	k1, _ := secure.GenerateKeyPair()
	k2, _ := secure.GenerateKeyPair()
	src := "services:\n" +
		"  - {name: a, topic: ssh, connect: 127.0.0.1:2201, peerKey: " + k1.Public.String() + "}\n" +
		"  - {name: b, topic: ssh, connect: 127.0.0.1:2202, peerKey: " + strings.ToUpper(hexOf(k2.Public)) + "}\n" +
		"  - {name: c, topic: web, connect: 127.0.0.1:2203}\n"
	c, err := Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sv := c.Services()
	if sv[0].PeerKey != k1.Public || sv[1].PeerKey != k2.Public || !sv[2].PeerKey.IsZero() {
		t.Fatalf("keys %s %s %s", sv[0].PeerKey.Short(), sv[1].PeerKey.Short(), sv[2].PeerKey.Short())
	}
	if sv[0].JoinsTopic() || !sv[2].JoinsTopic() {
		t.Fatal("a peer-key service joins its topic, or a plain one does not")
	}
	// a changed key restarts the service on reload
	src2 := strings.Replace(src, k1.Public.String(), k2.Public.String(), 1)
	src2 = strings.Replace(src2, strings.ToUpper(hexOf(k2.Public)), k1.Public.String(), 1)
	c2, err := Parse("c.yaml", []byte(src2))
	if err != nil {
		t.Fatal(err)
	}
	if ch := Diff(c, c2); len(ch.ServicesAdded) != 2 || len(ch.ServicesRemoved) != 2 {
		t.Fatalf("diff %+v", ch)
	}
}

func hexOf(k secure.PublicKey) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, x := range k {
		b.WriteByte(digits[x>>4])
		b.WriteByte(digits[x&15])
	}
	return b.String()
}

func TestServicePeerKeyErrors(t *testing.T) {
	k, _ := secure.GenerateKeyPair()
	key := k.Public.String()
	cases := []struct {
		name, yaml string
		line, col  int
		msg, hint  string
		sentinel   error
	}{
		{"short key", "services:\n  - name: a\n    topic: t\n    connect: 127.0.0.1:1\n    peerKey: abc\n", 5, 14, "services[0].peerKey: bad key: 3 characters", "z-base-32", secure.ErrBadKey},
		{"bad letters", "services:\n  - name: a\n    topic: t\n    connect: 127.0.0.1:1\n    peerKey: " + strings.Repeat("0", 52) + "\n", 5, 14, "is not z-base-32 or hex", "swarmhost key", secure.ErrBadKey},
		{"zero key", "services:\n  - name: a\n    topic: t\n    connect: 127.0.0.1:1\n    peerKey: " + strings.Repeat("0", 64) + "\n", 5, 14, "the zero key", "", secure.ErrBadKey},
		{"not a string", "services:\n  - name: a\n    topic: t\n    connect: 127.0.0.1:1\n    peerKey: [a]\n", 5, 14, "want a string", "", nil},
		{"on a serve service", "services:\n  - name: a\n    topic: t\n    serve: 127.0.0.1:1\n    peerKey: " + key + "\n", 5, 14, "peerKey on a serve service", "connect service", nil},
		{"with plaintext", "node: {plaintext: true}\nservices:\n  - name: a\n    topic: t\n    connect: 127.0.0.1:1\n    peerKey: " + key + "\n", 3, 5, "peerKey with node.plaintext", "sessions", secure.ErrBadKey},
		{"same topic same key", "services:\n  - {name: a, topic: t, connect: 127.0.0.1:1, peerKey: " + key + "}\n  - {name: b, topic: t, connect: 127.0.0.1:2, peerKey: " + key + "}\n", 3, 5, "duplicate topic", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrorAt(t, tc.yaml, tc.line, tc.col, tc.msg, tc.hint, tc.sentinel)
		})
	}
}

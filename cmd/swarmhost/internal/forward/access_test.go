package forward

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

func genKey(t testing.TB) secure.KeyPair {
	t.Helper()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// countingServer is an echo server that counts the connections it
// accepted.
func countingServer(t testing.TB) (string, *atomic.Int64) {
	var n atomic.Int64
	addr := tcpServer(t, func(c net.Conn) {
		n.Add(1)
		buf := make([]byte, 1024)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
		}
	})
	return addr, &n
}

// keyedClient is a swarm with key kp that lists server as a static peer,
// with a manager running one connect service for topic (pinned to pin
// when non-zero); it returns the manager and the service's local address.
func keyedClient(t testing.TB, server *framework.Swarm, kp secure.KeyPair, topic framework.Topic, pin secure.PublicKey, log *logBuf) (*Manager, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sw := newSwarm(t, framework.WithKeyPair(kp), dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(server.Port())))
	opt := Options{PeerWait: -1}
	if log != nil {
		opt.Logger = testLogger(log)
	}
	m := newManager(t, sw, opt)
	if err := m.Add(ctx, Service{Name: "web", Topic: topic, Connect: "127.0.0.1:0", ServerKey: pin}); err != nil {
		t.Fatal(err)
	}
	if err := sw.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitPeer(ctx, topic); err != nil {
		t.Fatal(err)
	}
	return m, m.Addr("web").String()
}

// keyedServer is a swarm with key kp serving target on topic, allowed to
// the keys of allow (nil: any).
func keyedServer(t testing.TB, kp secure.KeyPair, topic framework.Topic, target string, allow *Allowlist, log *logBuf) (*framework.Swarm, *Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sw := newSwarm(t, framework.WithKeyPair(kp))
	opt := Options{}
	if log != nil {
		opt.Logger = testLogger(log)
	}
	m := newManager(t, sw, opt)
	if err := m.Add(ctx, Service{Name: "web", Topic: topic, Serve: target, Allow: allow}); err != nil {
		t.Fatal(err)
	}
	if err := sw.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	return sw, m
}

// TestAllowListRefusesOtherKeys: a serve service allowed to one key
// refuses a third key before dialling its target (the local service sees
// no connection), counts and logs the refusal with the key, and lets the
// allowed key through.
func TestAllowListRefusesOtherKeys(t *testing.T) {
	topic := framework.TopicFromString("allow-test")
	srvKey, alice, mallory := genKey(t), genKey(t), genKey(t)
	target, accepted := countingServer(t)
	var srvLog, cliLog logBuf
	sw, ms := keyedServer(t, srvKey, topic, target, NewAllowlist(alice.Public), &srvLog)

	_, malAddr := keyedClient(t, sw, mallory, topic, secure.PublicKey{}, &cliLog)
	c := dial(t, malAddr)
	c.Write([]byte("let me in"))
	expectClosed(t, c)
	met := ms.Metrics("web")
	if n := met.RefusedKeyNotAllowed.Load(); n != 1 {
		t.Errorf("refusals key_not_allowed = %d, want 1", n)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the local service saw %d connections from a refused key, want 0", n)
	}
	if s := met.Snapshot(); s.Connections != 0 {
		t.Errorf("refused session counted as forwarded: %+v", s)
	}
	if !strings.Contains(srvLog.String(), "remote_key="+mallory.Public.String()) || !strings.Contains(srvLog.String(), "reason="+ReasonKeyNotAllowed) {
		t.Errorf("server log lacks the refused key:\n%s", srvLog.String())
	}
	if !strings.Contains(cliLog.String(), StatusForbidden.String()) {
		t.Errorf("client log does not say why:\n%s", cliLog.String())
	}

	_, aliceAddr := keyedClient(t, sw, alice, topic, secure.PublicKey{}, nil)
	roundTrip(t, dial(t, aliceAddr), "hello")
	if n := accepted.Load(); n != 1 {
		t.Errorf("local service saw %d connections, want 1 (alice's)", n)
	}
	if got := met.Refusals()[ReasonKeyNotAllowed]; got != 1 {
		t.Errorf("refusals after alice = %d, want still 1", got)
	}
}

// TestSetAllowRevokes: replacing a running service's allow list closes the
// open connections of keys it no longer allows and admits the new keys.
func TestSetAllowRevokes(t *testing.T) {
	topic := framework.TopicFromString("revoke-test")
	srvKey, alice, bob := genKey(t), genKey(t), genKey(t)
	target, accepted := countingServer(t)
	sw, ms := keyedServer(t, srvKey, topic, target, NewAllowlist(alice.Public), nil)
	_, aliceAddr := keyedClient(t, sw, alice, topic, secure.PublicKey{}, nil)
	_, bobAddr := keyedClient(t, sw, bob, topic, secure.PublicKey{}, nil)

	ac := dial(t, aliceAddr)
	roundTrip(t, ac, "open")
	bc := dial(t, bobAddr)
	expectClosed(t, bc)

	if err := ms.SetAllow("web", NewAllowlist(bob.Public)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ac) // revoked
	roundTrip(t, dial(t, bobAddr), "now bob")
	if n := accepted.Load(); n != 2 {
		t.Errorf("local service saw %d connections, want 2 (alice's, then bob's)", n)
	}
	if got := ms.Services()[0].Allow.Keys(); len(got) != 1 || got[0] != bob.Public {
		t.Errorf("Services() allow = %v, want [bob]", got)
	}
	if err := ms.SetAllow("nope", nil); !errors.Is(err, ErrUnknownService) {
		t.Errorf("SetAllow of an unknown service: %v", err)
	}
}

// TestServerKeyPin: a connect service pinned to a key other than the
// server's closes the session before the local client's bytes are sent
// (the server's target sees nothing) and counts the refusal; pinned to
// the server's key it forwards.
func TestServerKeyPin(t *testing.T) {
	topic := framework.TopicFromString("pin-test")
	srvKey, cli, other := genKey(t), genKey(t), genKey(t)
	target, accepted := countingServer(t)
	sw, ms := keyedServer(t, srvKey, topic, target, nil, nil)

	var cliLog logBuf
	mc, addr := keyedClient(t, sw, cli, topic, other.Public, &cliLog)
	c := dial(t, addr)
	c.Write([]byte("secret"))
	expectClosed(t, c)
	if n := mc.Metrics("web").RefusedServerKey.Load(); n != 1 {
		t.Errorf("refusals server_key_mismatch = %d, want 1", n)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the server's target saw %d connections, want 0", n)
	}
	if s := ms.Metrics("web").Snapshot(); s.Connections != 0 || s.BytesIn != 0 {
		t.Errorf("server forwarded something: %+v", s)
	}
	if !strings.Contains(cliLog.String(), "remote_key="+srvKey.Public.String()) {
		t.Errorf("client log lacks the key it saw:\n%s", cliLog.String())
	}

	_, good := keyedClient(t, sw, genKey(t), topic, srvKey.Public, nil)
	roundTrip(t, dial(t, good), "pinned")
}

// TestAccessValidation: allow lists are for serve services, server keys
// for connect services.
func TestAccessValidation(t *testing.T) {
	k := genKey(t).Public
	for _, s := range []Service{
		{Name: "a", Connect: "127.0.0.1:0", Allow: NewAllowlist(k)},
		{Name: "b", Serve: "127.0.0.1:1", ServerKey: k},
	} {
		if err := s.validate(); !errors.Is(err, ErrInvalidService) {
			t.Errorf("%+v: %v, want ErrInvalidService", s, err)
		}
	}
	var nilList *Allowlist
	if !nilList.Allows(k) || NewAllowlist().Allows(k) || NewAllowlist(k).Allows(secure.PublicKey{}) {
		t.Error("Allows: nil allows all, empty allows none, the zero key is never allowed")
	}
}

// TestAllowListRefusesPlaintext: a plaintext connection proves no key, so
// a service with an allow list refuses it (reason no_key) and a pinned
// connect service refuses a plaintext server.
func TestAllowListRefusesPlaintext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	topic := framework.TopicFromString("plain-allow")
	target, accepted := countingServer(t)
	a := newSwarm(t, framework.WithPlaintext())
	ma := newManager(t, a, Options{})
	if err := ma.Add(ctx, Service{Name: "web", Topic: topic, Serve: target, Allow: NewAllowlist(genKey(t).Public)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctx, topic, framework.Announce(true), framework.Lookup(false)); err != nil {
		t.Fatal(err)
	}
	b := newSwarm(t, framework.WithPlaintext(), dwebswarm.StaticPeers("127.0.0.1:"+strconv.Itoa(a.Port())))
	mb := newManager(t, b, Options{PeerWait: -1})
	pin := genKey(t).Public
	for _, s := range []Service{{Name: "open", Topic: topic, Connect: "127.0.0.1:0"}, {Name: "pinned", Topic: topic, Connect: "127.0.0.1:0", ServerKey: pin}} {
		if err := mb.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Join(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := mb.WaitPeer(ctx, topic); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, dial(t, mb.Addr("open").String()))
	if n := ma.Metrics("web").RefusedNoKey.Load(); n != 1 {
		t.Errorf("refusals no_key = %d, want 1", n)
	}
	expectClosed(t, dial(t, mb.Addr("pinned").String()))
	if n := mb.Metrics("pinned").RefusedServerKey.Load(); n != 1 {
		t.Errorf("pinned: refusals server_key_mismatch = %d, want 1", n)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the local service saw %d plaintext connections, want 0", n)
	}
}

package forward

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// ErrServerKey is returned by a connect service's dial when the peer that
// answered proved another key than the service's pinned ServerKey.
var ErrServerKey = errors.New("forward: peer's key is not the pinned server key")

// Refusal reasons: the reason label of the refusal counters.
const (
	// ReasonKeyNotAllowed: a serve service refused a session whose remote
	// key is not in its allow list.
	ReasonKeyNotAllowed = "key_not_allowed"
	// ReasonNoKey: a serve service with an allow list refused a plaintext
	// connection, which proves no key.
	ReasonNoKey = "no_key"
	// ReasonServerKey: a connect service refused a session to a peer whose
	// key is not the pinned server key.
	ReasonServerKey = "server_key_mismatch"
)

// Allowlist is an immutable set of public keys: the keys allowed to use a
// serve service. A nil *Allowlist allows every key; an empty one none.
type Allowlist struct {
	keys map[secure.PublicKey]struct{}
}

// NewAllowlist returns the set of keys (duplicates are ignored).
func NewAllowlist(keys ...secure.PublicKey) *Allowlist {
	a := &Allowlist{keys: make(map[secure.PublicKey]struct{}, len(keys))}
	for _, k := range keys {
		a.keys[k] = struct{}{}
	}
	return a
}

// Allows reports whether k may use the service: always for a nil list,
// never for the zero key (a plaintext connection) otherwise.
func (a *Allowlist) Allows(k secure.PublicKey) bool {
	if a == nil {
		return true
	}
	if k.IsZero() {
		return false
	}
	_, ok := a.keys[k]
	return ok
}

// Keys returns the keys sorted by their text form; nil for a nil list.
func (a *Allowlist) Keys() []secure.PublicKey {
	if a == nil {
		return nil
	}
	out := make([]secure.PublicKey, 0, len(a.keys))
	for k := range a.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(x, y secure.PublicKey) int { return slices.Compare(x[:], y[:]) })
	return out
}

// Len is the number of keys (0 for nil).
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.keys)
}

// SetAllow replaces the allow list of the serve service name (nil: every
// key may use it) without restarting it, e.g. on a config reload that
// re-read its allow file. Forwarded connections whose remote key the new
// list does not allow are closed (a revoked key loses its open
// connections too); the others are not touched.
func (m *Manager) SetAllow(name string, a *Allowlist) error {
	m.mu.Lock()
	svc := m.services[name]
	m.mu.Unlock()
	if svc == nil {
		return fmt.Errorf("%w: %q", ErrUnknownService, name)
	}
	if svc.Serve == "" {
		return fmt.Errorf("%w: %q: only a serve service has an allow list", ErrInvalidService, name)
	}
	svc.allow.Store(a)
	svc.mu.Lock()
	var revoked []*link
	for l := range svc.links {
		if k := remoteKey(l); !a.Allows(k) {
			revoked = append(revoked, l)
		}
	}
	svc.mu.Unlock()
	for _, l := range revoked {
		svc.log.Info("forwarded connection closed: key no longer allowed", "remote_key", keyString(remoteKey(l)))
		l.close()
	}
	svc.log.Info("allow list set", "keys", a.Len(), "restricted", a != nil, "revoked", len(revoked))
	return nil
}

// remoteKey is the key the swarm side of l proved (zero: none, or not
// attached yet).
func remoteKey(l *link) secure.PublicKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.remote.(*framework.Conn); ok {
		return c.RemotePublicKey()
	}
	return secure.PublicKey{}
}

// keyString is a key's text form for logs: z-base-32, or "none" for a
// plaintext connection's zero key.
func keyString(k secure.PublicKey) string {
	if k.IsZero() {
		return "none"
	}
	return k.String()
}

// admit checks an inbound connection against the service's allow list;
// the reason of a refusal, "" when admitted.
func (s *service) admit(c *framework.Conn) string {
	a := s.allow.Load()
	k := c.RemotePublicKey()
	switch {
	case a.Allows(k):
		return ""
	case k.IsZero():
		return ReasonNoKey
	}
	return ReasonKeyNotAllowed
}

// refused counts a refusal of the service by reason.
func (s *service) refused(reason string) {
	s.metrics.refuse(reason)
}

// accessAttrs are the log attributes of the service's key rules.
func (s Service) accessAttrs() []any {
	var out []any
	if s.Allow != nil {
		out = append(out, "allowed_keys", s.Allow.Len())
	}
	if !s.ServerKey.IsZero() {
		out = append(out, "server_key", s.ServerKey.String())
	}
	return out
}

package mdns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	pmdns "github.com/pion/mdns/v2"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Record format constants; doc.go specifies them.
const (
	// ServicePrefix starts every service type: "_dws-<10 hex>._tcp".
	ServicePrefix = "_dws-"
	// ServiceProto is the DNS-SD protocol label.
	ServiceProto = "_tcp"
	// Domain is the mDNS domain.
	Domain = "local"
	// TopicPrefixLen is how many hex characters of the topic the service type carries.
	TopicPrefixLen = 10

	// TXT keys and the version this package speaks.
	TXTKeyVersion = "v"
	TXTKeyTopic   = "topic"
	TXTKeyID      = "id"
	TXTVersion    = "1"

	// IDSize is the size of the random per-Discovery id, in bytes.
	IDSize = 8
)

var (
	errNoTopic    = errors.New("no topic key")
	errNoID       = errors.New("no id key")
	errBadTopic   = errors.New("topic is not 64 hex characters")
	errBadID      = errors.New("id is not 16 hex characters")
	errBadVersion = errors.New("unsupported version")
)

// peerID is the random id that tells our own records from other swarms'.
type peerID [IDSize]byte

func newPeerID() (peerID, error) {
	var id peerID
	_, err := rand.Read(id[:])
	return id, err
}

func (id peerID) String() string { return hex.EncodeToString(id[:]) }

// ServiceType returns the DNS-SD service type of topic:
// "_dws-" + the first 10 lowercase hex characters of the topic + "._tcp".
func ServiceType(t framework.Topic) string {
	return ServicePrefix + t.String()[:TopicPrefixLen] + "." + ServiceProto
}

// serviceTypeKey canonicalises a service type as received ("_DWS-AB….
// _tcp", with or without ".local.") for map lookups; ok is false for a name
// that is not one of ours.
func serviceTypeKey(s string) (key string, ok bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	s = strings.TrimSuffix(s, "."+Domain)
	name, proto, found := strings.Cut(s, ".")
	if !found || proto != ServiceProto {
		return "", false
	}
	hexPart, found := strings.CutPrefix(name, ServicePrefix)
	if !found || len(hexPart) != TopicPrefixLen || !isLowerHex(hexPart) {
		return "", false
	}
	return name + "." + proto, true
}

// instanceName is the DNS-SD instance label of this swarm for topic t:
// "dws-<10 hex of topic>-<16 hex id>". It differs per topic although the
// service type already does, because pion's browser keys instances by this
// label alone, across service types.
func instanceName(t framework.Topic, id peerID) string {
	return "dws-" + t.String()[:TopicPrefixLen] + "-" + id.String()
}

// hostName is the name pion answers A/AAAA queries for: "dws-<id>.local"
// (the form WithLocalNames takes, without the final dot).
func hostName(id peerID) string { return "dws-" + id.String() + "." + Domain }

// targetName is the SRV target of one topic's instance:
// "dws-<10 hex of topic>-<16 hex id>.local". It is per topic because pion's
// browser applies every A/AAAA record to every instance whose target has
// that name: with one shared name, N topics cost N² events and the address
// reported could come from another topic's packet.
func targetName(t framework.Topic, id peerID) string {
	return instanceName(t, id) + "." + Domain
}

// record is what a TXT record of ours says.
type record struct {
	Topic framework.Topic
	ID    peerID
}

// txtEntries encodes r: "v=1", "topic=<64 hex>", "id=<16 hex>".
func txtEntries(r record) []pmdns.TXTEntry {
	return []pmdns.TXTEntry{
		pmdns.NewTXTString(TXTKeyVersion, TXTVersion),
		pmdns.NewTXTString(TXTKeyTopic, r.Topic.String()),
		pmdns.NewTXTString(TXTKeyID, r.ID.String()),
	}
}

// txtStrings is txtEntries in wire form (one string per entry).
func txtStrings(r record) []string {
	es := txtEntries(r)
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key + "=" + string(e.Value)
	}
	return out
}

// decodeTXT reads a record from TXT entries. Keys are case-insensitive and
// the first occurrence of a key wins (RFC 6763 §6.4); unknown keys are
// ignored; a missing "v" means version 1; hex may be upper or lower case.
func decodeTXT(entries []pmdns.TXTEntry) (record, error) {
	var r record
	var version, topic, id []byte
	var haveV, haveT, haveID bool
	for _, e := range entries {
		switch {
		case strings.EqualFold(e.Key, TXTKeyVersion) && !haveV:
			version, haveV = e.Value, true
		case strings.EqualFold(e.Key, TXTKeyTopic) && !haveT:
			topic, haveT = e.Value, true
		case strings.EqualFold(e.Key, TXTKeyID) && !haveID:
			id, haveID = e.Value, true
		}
	}
	if haveV && string(version) != TXTVersion {
		return r, fmt.Errorf("%w %q", errBadVersion, abbrev(version))
	}
	if !haveT {
		return r, errNoTopic
	}
	if !haveID {
		return r, errNoID
	}
	if len(topic) != 2*framework.TopicSize {
		return r, errBadTopic
	}
	if _, err := hex.Decode(r.Topic[:], topic); err != nil {
		return record{}, errBadTopic
	}
	if len(id) != 2*IDSize {
		return record{}, errBadID
	}
	if _, err := hex.Decode(r.ID[:], id); err != nil {
		return record{}, errBadID
	}
	return r, nil
}

// decodeTXTStrings splits wire TXT strings into entries the way RFC 6763
// §6.4 says (and pion does): "key=value", "key" (no value), "" and "=x"
// skipped, first occurrence of a key wins.
func decodeTXTStrings(ss []string) []pmdns.TXTEntry {
	var out []pmdns.TXTEntry
	seen := make(map[string]bool)
	for _, s := range ss {
		k, v, hasValue := strings.Cut(s, "=")
		if k == "" {
			continue
		}
		lk := strings.ToLower(k)
		if seen[lk] {
			continue
		}
		seen[lk] = true
		e := pmdns.TXTEntry{Key: k}
		if hasValue {
			e.Value = []byte(v)
		}
		out = append(out, e)
	}
	return out
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func abbrev(b []byte) string {
	if len(b) > 16 {
		return string(b[:16]) + "..."
	}
	return string(b)
}

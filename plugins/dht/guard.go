package dht

import (
	"net"

	"github.com/anacrolix/dht/v2/krpc"
)

// The KRPC guard.
//
// anacrolix/dht v2.23.0 decodes every inbound packet into krpc.Msg on the
// goroutine that serves the socket. Some malformed messages make that decoder
// or the query handlers panic, which would crash the whole process from one
// UDP packet:
//
//   - a compact address ("ip", or an element of "values") shorter than
//     2 bytes: krpc.NodeAddr.UnmarshalBinary makes a slice of negative length;
//   - a query without an "a" dictionary: the announce_peer and put handlers
//     dereference the nil arguments.
//
// Other malformed fields ("nodes" not a multiple of 26 bytes, an "e" that is
// neither a string nor [code, message]) are only rejected by the decoder,
// but anacrolix then logs each packet: dropping them first keeps a flood of
// junk from flooding the log.
//
// Every packet is therefore checked by validKRPC before the DHT sees it, and
// queries are screened again by onQuery. Packets that fail are dropped
// silently, as a BEP 5 node drops anything it cannot parse.

// maxBencodeDepth bounds nesting; KRPC messages nest three levels at most.
const maxBencodeDepth = 8

// bvalue is a decoded bencode value: exactly one of isStr (str), isInt,
// isList (list) and isDictV (dict) is set.
type bvalue struct {
	str     []byte
	isStr   bool
	isInt   bool
	list    []bvalue
	isList  bool
	dict    []bentry // in packet order; keys distinct
	isDictV bool
}

// bentry is a dictionary entry.
type bentry struct {
	key []byte
	val bvalue
}

// dictIndexAt is the size from which a dictionary's duplicate-key check
// uses a map: KRPC dictionaries have a handful of keys, scanned linearly
// without allocating; a hostile one with thousands stays O(n).
const dictIndexAt = 16

// parseBencode decodes one bencode value from b and returns it with the
// number of bytes used. It is strict: integers are -?[0-9]+ without leading
// zeros (other than "0"), dictionary keys are strings, and depth is bounded.
func parseBencode(b []byte, depth int) (v bvalue, n int, ok bool) {
	if len(b) == 0 || depth > maxBencodeDepth {
		return v, 0, false
	}
	switch c := b[0]; {
	case c == 'i':
		i := 1
		if i < len(b) && b[i] == '-' {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		digits := i - start
		if digits == 0 || digits > 19 || i >= len(b) || b[i] != 'e' {
			return v, 0, false
		}
		if b[start] == '0' && (digits > 1 || start == 2) {
			return v, 0, false // leading zero or "-0"
		}
		v.isInt = true
		return v, i + 1, true
	case c >= '0' && c <= '9':
		i, l := 0, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i >= 6 { // no string in a UDP packet is 10^6 bytes long
				return v, 0, false
			}
			l = l*10 + int(b[i]-'0')
			i++
		}
		if i >= len(b) || b[i] != ':' || (b[0] == '0' && i > 1) {
			return v, 0, false
		}
		i++
		if l > len(b)-i {
			return v, 0, false
		}
		v.isStr, v.str = true, b[i:i+l]
		return v, i + l, true
	case c == 'l':
		i := 1
		v.isList = true
		for {
			if i >= len(b) {
				return v, 0, false
			}
			if b[i] == 'e' {
				return v, i + 1, true
			}
			e, m, ok := parseBencode(b[i:], depth+1)
			if !ok {
				return v, 0, false
			}
			v.list = append(v.list, e)
			i += m
		}
	case c == 'd':
		i := 1
		v.isDictV = true
		v.dict = make([]bentry, 0, 4)
		var index map[string]struct{} // from dictIndexAt keys on
		for {
			if i >= len(b) {
				return v, 0, false
			}
			if b[i] == 'e' {
				return v, i + 1, true
			}
			k, m, ok := parseBencode(b[i:], depth+1)
			if !ok || !k.isStr {
				return v, 0, false
			}
			i += m
			e, m, ok := parseBencode(b[i:], depth+1)
			if !ok {
				return v, 0, false
			}
			i += m
			if index != nil {
				if _, dup := index[string(k.str)]; dup {
					return v, 0, false
				}
				index[string(k.str)] = struct{}{}
			} else if _, dup := v.get(string(k.str)); dup {
				return v, 0, false
			}
			v.dict = append(v.dict, bentry{k.str, e})
			if len(v.dict) == dictIndexAt {
				index = make(map[string]struct{}, 2*dictIndexAt)
				for _, e := range v.dict {
					index[string(e.key)] = struct{}{}
				}
			}
		}
	default:
		return v, 0, false
	}
}

func (v bvalue) isDict() bool { return v.isDictV }

// get returns the value of key k of a dictionary.
func (v bvalue) get(k string) (bvalue, bool) {
	for _, e := range v.dict {
		if string(e.key) == k {
			return e.val, true
		}
	}
	return bvalue{}, false
}

// compactAddr reports whether v is a compact IPv4 (6 bytes) or IPv6 (18
// bytes) address.
func compactAddr(v bvalue) bool {
	return v.isStr && (len(v.str) == 6 || len(v.str) == 18)
}

// compactList reports whether v is absent or a string of whole elements of
// size n (compact node infos: 26 bytes for IPv4, 38 for IPv6).
func compactList(v bvalue, n int) bool {
	if !v.isStr && !v.isInt && !v.isList && !v.isDict() {
		return true // absent
	}
	return v.isStr && len(v.str)%n == 0
}

// validKRPC reports whether b is a well-formed KRPC message that is safe to
// give to the DHT implementation. See the comment at the top of this file.
func validKRPC(b []byte) bool {
	if len(b) < 2 || b[0] != 'd' {
		return false
	}
	m, _, ok := parseBencode(b, 0) // trailing bytes are tolerated, as by anacrolix
	if !ok || !m.isDict() {
		return false
	}
	if t, ok := m.get("t"); !ok || !t.isStr {
		return false
	}
	y, ok := m.get("y")
	if !ok || !y.isStr || len(y.str) != 1 {
		return false
	}
	if ip, ok := m.get("ip"); ok && !compactAddr(ip) {
		return false
	}
	switch y.str[0] {
	case 'q':
		q, ok := m.get("q")
		if !ok || !q.isStr {
			return false
		}
		a, ok := m.get("a")
		if !ok || !a.isDict() {
			return false
		}
		if id, ok := a.get("id"); !ok || !id.isStr || len(id.str) != 20 {
			return false
		}
	case 'r':
		r, ok := m.get("r")
		if !ok || !r.isDict() {
			return false
		}
		if id, ok := r.get("id"); !ok || !id.isStr || len(id.str) != 20 {
			return false
		}
		if vals, ok := r.get("values"); ok {
			if !vals.isList {
				return false
			}
			for _, e := range vals.list {
				if !compactAddr(e) {
					return false
				}
			}
		}
		nodes, _ := r.get("nodes")
		nodes6, _ := r.get("nodes6")
		if !compactList(nodes, 26) || !compactList(nodes6, 38) {
			return false
		}
	case 'e':
		e, ok := m.get("e")
		if !ok || !(e.isStr || (e.isList && len(e.list) == 2 && e.list[0].isInt && e.list[1].isStr)) {
			return false
		}
	default:
		return false
	}
	return true
}

// onQuery screens decoded queries before anacrolix handles them: queries
// without arguments are dropped (see above), and so is BEP 44 "put", which
// dwebswarm does not use and whose in-memory store has no bound.
func (d *Node) onQuery(m *krpc.Msg, src net.Addr) bool {
	if m.A == nil {
		return false
	}
	switch m.Q {
	case "put":
		return false
	case HolePunchMethod:
		d.handlePunch(m, src)
		return false
	case RelayRequestMethod:
		d.handleRelayRequest(m, src)
		return false
	case UnannounceMethod:
		d.handleUnannounce(m, src)
		return false
	}
	return true
}

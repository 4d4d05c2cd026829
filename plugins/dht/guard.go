package dht

import (
	"net"
	"unsafe"

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

// btok is a scanned bencode value: its kind ('i', 's', 'l' or 'd'; 0 for
// an absent one) and where it is in the packet: a string's content is
// b[off:end], any other value's whole encoding is b[off:end]. The guard
// validates a packet in one pass that builds nothing (scanBencode), then
// finds the few fields it checks by walking the validated bytes again
// (dictFields): no allocation per packet, where a tree of slices cost one
// or more per dictionary.
type btok struct {
	kind     byte
	off, end int
}

// dictIndexAt is the size from which a dictionary's duplicate-key check
// uses a map: KRPC dictionaries have a handful of keys, kept on the stack
// and scanned linearly; a hostile one with thousands stays O(n).
const dictIndexAt = 16

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanBencode validates one bencode value at b[pos:] and returns it with
// the position after it. It is strict: integers are -?[0-9]+ without
// leading zeros (other than "0"), dictionary keys are distinct strings,
// and depth is bounded.
func scanBencode(b []byte, pos, depth int) (btok, int, bool) {
	if pos >= len(b) || depth > maxBencodeDepth {
		return btok{}, 0, false
	}
	switch c := b[pos]; {
	case c == 'i':
		i := pos + 1
		if i < len(b) && b[i] == '-' {
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		digits := i - start
		if digits == 0 || digits > 19 || i >= len(b) || b[i] != 'e' {
			return btok{}, 0, false
		}
		if b[start] == '0' && (digits > 1 || start == pos+2) {
			return btok{}, 0, false // leading zero or "-0"
		}
		return btok{'i', pos, i + 1}, i + 1, true
	case isDigit(c):
		i, l := pos, 0
		for i < len(b) && isDigit(b[i]) {
			if i-pos >= 6 { // no string in a UDP packet is 10^6 bytes long
				return btok{}, 0, false
			}
			l = l*10 + int(b[i]-'0')
			i++
		}
		if i >= len(b) || b[i] != ':' || (c == '0' && i-pos > 1) {
			return btok{}, 0, false
		}
		i++
		if l > len(b)-i {
			return btok{}, 0, false
		}
		return btok{'s', i, i + l}, i + l, true
	case c == 'l':
		i := pos + 1
		for {
			if i >= len(b) {
				return btok{}, 0, false
			}
			if b[i] == 'e' {
				return btok{'l', pos, i + 1}, i + 1, true
			}
			_, next, ok := scanBencode(b, i, depth+1)
			if !ok {
				return btok{}, 0, false
			}
			i = next
		}
	case c == 'd':
		return scanDict(b, pos, depth)
	default:
		return btok{}, 0, false
	}
}

// scanDict is scanBencode for a dictionary (b[pos] == 'd').
func scanDict(b []byte, pos, depth int) (btok, int, bool) {
	var keys [dictIndexAt]btok // the first keys, for the duplicate check
	nkeys := 0
	var index map[string]struct{} // from dictIndexAt keys on
	i := pos + 1
	for {
		if i >= len(b) {
			return btok{}, 0, false
		}
		if b[i] == 'e' {
			return btok{'d', pos, i + 1}, i + 1, true
		}
		k, next, ok := scanBencode(b, i, depth+1)
		if !ok || k.kind != 's' {
			return btok{}, 0, false
		}
		if _, next, ok = scanBencode(b, next, depth+1); !ok {
			return btok{}, 0, false
		}
		i = next
		key := b[k.off:k.end]
		if index != nil {
			// the map lives for this call only, and b does not change
			// during it: the keys alias b instead of copying it (a
			// 64 KiB packet of 8 000 keys made 8 000 allocations)
			ks := unsafe.String(unsafe.SliceData(key), len(key))
			if _, dup := index[ks]; dup {
				return btok{}, 0, false
			}
			index[ks] = struct{}{}
			continue
		}
		for _, p := range keys[:nkeys] {
			if string(b[p.off:p.end]) == string(key) {
				return btok{}, 0, false
			}
		}
		keys[nkeys] = k
		nkeys++
		if nkeys == dictIndexAt {
			index = make(map[string]struct{}, 2*dictIndexAt)
			for _, p := range keys {
				k := b[p.off:p.end]
				index[unsafe.String(unsafe.SliceData(k), len(k))] = struct{}{}
			}
		}
	}
}

// skipBencode returns the value at b[pos:] and the position after it, or
// next < 0 if it is cut short. It checks no more than it must to stay in
// bounds: it walks values scanBencode has accepted.
func skipBencode(b []byte, pos int) (t btok, next int) {
	if pos >= len(b) {
		return btok{}, -1
	}
	switch c := b[pos]; {
	case c == 'i':
		for i := pos + 1; i < len(b); i++ {
			if b[i] == 'e' {
				return btok{'i', pos, i + 1}, i + 1
			}
		}
		return btok{}, -1
	case isDigit(c):
		i, l := pos, 0
		for i < len(b) && isDigit(b[i]) && i-pos < 6 {
			l = l*10 + int(b[i]-'0')
			i++
		}
		if i >= len(b) || b[i] != ':' || l > len(b)-i-1 {
			return btok{}, -1
		}
		i++
		return btok{'s', i, i + l}, i + l
	case c == 'l' || c == 'd':
		i := pos + 1
		for i < len(b) && b[i] != 'e' {
			if _, i = skipBencode(b, i); i < 0 {
				return btok{}, -1
			}
		}
		if i >= len(b) {
			return btok{}, -1
		}
		return btok{c, pos, i + 1}, i + 1
	default:
		return btok{}, -1
	}
}

// dictFields sets out[j] to the value of key keys[j] in dictionary d
// (accepted by scanBencode), or leaves it absent (kind 0). It reports
// false if the walk fails, which it does not on accepted input.
func dictFields(b []byte, d btok, keys []string, out []btok) bool {
	i := d.off + 1
	for i < d.end && b[i] != 'e' {
		k, next := skipBencode(b, i)
		if next < 0 {
			return false
		}
		v, next := skipBencode(b, next)
		if next < 0 {
			return false
		}
		i = next
		for j, want := range keys {
			if string(b[k.off:k.end]) == want {
				out[j] = v
				break
			}
		}
	}
	return true
}

// The keys validKRPC checks: of the message, and of "a" and "r".
var (
	msgKeys = []string{"t", "y", "ip", "q", "a", "r", "e"}
	argKeys = []string{"id", "values", "nodes", "nodes6"}
)

func (t btok) len() int { return t.end - t.off }

// compactAddr reports whether v is a compact IPv4 (6 bytes) or IPv6 (18
// bytes) address.
func compactAddr(v btok) bool {
	return v.kind == 's' && (v.len() == 6 || v.len() == 18)
}

// compactList reports whether v is absent or a string of whole elements of
// size n (compact node infos: 26 bytes for IPv4, 38 for IPv6).
func compactList(v btok, n int) bool {
	return v.kind == 0 || (v.kind == 's' && v.len()%n == 0)
}

// validKRPC reports whether b is a well-formed KRPC message that is safe to
// give to the DHT implementation. See the comment at the top of this file.
// It does not allocate (but for dictionaries of dictIndexAt keys or more).
func validKRPC(b []byte) bool {
	if len(b) < 2 || b[0] != 'd' {
		return false
	}
	m, _, ok := scanBencode(b, 0, 0) // trailing bytes are tolerated, as by anacrolix
	if !ok || m.kind != 'd' {
		return false
	}
	var f [7]btok // msgKeys
	if !dictFields(b, m, msgKeys, f[:]) {
		return false
	}
	t, y, ip, q, a, r, e := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
	if t.kind != 's' {
		return false
	}
	if y.kind != 's' || y.len() != 1 {
		return false
	}
	if ip.kind != 0 && !compactAddr(ip) {
		return false
	}
	var g [4]btok // argKeys
	switch b[y.off] {
	case 'q':
		if q.kind != 's' || a.kind != 'd' || !dictFields(b, a, argKeys[:1], g[:1]) {
			return false
		}
		if id := g[0]; id.kind != 's' || id.len() != 20 {
			return false
		}
	case 'r':
		if r.kind != 'd' || !dictFields(b, r, argKeys, g[:]) {
			return false
		}
		id, vals, nodes, nodes6 := g[0], g[1], g[2], g[3]
		if id.kind != 's' || id.len() != 20 {
			return false
		}
		if vals.kind != 0 {
			if vals.kind != 'l' {
				return false
			}
			for i := vals.off + 1; i < len(b) && b[i] != 'e'; {
				var v btok
				if v, i = skipBencode(b, i); i < 0 || !compactAddr(v) {
					return false
				}
			}
		}
		if !compactList(nodes, 26) || !compactList(nodes6, 38) {
			return false
		}
	case 'e':
		switch e.kind {
		case 's':
		case 'l':
			e0, i := skipBencode(b, e.off+1)
			if i < 0 || e0.kind != 'i' {
				return false
			}
			e1, i := skipBencode(b, i)
			if i < 0 || e1.kind != 's' || b[i] != 'e' {
				return false
			}
		default:
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

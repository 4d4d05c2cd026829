package dht

// The guard's original parser (a tree of slices, allocating per dictionary),
// kept as the reference for the differential tests of the allocation-free
// scanner in guard.go: both must accept and reject exactly the same packets.

// refValue is a decoded bencode value: exactly one of isStr (str), isInt,
// isList (list) and isDictV (dict) is set.
type refValue struct {
	str     []byte
	isStr   bool
	isInt   bool
	list    []refValue
	isList  bool
	dict    []refEntry // in packet order; keys distinct
	isDictV bool
}

// refEntry is a dictionary entry.
type refEntry struct {
	key []byte
	val refValue
}

// refDictIndexAt is the size from which a dictionary's duplicate-key check
// uses a map: KRPC dictionaries have a handful of keys, scanned linearly
// without allocating; a hostile one with thousands stays O(n).
const refDictIndexAt = 16

// refParseBencode decodes one bencode value from b and returns it with the
// number of bytes used. It is strict: integers are -?[0-9]+ without leading
// zeros (other than "0"), dictionary keys are strings, and depth is bounded.
func refParseBencode(b []byte, depth int) (v refValue, n int, ok bool) {
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
			e, m, ok := refParseBencode(b[i:], depth+1)
			if !ok {
				return v, 0, false
			}
			v.list = append(v.list, e)
			i += m
		}
	case c == 'd':
		i := 1
		v.isDictV = true
		v.dict = make([]refEntry, 0, 4)
		var index map[string]struct{} // from refDictIndexAt keys on
		for {
			if i >= len(b) {
				return v, 0, false
			}
			if b[i] == 'e' {
				return v, i + 1, true
			}
			k, m, ok := refParseBencode(b[i:], depth+1)
			if !ok || !k.isStr {
				return v, 0, false
			}
			i += m
			e, m, ok := refParseBencode(b[i:], depth+1)
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
			v.dict = append(v.dict, refEntry{k.str, e})
			if len(v.dict) == refDictIndexAt {
				index = make(map[string]struct{}, 2*refDictIndexAt)
				for _, e := range v.dict {
					index[string(e.key)] = struct{}{}
				}
			}
		}
	default:
		return v, 0, false
	}
}

func (v refValue) isDict() bool { return v.isDictV }

// get returns the value of key k of a dictionary.
func (v refValue) get(k string) (refValue, bool) {
	for _, e := range v.dict {
		if string(e.key) == k {
			return e.val, true
		}
	}
	return refValue{}, false
}

// refCompactAddr reports whether v is a compact IPv4 (6 bytes) or IPv6 (18
// bytes) address.
func refCompactAddr(v refValue) bool {
	return v.isStr && (len(v.str) == 6 || len(v.str) == 18)
}

// refCompactList reports whether v is absent or a string of whole elements of
// size n (compact node infos: 26 bytes for IPv4, 38 for IPv6).
func refCompactList(v refValue, n int) bool {
	if !v.isStr && !v.isInt && !v.isList && !v.isDict() {
		return true // absent
	}
	return v.isStr && len(v.str)%n == 0
}

// refValidKRPC reports whether b is a well-formed KRPC message that is safe to
// give to the DHT implementation. See the comment at the top of this file.
func refValidKRPC(b []byte) bool {
	if len(b) < 2 || b[0] != 'd' {
		return false
	}
	m, _, ok := refParseBencode(b, 0) // trailing bytes are tolerated, as by anacrolix
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
	if ip, ok := m.get("ip"); ok && !refCompactAddr(ip) {
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
				if !refCompactAddr(e) {
					return false
				}
			}
		}
		nodes, _ := r.get("nodes")
		nodes6, _ := r.get("nodes6")
		if !refCompactList(nodes, 26) || !refCompactList(nodes6, 38) {
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

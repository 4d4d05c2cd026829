package hostconfig

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// maxAliases bounds how many alias references the walker follows, so that
// a small file of nested aliases cannot make validation explode.
const maxAliases = 1000

// decoder walks a yaml.Node tree by the schema and collects every problem
// with its position.
type decoder struct {
	file    string
	dir     string // base of relative paths
	errs    []*Error
	aliases int
	aliasEr bool
}

func (d *decoder) add(n *yaml.Node, sentinel error, hint, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, max(n.Column, 1)
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Hint: hint, Err: sentinel})
}

func (d *decoder) errf(n *yaml.Node, hint, format string, args ...any) {
	d.add(n, nil, hint, format, args...)
}

// resolve follows aliases, within the budget.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliases {
			if !d.aliasEr {
				d.aliasEr = true
				d.errf(n, "expand the aliases by hand", "more than %d alias references", maxAliases)
			}
			return nil
		}
		if n.Alias == nil {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "the boolean " + v
	case "!!int", "!!float":
		return "the number " + v
	case "!!str":
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), v)
}

// fields maps a key to the function that decodes its value.
type fields map[string]func(key, val *yaml.Node)

// mapping decodes a mapping node: each known key's function is called with
// the resolved value; unknown and repeated keys are errors. moved gives a
// hint for keys that belong elsewhere. A null node is an empty mapping.
// It returns false when n is not a mapping.
func (d *decoder) mapping(n *yaml.Node, path string, fs fields, moved map[string]string) bool {
	if isNull(n) {
		return true
	}
	if n.Kind != yaml.MappingNode {
		d.errf(n, "write key: value pairs on their own lines", "%s: want a mapping, got %s", pathOr(path), describe(n))
		return false
	}
	known := make([]string, 0, len(fs))
	for k := range fs {
		known = append(known, k)
	}
	slices.Sort(known)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], d.resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errf(k, "keys are plain words", "%s: a key must be a string, got %s", pathOr(path), describe(k))
			continue
		}
		if k.Value == "<<" {
			d.errf(k, "repeat the keys instead", "%s: merge keys (<<) are not supported", pathOr(path))
			continue
		}
		if first := seen[k.Value]; first != nil {
			d.errf(k, fmt.Sprintf("the first is at line %d", first.Line), "%s: duplicate key %q", pathOr(path), k.Value)
			continue
		}
		seen[k.Value] = k
		fn, ok := fs[k.Value]
		if !ok {
			hint := moved[k.Value]
			if hint == "" {
				hint = didYouMean(k.Value, known, "keys")
			}
			d.errf(k, hint, "%s: unknown key %q", pathOr(path), clip(k.Value))
			continue
		}
		if v == nil {
			continue // alias budget exhausted (reported)
		}
		fn(k, v)
	}
	return true
}

func pathOr(p string) string {
	if p == "" {
		return "config"
	}
	return p
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// list decodes a sequence node; a null node is an empty list. Items are
// resolved (nil items: alias budget exhausted).
func (d *decoder) list(n *yaml.Node, path, example string) ([]*yaml.Node, bool) {
	if isNull(n) {
		return []*yaml.Node{}, true
	}
	if n.Kind != yaml.SequenceNode {
		hint := "write a list: one \"- item\" per line"
		if example != "" {
			hint = "write a list, e.g. " + example
		}
		d.errf(n, hint, "%s: want a list, got %s", path, describe(n))
		return nil, false
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		if c = d.resolve(c); c != nil {
			out = append(out, c)
		}
	}
	return out, true
}

// str decodes a string. Numbers are taken as written; booleans, null,
// lists and mappings are errors.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errf(n, "", "%s: want a string, got %s", path, describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	}
	d.errf(n, "quote it if you mean the text", "%s: want a string, got %s", path, describe(n))
	return "", false
}

// nonEmpty decodes a string that must not be empty.
func (d *decoder) nonEmpty(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && strings.TrimSpace(s) == "" {
		d.errf(n, "", "%s: must not be empty", path)
		return "", false
	}
	return s, ok
}

func (d *decoder) strList(n *yaml.Node, path, example string) ([]string, bool) {
	items, ok := d.list(n, path, example)
	if !ok {
		return nil, false
	}
	out := []string{}
	good := true
	for i, it := range items {
		s, ok := d.nonEmpty(it, fmt.Sprintf("%s[%d]", path, i))
		good = good && ok
		out = append(out, s)
	}
	return out, good
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.errf(n, "write true or false", "%s: want a boolean, got %s", path, describe(n))
	return false, false
}

// integer decodes an integer in [lo, hi].
func (d *decoder) integer(n *yaml.Node, path string, lo, hi int64, hint string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		h := "write a whole number without quotes"
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			if _, err := strconv.Atoi(strings.TrimSpace(n.Value)); err == nil {
				h = "remove the quotes"
			}
		}
		d.errf(n, h, "%s: want an integer, got %s", path, describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		d.errf(n, fmt.Sprintf("range %d to %d", lo, hi), "%s: %s is not a valid integer", path, clip(n.Value))
		return 0, false
	}
	if v < lo || v > hi {
		if hint == "" {
			hint = rangeHint(lo, hi)
		}
		d.errf(n, hint, "%s: %d is out of range", path, v)
		return 0, false
	}
	return int(v), true
}

func rangeHint(lo, hi int64) string {
	if hi >= math.MaxInt32 {
		return fmt.Sprintf("must be at least %d", lo)
	}
	return fmt.Sprintf("must be %d to %d", lo, hi)
}

// number decodes a float (integers too).
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	d.errf(n, "write a number without quotes", "%s: want a number, got %s", path, describe(n))
	return 0, false
}

const durationHint = "a duration is a number with a unit: 500ms, 10s, 5m, 1h30m"

// Duration rules for decoder.duration.
const (
	positive = iota // > 0
	nonNeg          // >= 0
)

// duration decodes a Go duration ("1500ms", "10s"). With never, the word
// "never" gives framework.Forever.
func (d *decoder) duration(n *yaml.Node, path string, rule int, never bool) (time.Duration, bool) {
	hint := durationHint
	if never {
		hint += `, or never`
	}
	if n.Kind != yaml.ScalarNode {
		d.errf(n, hint, "%s: want a duration, got %s", path, describe(n))
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		d.errf(n, hint, "%s: %s has no unit", path, clip(n.Value))
		return 0, false
	case "!!str":
	default:
		d.errf(n, hint, "%s: want a duration, got %s", path, describe(n))
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	if never && s == "never" {
		return framework.Forever, true
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errf(n, hint, "%s: bad duration %q", path, clip(s))
		return 0, false
	}
	switch {
	case rule == positive && v <= 0:
		d.errf(n, "must be more than 0", "%s: %s is not positive", path, clip(s))
		return 0, false
	case rule == nonNeg && v < 0:
		d.errf(n, "must be 0 or more", "%s: %s is negative", path, clip(s))
		return 0, false
	}
	return v, true
}

func (d *decoder) durList(n *yaml.Node, path string, rule int) ([]time.Duration, bool) {
	items, ok := d.list(n, path, "[1s, 5s, 15s]")
	if !ok {
		return nil, false
	}
	out := []time.Duration{}
	good := true
	for i, it := range items {
		v, ok := d.duration(it, fmt.Sprintf("%s[%d]", path, i), rule, false)
		good = good && ok
		out = append(out, v)
	}
	return out, good
}

const addrHint = "write HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, port 1-65535"

// Address rules for decoder.addr.
const (
	hostRequired = 1 << iota
	hostOptional
)

// addr decodes HOST:PORT with a port in 1-65535.
func (d *decoder) addr(n *yaml.Node, path string, rule int) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		d.add(n, framework.ErrInvalidPeer, addrHint, "%s: bad address %q", path, clip(s))
		return "", false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		d.add(n, framework.ErrInvalidPeer, addrHint, "%s: bad port %q in %q", path, clip(port), clip(s))
		return "", false
	}
	if host == "" && rule == hostRequired {
		d.add(n, framework.ErrInvalidPeer, addrHint, "%s: %q has no host", path, clip(s))
		return "", false
	}
	if host != "" {
		if msg := checkHost(host); msg != "" {
			d.add(n, framework.ErrInvalidPeer, addrHint, "%s: %s in %q", path, msg, clip(s))
			return "", false
		}
	}
	return s, true
}

// checkHost says what is wrong with an IP address or host name, or "".
func checkHost(h string) string {
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	if len(h) > 253 {
		return "host name longer than 253 characters"
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Sprintf("bad host %q", clip(h))
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Sprintf("bad host %q", clip(h))
			}
		}
	}
	return ""
}

package validators

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

var _ framework.PeerValidator = (*BanList)(nil)

// ErrCorruptBanList is wrapped by the errors of a ban file that does not
// parse; the message names the file and line.
var ErrCorruptBanList = errors.New("corrupt ban list")

// Limits of the ban file.
const (
	MaxBanFileSize   = 16 << 20 // bytes
	MaxBanLineLength = 4096     // bytes
	MaxBanReason     = 512      // bytes, longer reasons are cut on Ban
)

// BanFileHeader is the first line of every ban file written.
const BanFileHeader = "# dwebswarm ban list v1"

// The ban file format (UTF-8 text, one entry per line):
//
//	# dwebswarm ban list v1
//	# comments and blank lines are ignored
//	TARGET ADDED [REASON...]
//
// TARGET is an IP address ("192.0.2.7", "2001:db8::1"), a prefix
// ("10.0.0.0/8"), an address with a port ("192.0.2.7:4000",
// "[2001:db8::1]:4000"), or a host name with or without a port
// ("peer.example", "peer.example:4000"), or a swarm's public key,
// "key:" and the key in z-base-32 or hex ("key:yb…", refused in the
// session handshake whatever the address; written in z-base-32). ADDED is the ban time in RFC 3339,
// or "-" when unknown. REASON is the rest of the line (no control
// characters). Fields are separated by spaces or tabs. A target listed twice
// keeps its last line. The file is rewritten whole on each change, through
// a temporary file renamed over it (atomic on POSIX file systems), so a
// crash leaves the old or the new list, never a mix.

// BanEntry is one ban.
type BanEntry struct {
	Target string    // canonical form (see ParseBanTarget)
	Added  time.Time // zero when unknown
	Reason string
}

// banTarget is a parsed target.
type banTarget struct {
	prefix netip.Prefix // IP or prefix, valid when the target is one
	host   string       // lower-cased host name, or IP string when a port is given
	port   int          // 0: any port
	key    secure.PublicKey
}

// keyPrefix starts a key target.
const keyPrefix = "key:"

func (b banTarget) String() string {
	switch {
	case !b.key.IsZero():
		return keyPrefix + b.key.String()
	case b.port != 0:
		return net.JoinHostPort(b.host, strconv.Itoa(b.port))
	case b.prefix.IsValid():
		if b.prefix.IsSingleIP() {
			return b.prefix.Addr().String()
		}
		return b.prefix.String()
	default:
		return b.host
	}
}

// ParseBanTarget parses and canonicalises a ban target: an IP address, a
// prefix, a host name, or either with a port. IPs are unmapped and
// prefixes masked; host names are lower-cased.
func ParseBanTarget(s string) (string, error) {
	t, err := parseBanTarget(s)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

func parseBanTarget(s string) (banTarget, error) {
	if s == "" {
		return banTarget{}, errors.New("empty target")
	}
	if k, ok := strings.CutPrefix(s, keyPrefix); ok {
		pk, err := secure.ParsePublicKey(k)
		if err != nil {
			return banTarget{}, fmt.Errorf("bad key: %v", err)
		}
		if pk.IsZero() {
			return banTarget{}, errors.New("the zero key")
		}
		return banTarget{key: pk}, nil
	}
	if strings.Contains(s, "/") {
		p, err := parsePrefix(s)
		if err != nil {
			return banTarget{}, fmt.Errorf("bad prefix: %v", err)
		}
		return banTarget{prefix: p}, nil
	}
	if ip, ok := parseHostIP(s); ok && !strings.HasPrefix(s, "[") {
		if strings.Contains(s, "%") {
			return banTarget{}, errors.New("an IPv6 zone is not allowed")
		}
		return banTarget{prefix: netip.PrefixFrom(ip, ip.BitLen())}, nil
	}
	host, port := s, 0
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p != strconv.Itoa(n) {
			return banTarget{}, fmt.Errorf("bad port %q", p)
		}
		host, port = h, n
	} else if strings.Contains(s, ":") || strings.HasPrefix(s, "[") {
		return banTarget{}, fmt.Errorf("not an address: %v", err)
	}
	if ip, ok := parseHostIP(host); ok {
		if strings.Contains(host, "%") {
			return banTarget{}, errors.New("an IPv6 zone is not allowed")
		}
		if port == 0 {
			return banTarget{}, errors.New("bracketed address without a port")
		}
		return banTarget{prefix: netip.PrefixFrom(ip, ip.BitLen()), host: ip.String(), port: port}, nil
	}
	if err := checkHostName(host); err != nil {
		return banTarget{}, err
	}
	return banTarget{host: strings.ToLower(host), port: port}, nil
}

// checkHostName accepts DNS-like names: letters, digits, '-', '_' and dots,
// 1–253 bytes.
func checkHostName(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("bad host name %q", h)
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("bad host name %q", h)
		}
	}
	return nil
}

// ParseBanFile parses the ban file format from r. Errors wrap
// ErrCorruptBanList and give the line number; name prefixes them.
func ParseBanFile(name string, r io.Reader) ([]BanEntry, error) {
	corrupt := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrCorruptBanList, name, line, fmt.Sprintf(format, args...))
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxBanFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxBanFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrCorruptBanList, name, MaxBanFileSize)
	}
	byTarget := map[string]int{}
	var out []BanEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), MaxBanLineLength+1)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if len(line) > MaxBanLineLength {
			return nil, corrupt(n, "line longer than %d bytes", MaxBanLineLength)
		}
		if !utf8.ValidString(line) {
			return nil, corrupt(n, "not valid UTF-8")
		}
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if i := strings.IndexFunc(trimmed, isBadControl); i >= 0 {
			return nil, corrupt(n, "control character %q", trimmed[i:i+1])
		}
		target, rest := cutField(trimmed)
		added, reason := cutField(rest)
		if added == "" {
			return nil, corrupt(n, "want TARGET ADDED [REASON], got %q", abbrev(trimmed))
		}
		t, err := parseBanTarget(target)
		if err != nil {
			return nil, corrupt(n, "target %q: %v", abbrev(target), err)
		}
		e := BanEntry{Target: t.String(), Reason: reason}
		if added != "-" {
			ts, err := time.Parse(time.RFC3339Nano, added)
			if err != nil {
				return nil, corrupt(n, "time %q is not RFC 3339 (or -)", abbrev(added))
			}
			if y := ts.UTC().Year(); y < 1 || y > 9999 {
				return nil, corrupt(n, "time %q is out of range (years 1-9999 UTC)", abbrev(added))
			}
			e.Added = ts.UTC()
		}
		if len(e.Reason) > MaxBanReason {
			return nil, corrupt(n, "reason longer than %d bytes", MaxBanReason)
		}
		if i, ok := byTarget[e.Target]; ok {
			out[i] = e
			continue
		}
		byTarget[e.Target] = len(out)
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, corrupt(n+1, "line longer than %d bytes", MaxBanLineLength)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// isBadControl reports control characters other than tab.
func isBadControl(r rune) bool { return r != '\t' && (unicode.IsControl(r) || r == utf8.RuneError) }

// cutField splits off the first space- or tab-separated field.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func abbrev(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// FormatBanFile writes entries in the ban file format.
func FormatBanFile(w io.Writer, entries []BanEntry) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, BanFileHeader)
	fmt.Fprintln(bw, "# TARGET ADDED REASON — written by dwebswarm; edit while it is not running")
	for _, e := range entries {
		added := "-"
		if !e.Added.IsZero() {
			added = e.Added.UTC().Format(time.RFC3339Nano)
		}
		line := e.Target + " " + added
		if e.Reason != "" {
			line += " " + e.Reason
		}
		fmt.Fprintln(bw, line)
	}
	return bw.Flush()
}

// cleanReason makes a free-text reason fit on one line of the file.
func cleanReason(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	for len(s) > MaxBanReason {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// BanListConfig configures a [BanList].
type BanListConfig struct {
	// Path of the ban file. A missing file is an empty list (created on
	// the first ban); its directory must exist.
	Path string
	// Now is the clock stamping new bans (default time.Now).
	Now func() time.Time
}

// BanList refuses banned peers and keeps its bans in a file, so that they
// survive restarts. A ban matches a peer by IP address, by prefix, by host
// name (case-insensitive), or by exact address with a port. It is safe for
// concurrent use; Validate never touches the disk.
type BanList struct {
	path string
	now  func() time.Time

	mu       sync.RWMutex
	entries  []BanEntry // in file order
	byTarget map[string]int
	exact    map[string]struct{} // "ip", "host", "ip:port", "host:port"
	prefixes []netip.Prefix      // non-single-IP prefixes
	keys     map[secure.PublicKey]struct{}
}

// OpenBanList loads the ban file at cfg.Path. A corrupt file is an error
// wrapping ErrCorruptBanList naming the file and line: fix or remove it,
// the list is never silently emptied.
func OpenBanList(cfg BanListConfig) (*BanList, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("%w: banlist: empty Path", framework.ErrInvalidOption)
	}
	b := &BanList{path: cfg.Path, now: cfg.Now}
	if b.now == nil {
		b.now = time.Now
	}
	f, err := os.Open(cfg.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		b.setLocked(nil)
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("banlist: %w", err)
	}
	defer f.Close()
	entries, err := ParseBanFile(cfg.Path, f)
	if err != nil {
		return nil, fmt.Errorf("banlist: %w", err)
	}
	b.setLocked(entries)
	return b, nil
}

// setLocked replaces the entries and rebuilds the indexes.
func (b *BanList) setLocked(entries []BanEntry) {
	b.entries = entries
	b.byTarget = make(map[string]int, len(entries))
	b.exact = make(map[string]struct{}, len(entries))
	b.prefixes = nil
	b.keys = make(map[secure.PublicKey]struct{})
	for i, e := range entries {
		b.byTarget[e.Target] = i
		t, err := parseBanTarget(e.Target)
		if err != nil {
			continue // entries are canonical; cannot happen
		}
		if !t.key.IsZero() {
			b.keys[t.key] = struct{}{}
		} else if t.prefix.IsValid() && t.port == 0 && !t.prefix.IsSingleIP() {
			b.prefixes = append(b.prefixes, t.prefix)
		} else {
			b.exact[t.String()] = struct{}{}
		}
	}
}

// Name returns "banlist".
func (b *BanList) Name() string { return "banlist" }

// Path is the ban file.
func (b *BanList) Path() string { return b.path }

// Entries returns the bans in file order.
func (b *BanList) Entries() []BanEntry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Clone(b.entries)
}

// Ban adds (or updates the reason of) a ban and writes the file before
// returning. target is as in the file format.
func (b *BanList) Ban(target, reason string) error {
	t, err := parseBanTarget(target)
	if err != nil {
		return fmt.Errorf("%w: banlist: target %q: %v", framework.ErrInvalidOption, abbrev(target), err)
	}
	e := BanEntry{Target: t.String(), Added: b.now().UTC().Truncate(time.Second), Reason: cleanReason(reason)}
	b.mu.Lock()
	defer b.mu.Unlock()
	next := slices.Clone(b.entries)
	if i, ok := b.byTarget[e.Target]; ok {
		next[i] = e
	} else {
		next = append(next, e)
	}
	if err := b.writeLocked(next); err != nil {
		return err
	}
	b.setLocked(next)
	return nil
}

// Unban removes a ban and writes the file; it reports whether the target
// was banned.
func (b *BanList) Unban(target string) (bool, error) {
	t, err := parseBanTarget(target)
	if err != nil {
		return false, fmt.Errorf("%w: banlist: target %q: %v", framework.ErrInvalidOption, abbrev(target), err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := b.byTarget[t.String()]
	if !ok {
		return false, nil
	}
	next := slices.Delete(slices.Clone(b.entries), i, i+1)
	if err := b.writeLocked(next); err != nil {
		return false, err
	}
	b.setLocked(next)
	return true, nil
}

// writeLocked writes entries to a temporary file beside the ban file,
// syncs it and renames it over the ban file, then syncs the directory.
func (b *BanList) writeLocked(entries []BanEntry) (err error) {
	dir := filepath.Dir(b.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(b.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("banlist: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := FormatBanFile(tmp, entries); err != nil {
		return fmt.Errorf("banlist: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("banlist: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("banlist: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), b.path); err != nil {
		return fmt.Errorf("banlist: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; not every file system can
		d.Close()
	}
	return nil
}

// Banned reports whether p is banned.
func (b *BanList) Banned(p framework.Peer) bool { return b.match(p) != "" }

// match returns the matching target, or "".
func (b *BanList) match(p framework.Peer) string {
	var host string
	ip, isIP := parseHostIP(p.Host)
	if isIP {
		host = ip.String()
	} else {
		host = strings.ToLower(p.Host)
	}
	withPort := net.JoinHostPort(host, strconv.Itoa(p.Port))
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, ok := b.exact[host]; ok {
		return host
	}
	if _, ok := b.exact[withPort]; ok {
		return withPort
	}
	if isIP {
		for _, pf := range b.prefixes {
			if pf.Contains(ip) {
				return pf.String()
			}
		}
	}
	return ""
}

// Validate implements framework.PeerValidator: banned peers are rejected
// with an error wrapping framework.ErrBanned.
func (b *BanList) Validate(_ context.Context, p framework.Peer) error {
	if t := b.match(p); t != "" {
		return fmt.Errorf("%w: %s matches ban %s", framework.ErrBanned, p.Addr(), t)
	}
	return nil
}

// ValidateKey implements framework.KeyValidator: a session with a banned
// key ("key:" targets) is refused in its handshake, with an error wrapping
// framework.ErrBanned.
func (b *BanList) ValidateKey(_ context.Context, k secure.PublicKey) error {
	b.mu.RLock()
	_, banned := b.keys[k]
	b.mu.RUnlock()
	if banned {
		return fmt.Errorf("%w: key %s is banned", framework.ErrBanned, k)
	}
	return nil
}

var _ framework.KeyValidator = (*BanList)(nil)

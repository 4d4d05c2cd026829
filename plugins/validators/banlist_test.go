package validators_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

func openBans(t *testing.T, path string) *validators.BanList {
	t.Helper()
	b, err := validators.OpenBanList(validators.BanListConfig{Path: path, Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBanListSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	b := openBans(t, path)
	if len(b.Entries()) != 0 {
		t.Fatal("a missing file is not an empty list")
	}
	for target, reason := range map[string]string{
		"192.0.2.7":          "spam",
		"10.0.0.0/8":         "internal",
		"198.51.100.1:4000":  "one port only",
		"[2001:db8::1]:4001": "v6 with port",
		"Peer.Example":       "by name\nwith a newline\tand tab",
		"::ffff:203.0.113.9": "mapped",
		"2001:db8:bad::/48":  "",
		"named.example:5000": "name and port",
	} {
		if err := b.Ban(target, reason); err != nil {
			t.Fatalf("Ban(%q): %v", target, err)
		}
	}
	// restart: a new BanList reads the same file
	b2 := openBans(t, path)
	if got, want := len(b2.Entries()), 8; got != want {
		t.Fatalf("%d entries after restart, want %d: %v", got, want, b2.Entries())
	}
	for _, tc := range []struct {
		peer   framework.Peer
		banned bool
	}{
		{p("192.0.2.7", 1), true},
		{p("::ffff:192.0.2.7", 2), true},
		{p("192.0.2.8", 1), false},
		{p("10.200.3.4", 9), true},
		{p("198.51.100.1", 4000), true},
		{p("198.51.100.1", 4002), false},
		{p("2001:db8::1", 4001), true},
		{p("2001:db8::1", 4000), false},
		{p("peer.example", 1), true},
		{p("PEER.EXAMPLE", 2), true},
		{p("203.0.113.9", 3), true},
		{p("2001:db8:bad:1::5", 3), true},
		{p("2001:db8:bab::5", 3), false},
		{p("named.example", 5000), true},
		{p("named.example", 5001), false},
	} {
		err := b2.Validate(ctx, tc.peer)
		if (err != nil) != tc.banned {
			t.Errorf("%s: %v, want banned=%v", tc.peer.Addr(), err, tc.banned)
		}
		if err != nil && !errors.Is(err, framework.ErrBanned) {
			t.Errorf("%s: %v does not wrap ErrBanned", tc.peer.Addr(), err)
		}
	}
	for _, e := range b2.Entries() {
		if strings.ContainsAny(e.Reason, "\n\t") {
			t.Errorf("reason %q kept control characters", e.Reason)
		}
		if !e.Added.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s added %v", e.Target, e.Added)
		}
	}
	if ok, err := b2.Unban("192.0.2.7"); !ok || err != nil {
		t.Fatalf("Unban: %v %v", ok, err)
	}
	if ok, _ := b2.Unban("192.0.2.7"); ok {
		t.Fatal("second Unban reported a ban")
	}
	if b3 := openBans(t, path); b3.Banned(p("192.0.2.7", 1)) || !b3.Banned(p("10.0.0.1", 1)) {
		t.Fatal("unban not persisted")
	}
	// no temporary files are left beside the list
	files, _ := os.ReadDir(filepath.Dir(path))
	if len(files) != 1 {
		t.Fatalf("directory holds %d files, want only the list", len(files))
	}
}

func TestBanRejectsBadTargets(t *testing.T) {
	b := openBans(t, filepath.Join(t.TempDir(), "bans"))
	for _, bad := range []string{"", "a b", "1.2.3.4:0", "1.2.3.4:99999", "[::1]", "fe80::1%eth0", "10.0.0.0/99", "x:y", "host:08"} {
		if err := b.Ban(bad, "x"); !errors.Is(err, framework.ErrInvalidOption) {
			t.Errorf("Ban(%q): %v, want ErrInvalidOption", bad, err)
		}
	}
	if _, err := validators.OpenBanList(validators.BanListConfig{}); !errors.Is(err, framework.ErrInvalidOption) {
		t.Errorf("empty path: %v", err)
	}
}

func TestCorruptBanFileIsAClearError(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"bad-target":  "# dwebswarm ban list v1\n192.0.2.1 -\nnot/a/target - x\n",
		"no-added":    "192.0.2.1\n",
		"bad-time":    "192.0.2.1 yesterday\n",
		"control":     "192.0.2.1 - a\x01b\n",
		"utf8":        "192.0.2.1 - \xff\xfe\n",
		"long-line":   "192.0.2.1 - " + strings.Repeat("x", 5000) + "\n",
		"long-reason": "192.0.2.1 - " + strings.Repeat("x", 600) + "\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := validators.OpenBanList(validators.BanListConfig{Path: path})
		if !errors.Is(err, validators.ErrCorruptBanList) {
			t.Errorf("%s: %v, want ErrCorruptBanList", name, err)
			continue
		}
		if !strings.Contains(err.Error(), path+":") {
			t.Errorf("%s: error %q does not name the file and line", name, err)
		}
	}
	if _, err := validators.OpenBanList(validators.BanListConfig{Path: filepath.Join(dir, "bad-target")}); !strings.Contains(err.Error(), ":3:") {
		t.Errorf("error %q does not give line 3", err)
	}
	// a directory in place of the file is an error too, not an empty list
	if _, err := validators.OpenBanList(validators.BanListConfig{Path: dir}); err == nil {
		t.Error("a directory opened as a ban list")
	}
}

func TestBanFileWriteFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bans")
	b := openBans(t, path)
	if err := b.Ban("192.0.2.1", "first"); err != nil {
		t.Fatal(err)
	}
	// put a non-empty directory where the file is: the rename fails, even
	// for root
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban("192.0.2.2", "second"); err == nil {
		t.Fatal("Ban succeeded though the file could not be replaced")
	}
	if b.Banned(p("192.0.2.2", 1)) || !b.Banned(p("192.0.2.1", 1)) {
		t.Fatal("a ban that was not written is in effect, or the old one is lost")
	}
	if ok, err := b.Unban("192.0.2.1"); ok || err == nil {
		t.Fatalf("Unban succeeded though the file could not be replaced: %v %v", ok, err)
	}
	if !b.Banned(p("192.0.2.1", 1)) {
		t.Fatal("an unban that was not written is in effect")
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 {
		t.Fatalf("temporary files left behind: %d entries in the directory", len(files))
	}
}

func TestBanListConcurrentBansAndValidations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	b := openBans(t, path)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := b.Ban("192.0.2."+string(rune('1'+i)), "c"); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				_ = b.Validate(ctx, p("192.0.2.1", 1))
			}
		}()
	}
	wg.Wait()
	if n := len(openBans(t, path).Entries()); n != 8 {
		t.Fatalf("%d bans on disk, want 8", n)
	}
}

func TestParseBanTargetCanonicalises(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":           "192.0.2.7",
		"::ffff:192.0.2.7":    "192.0.2.7",
		"2001:DB8::0:1":       "2001:db8::1",
		"10.1.2.3/8":          "10.0.0.0/8",
		"192.0.2.7/32":        "192.0.2.7",
		"[::ffff:1.2.3.4]:80": "1.2.3.4:80",
		"[2001:db8::1]:80":    "[2001:db8::1]:80",
		"Peer.Example:4000":   "peer.example:4000",
	} {
		got, err := validators.ParseBanTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseBanTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// FuzzParseBanFile: the parser never panics, and whatever it accepts
// survives a write and a re-read unchanged.
func FuzzParseBanFile(f *testing.F) {
	for _, s := range []string{
		"",
		validators.BanFileHeader + "\n192.0.2.7 2025-01-02T03:04:05Z spam\n",
		"10.0.0.0/8 - internal\n[2001:db8::1]:80\t-\tv6\r\n",
		"peer.example:4000 2025-01-02T03:04:05.123+02:00 a  b\tc\n# comment\n\n",
		"::ffff:1.2.3.4 - x\n1.2.3.4 - y\n",
		"192.0.2.1 -\n192.0.2.1 - again\n",
		"x - \xff\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := validators.ParseBanFile("fuzz", bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, validators.ErrCorruptBanList) {
				t.Fatalf("error %v does not wrap ErrCorruptBanList", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := validators.FormatBanFile(&buf, entries); err != nil {
			t.Fatal(err)
		}
		again, err := validators.ParseBanFile("again", &buf)
		if err != nil {
			t.Fatalf("re-reading what was written: %v\n%s", err, buf.String())
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries, then %d", len(entries), len(again))
		}
		for i := range entries {
			a, b := entries[i], again[i]
			if a.Target != b.Target || a.Reason != b.Reason || !a.Added.Equal(b.Added) {
				t.Fatalf("entry %d: %+v became %+v", i, a, b)
			}
			if c, err := validators.ParseBanTarget(a.Target); err != nil || c != a.Target {
				t.Fatalf("target %q is not canonical (%q, %v)", a.Target, c, err)
			}
		}
	})
}

// A "key:" ban refuses that swarm's key (KeyValidator), survives a restart
// in z-base-32 whatever form it was given in, and matches no address.
func TestBanListBansKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	b := openBans(t, path)
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	other, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ban("key:"+hex.EncodeToString(kp.Public[:]), "its key"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"key:", "key:nonsense", "key:" + strings.Repeat("0", 64)} {
		if err := b.Ban(bad, ""); err == nil {
			t.Errorf("Ban(%q) accepted", bad)
		}
	}
	b2 := openBans(t, path)
	if got := b2.Entries(); len(got) != 1 || got[0].Target != "key:"+kp.Public.String() {
		t.Fatalf("entries %+v", got)
	}
	if err := b2.ValidateKey(t.Context(), kp.Public); !errors.Is(err, framework.ErrBanned) {
		t.Fatalf("banned key: %v", err)
	}
	if err := b2.ValidateKey(t.Context(), other.Public); err != nil {
		t.Fatalf("other key: %v", err)
	}
	if err := b2.Validate(t.Context(), framework.Peer{Host: "192.0.2.7", Port: 1}); err != nil {
		t.Fatalf("an address: %v", err)
	}
}

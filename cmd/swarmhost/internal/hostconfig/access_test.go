package hostconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

func testKey(t testing.TB) secure.PublicKey {
	t.Helper()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp.Public
}

// TestServiceAccess: allow and allowFile give a serve service its keys
// (the file's path relative to the config), serverKey pins a connect
// service's server; a reload re-reads the file and Diff reports the kept
// service under AccessChanged, not as a restart.
func TestServiceAccess(t *testing.T) {
	dir := t.TempDir()
	a, b, c, srv := testKey(t), testKey(t), testKey(t), testKey(t)
	hex := fmt.Sprintf("%x", b[:])
	allowPath := filepath.Join(dir, "allowed.keys")
	if err := os.WriteFile(allowPath, []byte("# laptops\n"+hex+"  # bob, in hex\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "c.yaml")
	src := fmt.Sprintf("services:\n  - {name: web, topic: w, serve: 127.0.0.1:80, allow: [%s], allowFile: allowed.keys}\n  - {name: open, topic: o, serve: 127.0.0.1:81}\n  - {name: db, topic: d, connect: 127.0.0.1:9, serverKey: %s}\n", a, srv)
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := old.Services()
	if !s[0].Restricted || !slices.Equal(s[0].Allow, []secure.PublicKey{a, b}) || s[0].AllowFile != allowPath {
		t.Errorf("web: %+v", s[0])
	}
	if s[1].Restricted || s[1].Allow != nil {
		t.Errorf("open: restricted %v %v", s[1].Restricted, s[1].Allow)
	}
	if s[2].ServerKey != srv {
		t.Errorf("db: server key %s, want %s", s[2].ServerKey, srv)
	}

	if err := os.WriteFile(allowPath, []byte(c.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cur, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ch := Diff(old, cur)
	if len(ch.ServicesAdded)+len(ch.ServicesRemoved) != 0 || len(ch.AccessChanged) != 1 || ch.AccessChanged[0].Name != "web" ||
		!slices.Equal(ch.AccessChanged[0].Allow, []secure.PublicKey{a, c}) || ch.Empty() {
		t.Errorf("diff after the allow file changed: %+v", ch)
	}
	if ch := Diff(cur, cur); !ch.Empty() {
		t.Errorf("no change: %+v", ch)
	}
}

// TestServiceAccessErrors: bad keys (encoding, length), duplicates, keys
// on the wrong kind of service, a missing allow file and a bad line in
// one are reported at their file:line:col.
func TestServiceAccessErrors(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t)
	allowPath := filepath.Join(dir, "bad.keys")
	if err := os.WriteFile(allowPath, []byte("# ok\n"+k.String()+"\n  "+strings.Repeat("0", 63)+"\n"+k.String()+" # again\n"+k.String()+" "+k.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	src := strings.Join([]string{
		"services:",
		"  - name: a",
		"    topic: a",
		"    serve: 127.0.0.1:80",
		"    allow:",
		"      - " + k.String(),
		"      - " + k.String(),
		"      - ybndrfg8ejkmcpqxot1uwisza345h769ybndrfg8ejkmcpqxot1uwis0",
		"      - short",
		"  - {name: b, topic: b, connect: 127.0.0.1:9, allow: [" + k.String() + "]}",
		"  - {name: c, topic: c, serve: 127.0.0.1:82, serverKey: " + k.String() + "}",
		"  - {name: d, topic: d, serve: 127.0.0.1:83, allowFile: missing.keys}",
		"  - {name: e, topic: e, serve: 127.0.0.1:84, allowFile: bad.keys}",
		"  - {name: f, topic: f, connect: 127.0.0.1:9, serverKey: nope}",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(cfg)
	if !errors.Is(err, secure.ErrBadKey) {
		t.Fatalf("err %v, want ErrBadKey", err)
	}
	got := err.Error()
	for _, want := range []string{
		cfg + ":7:9: services[0].allow[1]: duplicate key " + k.String() + " (the first is at line 6",
		cfg + ":8:9: services[0].allow[2]: bad key: ",
		cfg + ":9:9: services[0].allow[3]: bad key: 5 characters, want 52 (z-base-32) or 64 (hex)",
		cfg + ":10:47: services[1]: allow on a connect service",
		cfg + ":11:46: services[2]: serverKey on a serve service",
		cfg + ":12:57: services[3].allowFile: no such file or directory",
		allowPath + ":3:3: bad key: 63 characters",
		allowPath + ":4:1: duplicate key " + k.String() + " (the first is at line 2",
		allowPath + ":5:54: more than one key on the line",
		cfg + ":14:58: services[5].serverKey: bad key: 4 characters",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}

	if _, err := ReadKeyList(dir); !errors.Is(err, secure.ErrBadKey) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadKeyList of a directory: %v", err)
	}

	if err := os.WriteFile(cfg, []byte("node: {plaintext: true}\nservices:\n  - {name: a, topic: a, serve: 127.0.0.1:80, allow: []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfg); err == nil || !strings.Contains(err.Error(), cfg+":3:5: services: service \"a\" checks keys, but node.plaintext is true") {
		t.Errorf("plaintext with an allow list: %v", err)
	}
}

// FuzzParseKeyList: the allow-file parser never panics; every problem has
// a position inside the input and wraps secure.ErrBadKey; the keys it
// returns are distinct and parse back from their printed form.
func FuzzParseKeyList(f *testing.F) {
	k := "ybndrfg8ejkmcpqxot1uwisza345h769ybndrfg8ejkmcpqxot1uwisy"[:52]
	for _, s := range []string{
		"", "\n", "# only a comment\n", k + "\n", k + " # me\n" + k + "\n", "  " + k + "  \r\n", k + " " + k,
		strings.Repeat("ab", 32) + "\n", "#" + k, "\x00\xff\n", "zzz\n\n\nyyy",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeyList("allow.keys", data)
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range Errors(err) {
			if e.File != "allow.keys" || e.Line < 1 || e.Line > lines || e.Column < 1 || !errors.Is(e, secure.ErrBadKey) {
				t.Fatalf("bad error %#v", e)
			}
		}
		if err != nil && len(Errors(err)) == 0 {
			t.Fatalf("error without positions: %v", err)
		}
		seen := map[secure.PublicKey]bool{}
		var out strings.Builder
		for _, k := range keys {
			if seen[k] || k.IsZero() {
				t.Fatalf("key %s twice or zero", k)
			}
			seen[k] = true
			out.WriteString(k.String() + "\n")
		}
		again, err := ParseKeyList("again", []byte(out.String()))
		if err != nil || !slices.Equal(again, keys) {
			t.Fatalf("keys do not round-trip: %v %v", again, err)
		}
	})
}

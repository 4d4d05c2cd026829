package secure

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPublicKeyTextRoundTrip(t *testing.T) {
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s := kp.Public.String()
	if len(s) != 52 || strings.ContainsAny(s, "0lv2=") {
		t.Fatalf("key text %q: want 52 z-base-32 characters", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), " " + s + "\n", hexOf(kp.Public)} {
		k, err := ParsePublicKey(in)
		if err != nil || k != kp.Public {
			t.Fatalf("ParsePublicKey(%q) = %v, %v", in, k, err)
		}
	}
	for _, bad := range []string{"", "abc", s[:51], s + "y", strings.Repeat("0", 64), strings.Repeat("y", 52), strings.Repeat("g", 64)} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%q): err %v, want ErrBadKey", bad, err)
		}
	}
}

func hexOf(k PublicKey) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range k {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "node.key")
	kp, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
	}
	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || again != kp {
		t.Fatalf("reload: %v %v, same key %v", created, err, again == kp)
	}
	if err := WriteKeyFile(path, kp); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing key file")
	}
	if runtime.GOOS != "windows" {
		for mode, who := range map[os.FileMode]string{0o644: "group and others may", 0o640: "group may", 0o604: "others may"} {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadKeyFile(path); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), ": "+who) {
				t.Fatalf("loose mode %04o: %v, want it to say %q", mode, err, who)
			}
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(bad); !errors.Is(err, ErrBadKey) {
		t.Fatalf("garbage key file: %v", err)
	}
}

func FuzzParsePublicKey(f *testing.F) {
	kp, _ := GenerateKeyPair()
	f.Add(kp.Public.String())
	f.Add(hexOf(kp.Public))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		k2, err := ParsePublicKey(k.String())
		if err != nil || k2 != k {
			t.Fatalf("round trip of %q: %v %v", s, k2, err)
		}
	})
}

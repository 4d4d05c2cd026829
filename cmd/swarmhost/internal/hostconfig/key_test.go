package hostconfig

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// TestNodeKeyAndPlaintext: node.key is relative to the config file
// (default node.key beside it), node.plaintext a boolean; LoadKey creates
// the file with mode 0600 on first run and reuses it after.
func TestNodeKeyAndPlaintext(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := Load(write("default.yaml", ""))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, DefaultKeyFile); c.Node.Key != want || c.Node.Plaintext {
		t.Fatalf("default key %q plaintext %v, want %q false", c.Node.Key, c.Node.Plaintext, want)
	}
	c, err = Load(write("set.yaml", "node:\n  key: keys/me.key\n  plaintext: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "keys", "me.key"); c.Node.Key != want || !c.Node.Plaintext {
		t.Fatalf("key %q plaintext %v, want %q true", c.Node.Key, c.Node.Plaintext, want)
	}
	kp, created, err := c.LoadKey()
	if err != nil || !created || kp.Public.IsZero() {
		t.Fatalf("first LoadKey: created %v err %v", created, err)
	}
	st, err := os.Stat(c.Node.Key)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	again, created, err := c.LoadKey()
	if err != nil || created || again != kp {
		t.Fatalf("second LoadKey: created %v err %v, same key %v", created, err, again == kp)
	}
	// the existing, good key file passes validation
	if _, err := Load(filepath.Join(dir, "set.yaml")); err != nil {
		t.Fatalf("with the key file present: %v", err)
	}
	abs := filepath.Join(t.TempDir(), "abs.key")
	c, err = Parse(filepath.Join(dir, "abs.yaml"), []byte("node: {key: "+abs+"}\n"))
	if err != nil || c.Node.Key != abs {
		t.Fatalf("absolute key path: %q, %v", c.Node.Key, err)
	}
}

// TestNodeKeyErrors: bad node.key and node.plaintext values, misplaced
// keys and bad key files are reported with positions and hints.
func TestNodeKeyErrors(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.key")
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := secure.WriteKeyFile(loose, kp); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.key")
	if err := os.WriteFile(junk, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type want struct {
		line, col int
		msg, hint string
		sentinel  error
	}
	cases := []struct {
		name, yaml string
		want       want
	}{
		{"empty key", "node:\n  key: \"\"\n", want{2, 8, "node.key: must not be empty", "", nil}},
		{"key not a string", "node:\n  key: [a]\n", want{2, 8, "node.key: want a string", "", nil}},
		{"plaintext not bool", "node:\n  plaintext: maybe\n", want{2, 14, "node.plaintext: want a boolean", "true or false", nil}},
		{"top-level key", "key: x.key\n", want{1, 1, `unknown key "key"`, "key belongs under node:", nil}},
		{"top-level plaintext", "plaintext: true\n", want{1, 1, `unknown key "plaintext"`, "plaintext belongs under node:", nil}},
		{"key is a directory", "node:\n  key: " + dir + "\n", want{2, 8, "is not a regular file", "swarmhost key generate", nil}},
		{"junk key file", "node:\n  key: junk.key\n", want{2, 8, "not a dwebswarm key file", "swarmhost key generate PATH", secure.ErrBadKey}},
	}
	if runtime.GOOS != "windows" {
		cases = append(cases, struct {
			name, yaml string
			want       want
		}{"loose key file", "node:\n  key: loose.key\n", want{2, 8, "has mode 0644: group and others may access it; chmod 600 " + loose, "private to its owner", secure.ErrBadKey}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(tc.yaml))
			errs := Errors(err)
			if len(errs) != 1 {
				t.Fatalf("want 1 error, got %v", err)
			}
			e := errs[0]
			if e.Line != tc.want.line || e.Column != tc.want.col || !strings.Contains(e.Msg, tc.want.msg) || !strings.Contains(e.Hint, tc.want.hint) {
				t.Errorf("got %v; want %d:%d %q (%q)", e, tc.want.line, tc.want.col, tc.want.msg, tc.want.hint)
			}
			if tc.want.sentinel != nil && !errors.Is(e, tc.want.sentinel) {
				t.Errorf("%v does not wrap %v", e, tc.want.sentinel)
			}
		})
	}
	// the default key file beside the config is checked too, at 1:1
	if err := os.Rename(junk, filepath.Join(dir, DefaultKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err = Parse(filepath.Join(dir, "c.yaml"), []byte("node: {}\n"))
	if errs := Errors(err); len(errs) != 1 || errs[0].Line != 1 || errs[0].Column != 1 || !strings.Contains(errs[0].Msg, "default node.key beside the config file") {
		t.Errorf("default key file: %v", err)
	}
	// LoadKey refuses a loose key file naming chmod
	if runtime.GOOS != "windows" {
		c := Default()
		c.Node.Key = loose
		if _, _, err := c.LoadKey(); !errors.Is(err, secure.ErrBadKey) || !strings.Contains(err.Error(), "chmod 600 "+loose) {
			t.Errorf("LoadKey of a loose file: %v", err)
		}
	}
}

// TestDiffKeyNeedsRestart: a changed key path or mode is a node change,
// reported as needing a restart.
func TestDiffKeyNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	a, err := Parse(filepath.Join(dir, "c.yaml"), []byte("node: {key: a.key}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"node: {key: b.key}\n", "node: {key: a.key, plaintext: true}\n"} {
		b, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if ch := Diff(a, b); !reflect.DeepEqual(ch.Restart, []string{"node"}) {
			t.Errorf("%q: restart %v, want [node]", src, ch.Restart)
		}
	}
	same, _ := Parse(filepath.Join(dir, "c.yaml"), []byte("node: {key: ./a.key}\n"))
	if ch := Diff(a, same); !ch.Empty() {
		t.Errorf("the same key path spelt differently: %+v", ch)
	}
}

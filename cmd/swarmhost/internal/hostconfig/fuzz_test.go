package hostconfig

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and every error it returns carries a
// position in the named file.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"", "node: {}\n", "node:\n  port: 1\n bad: [\n", "a: &a [*a]\n", "node: &n\n  queue: *n\n",
		"topics:\n  - topic: x\n  - topic: x\n", "services:\n  - {name: a, topic: t, serve: 127.0.0.1:80, connect: :1}\n",
		"transports: []\n", "discoveries: [{name: dht, options: {roundMin: 2m, roundMax: 1m}}]\n",
		"validators: [{plugin: {path: /nonexistent, sha256: zz}}]\n", "---\n---\n", "\t", "node: !!binary aGk=\n",
		"x: &x {a: *x}\nnode: *x\n", "node:\n  <<: {port: 1}\n", "{[1]: 2}\n",
		"services:\n  - {name: a, topic: t, serve: 127.0.0.1:80, allow: [pca8paxemymmkofpghu98yew4e35mcmrntf4bkt3xdfokiu5bcro, x]}\n",
		"services:\n  - {name: a, topic: t, connect: 127.0.0.1:80, serverKey: [1]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			_ = c.NodeOptions()
			_ = Diff(c, c)
			return
		}
		errs := Errors(err)
		if len(errs) == 0 {
			t.Fatalf("error without positions: %v", err)
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Column < 1 || e.Err == nil {
				t.Fatalf("bad error %#v", e)
			}
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml:") {
				t.Fatalf("line %q lacks a position", line)
			}
		}
	})
}

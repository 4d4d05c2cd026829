package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("node: {host: 127.0.0.1}\ntopics: [{topic: t, announce: true}]\n"), 0o644)
	os.WriteFile(bad, []byte("node:\n  maxpeers: 3\nservices:\n  - {name: a, topic: t, serve: \"127.0.0.1:80\", connect: \"127.0.0.1:81\"}\n"), 0o644)

	code, out, errOut := runCmd(ctx, strings.NewReader(""), "config", "check", good)
	if code != 0 || out != good+": ok\n" {
		t.Errorf("good: exit %d, out %q, err %q", code, out, errOut)
	}
	code, _, errOut = runCmd(ctx, strings.NewReader(""), "config", "check", "internal/hostconfig/testdata/example.yaml")
	if code != 0 {
		t.Errorf("example: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCmd(ctx, strings.NewReader(""), "config", "check", bad)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || out != "" || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], bad+`:2:3: node: unknown key "maxpeers" (did you mean "maxPeers"?)`) ||
		!strings.HasPrefix(lines[1], bad+":4:57: services[0]: both serve and connect (") {
		t.Errorf("bad: exit %d, out %q, err:\n%s", code, out, errOut)
	}
	code, _, errOut = runCmd(ctx, strings.NewReader(""), "config", "check", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing: exit %d, err %q", code, errOut)
	}
	for _, args := range [][]string{{"config"}, {"config", "check"}, {"config", "check", good, bad}, {"config", "lint", good}, {"config", "check", "--nope", good}} {
		if code, _, _ := runCmd(ctx, strings.NewReader(""), args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCmd(ctx, strings.NewReader(""), "config", "--help"); code != 0 || !strings.Contains(out, "config check FILE") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}

// TestConfigCheckServiceKeys: config check reports bad service keys at
// their file:line:col, in the config and in an allow file.
func TestConfigCheckServiceKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	keys := filepath.Join(dir, "allowed.keys")
	if err := os.WriteFile(keys, []byte("# laptops\nnot-a-key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("services:\n  - name: web\n    topic: w\n    serve: 127.0.0.1:80\n    allow: [abc]\n    allowFile: allowed.keys\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "config", "check", cfg)
	if code != 1 || !strings.Contains(errOut, cfg+":5:13: services[0].allow[0]: bad key: 3 characters") || !strings.Contains(errOut, keys+":2:1: bad key: 9 characters") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

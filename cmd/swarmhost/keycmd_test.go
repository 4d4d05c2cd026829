package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// TestKeyCommand: "swarmhost key --file" creates the key file (0600, said
// on stderr) and prints a key secure.ParsePublicKey reads; a second run
// reuses it; "key generate" refuses an existing file; a loose file is
// refused naming chmod.
func TestKeyCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "my.key")
	code, out, errOut := runCmd(ctx, strings.NewReader(""), "key", "--file", path)
	if code != 0 || !strings.Contains(errOut, "created key file "+path) {
		t.Fatalf("first: exit %d, out %q, err %q", code, out, errOut)
	}
	k, err := secure.ParsePublicKey(out)
	if err != nil || out != k.String()+"\n" {
		t.Fatalf("output %q: %v", out, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	if kp, err := secure.ReadKeyFile(path); err != nil || kp.Public != k {
		t.Fatalf("key file holds %v (%v), printed %v", kp.Public, err, k)
	}
	code, out2, errOut := runCmd(ctx, strings.NewReader(""), "key", "--file", path)
	if code != 0 || out2 != out || errOut != "" {
		t.Fatalf("second: exit %d, out %q (first %q), err %q", code, out2, out, errOut)
	}

	gen := filepath.Join(dir, "gen.key")
	code, out, errOut = runCmd(ctx, strings.NewReader(""), "key", "generate", gen)
	if code != 0 || !strings.Contains(errOut, "wrote key file "+gen) {
		t.Fatalf("generate: exit %d: %s", code, errOut)
	}
	if k, err := secure.ParsePublicKey(out); err != nil {
		t.Fatalf("generate output %q: %v", out, err)
	} else if kp, err := secure.ReadKeyFile(gen); err != nil || kp.Public != k {
		t.Fatalf("generated file: %v, %v", kp.Public, err)
	}
	if code, _, errOut := runCmd(ctx, strings.NewReader(""), "key", "generate", gen); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("generate over an existing file: exit %d: %s", code, errOut)
	}

	// the daemon's key: node.key of the config, beside it by default
	cfg := filepath.Join(dir, "swarmhost.yaml")
	if err := os.WriteFile(cfg, []byte("node: {host: 127.0.0.1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(ctx, strings.NewReader(""), "key", "--config", cfg)
	if code != 0 || !strings.Contains(errOut, filepath.Join(dir, "node.key")) {
		t.Fatalf("--config: exit %d: %s", code, errOut)
	}
	if _, err := secure.ParsePublicKey(out); err != nil {
		t.Fatalf("--config output %q: %v", out, err)
	}

	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := runCmd(ctx, strings.NewReader(""), "key", "--file", path); code != 1 || !strings.Contains(errOut, "chmod 600 "+path) {
			t.Errorf("loose key file: exit %d: %s", code, errOut)
		}
		// pipe --key refuses it too, before any network
		if code, _, errOut := runCmd(ctx, strings.NewReader(""), "pipe", "--key", path, "--host", "127.0.0.1", "t"); code != 2 || !strings.Contains(errOut, "chmod 600 "+path) {
			t.Errorf("pipe --key loose: exit %d: %s", code, errOut)
		}
	}
	for _, args := range [][]string{{"key", "show"}, {"key", "generate"}, {"key", "generate", "a", "b"}, {"key", "--file", "a", "--config", "b"}, {"key", "--nope"}} {
		if code, _, _ := runCmd(ctx, strings.NewReader(""), args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := runCmd(ctx, strings.NewReader(""), "key", "-h"); code != 0 || !strings.Contains(errOut, "key generate PATH") {
		t.Errorf("help: exit %d: %s", code, errOut)
	}
}

// TestConfigCheckKeyFile: config check reports a key file others may read
// at node.key's position, naming chmod.
func TestConfigCheckKeyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Log("no Unix modes on Windows: checked by the mode-free cases")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "k.key")
	kp, _ := secure.GenerateKeyPair()
	if err := secure.WriteKeyFile(key, kp); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("node:\n  key: k.key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "config", "check", cfg); code != 0 || out != cfg+": ok\n" {
		t.Fatalf("good key: exit %d %q %s", code, out, errOut)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "config", "check", cfg)
	if code != 1 || !strings.HasPrefix(errOut, cfg+":2:8: node.key: ") || !strings.Contains(errOut, "chmod 600 "+key) {
		t.Errorf("loose key: exit %d: %s", code, errOut)
	}
}

// TestDaemonKey: run creates node.key beside the config (0600) on first
// start, logs its public key, reports it in the status JSON, reuses it on
// the next start, and refuses to start on a key file others may read.
func TestDaemonKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "swarmhost.yaml")
	if err := os.WriteFile(path, []byte("node: {host: 127.0.0.1, preferredPort: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "node.key")
	start := func() (secure.PublicKey, string) {
		t.Helper()
		var errOut syncBuffer
		d, err := startDaemon(context.Background(), path, "127.0.0.1:0", stdio{in: strings.NewReader(""), out: &errOut, err: &errOut})
		if err != nil {
			t.Fatalf("start: %v\n%s", err, errOut.String())
		}
		defer func() {
			if err := d.shutdown(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, raw, err := observe.Fetch(ctx, d.obs.Addr())
		if err != nil {
			t.Fatal(err)
		}
		k, err := secure.ParsePublicKey(st.PublicKey)
		if err != nil || !strings.Contains(string(raw), `"public_key": "`+k.String()+`"`) || st.Plaintext {
			t.Fatalf("status public_key %q (%v), plaintext %v:\n%s", st.PublicKey, err, st.Plaintext, raw)
		}
		if !strings.Contains(errOut.String(), "public_key="+k.String()) {
			t.Errorf("log lacks the public key:\n%s", errOut.String())
		}
		return k, errOut.String()
	}
	k1, log1 := start()
	if !strings.Contains(log1, "created key file") {
		t.Errorf("first start does not say it created the key file:\n%s", log1)
	}
	kp, err := secure.ReadKeyFile(keyPath)
	if err != nil || kp.Public != k1 {
		t.Fatalf("node.key beside the config: %v, %v (status said %v)", kp.Public, err, k1)
	}
	if st, _ := os.Stat(keyPath); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("node.key mode %04o", st.Mode().Perm())
	}
	k2, log2 := start()
	if k2 != k1 || strings.Contains(log2, "created key file") {
		t.Errorf("second start: key %v (first %v):\n%s", k2, k1, log2)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "run", "--config", path)
	if code != 1 || !strings.Contains(errOut, "chmod 600 "+keyPath) {
		t.Errorf("loose node.key: exit %d: %s", code, errOut)
	}
}

// TestPipeKeyAndPlaintextFlags: pipe logs its public key at start: the
// --key file's, else a new one per run.
func TestPipeKeyAndPlaintextFlags(t *testing.T) {
	ctx := context.Background()
	key := filepath.Join(t.TempDir(), "pipe.key")
	code, _, errOut := runCmd(ctx, strings.NewReader(""), "pipe", "--key", key, "--plaintext", "--host", "127.0.0.1", "--timeout", "50ms", "lonely key")
	if code != 1 || !strings.Contains(errOut, "created key file "+key) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	kp, err := secure.ReadKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "public_key="+kp.Public.String()) || !strings.Contains(errOut, "mode=plaintext") {
		t.Errorf("stderr lacks the key or mode:\n%s", errOut)
	}
	_, _, e1 := runCmd(ctx, strings.NewReader(""), "pipe", "--host", "127.0.0.1", "--timeout", "50ms", "lonely key")
	_, _, e2 := runCmd(ctx, strings.NewReader(""), "pipe", "--host", "127.0.0.1", "--timeout", "50ms", "lonely key")
	k1, k2 := logged(t, e1, "public_key"), logged(t, e2, "public_key")
	if k1 == k2 || k1 == kp.Public || !strings.Contains(e1, "mode=encrypted") {
		t.Errorf("ephemeral keys %v %v (file %v):\n%s", k1, k2, kp.Public, e1)
	}
}

// logged parses the public key logged as attr in slog text output.
func logged(t *testing.T, out, attr string) secure.PublicKey {
	t.Helper()
	_, rest, ok := strings.Cut(out, attr+"=")
	if !ok {
		t.Fatalf("no %s in:\n%s", attr, out)
	}
	v, _, _ := strings.Cut(rest, " ")
	k, err := secure.ParsePublicKey(strings.TrimSpace(v))
	if err != nil {
		t.Fatalf("%s=%q: %v", attr, v, err)
	}
	return k
}

// TestDemoPrintsKeys: the demo prints each swarm's ephemeral key, and
// takes --plaintext.
func TestDemoPrintsKeys(t *testing.T) {
	code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "demo", "--plaintext")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, name := range []string{"alice", "bob"} {
		_, rest, ok := strings.Cut(out, name+"'s public key ")
		if !ok {
			t.Fatalf("no %s key:\n%s", name, out)
		}
		k, _, _ := strings.Cut(rest, " ")
		if _, err := secure.ParsePublicKey(k); err != nil || !strings.Contains(rest, "(ephemeral, plaintext)") {
			t.Errorf("%s key %q: %v", name, k, err)
		}
	}
}

// TestCompletionCompletesKeyGenerate: every shell's script offers
// "generate" after "key" (bash checked by running it).
func TestCompletionCompletesKeyGenerate(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		_, out, _ := runCmd(context.Background(), strings.NewReader(""), "completion", sh)
		if !strings.Contains(out, "generate") || !strings.Contains(out, " key ") {
			t.Errorf("%s script lacks key generate:\n%s", sh, out)
		}
		if sh != "bash" {
			continue
		}
		script := out + `
COMP_WORDS=(swarmhost key gen); COMP_CWORD=2; _swarmhost; printf '%s\n' "${COMPREPLY[@]}"
COMP_WORDS=(swarmhost key rot); COMP_CWORD=2; _swarmhost; printf '%s\n' "${COMPREPLY[@]}"
`
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = t.TempDir()
		b, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != "generate\nrotate" {
			t.Errorf("bash completes %q (%v), want generate, then rotate", b, err)
		}
	}
}

// TestKeyRotate: "key rotate" writes a new key at the same path (0600),
// keeps the old file beside it under a name given on stderr, prints the
// new key and says what to update; a missing or loose key file is refused.
func TestKeyRotate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	old, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := secure.WriteKeyFile(path, old); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(ctx, strings.NewReader(""), "key", "rotate", "--file", path)
	if code != 0 {
		t.Fatalf("rotate: exit %d: %s", code, errOut)
	}
	k, err := secure.ParsePublicKey(out)
	if err != nil || k == old.Public {
		t.Fatalf("rotate printed %q (%v), old key %s", out, err, old.Public)
	}
	if kp, err := secure.ReadKeyFile(path); err != nil || kp.Public != k {
		t.Fatalf("%s holds %s (%v), want the new key %s", path, kp.Public, err, k)
	}
	kept := path + ".old-" + old.Public.Short()
	if kp, err := secure.ReadKeyFile(kept); err != nil || kp.Public != old.Public {
		t.Fatalf("old key file %s: %s, %v", kept, kp.Public, err)
	}
	for _, want := range []string{kept, old.Public.String(), k.String(), "allow", "serverKey"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("rotate's message lacks %q:\n%s", want, errOut)
		}
	}
	if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %04o", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".new"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if code, _, errOut := runCmd(ctx, strings.NewReader(""), "key", "rotate", "--file", filepath.Join(dir, "none.key")); code != 1 || !strings.Contains(errOut, "none.key") {
		t.Errorf("rotate of a missing file: exit %d: %s", code, errOut)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCmd(ctx, strings.NewReader(""), "key", "rotate", "--file", path)
		if code != 1 || !strings.Contains(errOut, path+" has mode 0644") || !strings.Contains(errOut, "chmod 600 "+path) {
			t.Errorf("rotate of a loose key file: exit %d: %s", code, errOut)
		}
	}
}

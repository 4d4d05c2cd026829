package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// pipe --peer-key reaches a pipe by its key: the announcing pipe names no
// topic (findable by key only) and the looking one knows only the key and
// an address to try.
func TestPipeReachesAPeerByKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "server.key")
	kp, _, err := secure.LoadOrCreateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	annc := make(chan result, 1)
	go func() {
		c, o, e := runCmd(ctx, strings.NewReader("from the server"), "pipe", "--announce", "--key", keyFile, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--timeout", "15s")
		annc <- result{c, o, e}
	}()
	// the looker retries the server's port until it listens (requeue)
	c, out, errOut := runCmd(ctx, strings.NewReader("from the laptop"), "pipe", "--peer-key", kp.Public.String(), "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--peer", "127.0.0.1:"+strconv.Itoa(port), "--timeout", "15s")
	if c != 0 || out != "from the server" {
		t.Fatalf("looker exit %d out %q: %s", c, out, errOut)
	}
	if !strings.Contains(errOut, "remote_key="+kp.Public.String()) {
		t.Errorf("the looker did not log the server's key:\n%s", errOut)
	}
	a := <-annc
	if a.code != 0 || a.out != "from the laptop" {
		t.Fatalf("server exit %d out %q: %s", a.code, a.out, a.err)
	}
}

func TestPipePeerKeyBadInput(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "own.key")
	kp, _, err := secure.LoadOrCreateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	other := kp.Public
	other[0] ^= 1
	cases := map[string][]string{
		"bad key":       {"pipe", "--peer-key", "not-a-key"},
		"own key":       {"pipe", "--key", keyFile, "--peer-key", kp.Public.String()},
		"plaintext":     {"pipe", "--plaintext", "--peer-key", other.String()},
		"two topics":    {"pipe", "--peer-key", other.String(), "a", "b"},
		"nothing given": {"pipe", "--timeout", "1s"},
	}
	for name, args := range cases {
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), args...)
		if code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
}

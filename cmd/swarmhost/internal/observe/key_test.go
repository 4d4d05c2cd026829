package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// TestStatusHasPublicKey: /status carries the public key it was given (in
// z-base-32, parseable by secure.ParsePublicKey) and the plaintext mode;
// the table shows both; with no key the field is absent.
func TestStatusHasPublicKey(t *testing.T) {
	ctx := context.Background()
	sw, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true, PublicKey: kp.Public, Plaintext: true})
	_, body := get(t, "http://"+o.Addr()+observe.StatusPath)
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	s, _ := raw["public_key"].(string)
	if k, err := secure.ParsePublicKey(s); err != nil || k != kp.Public {
		t.Fatalf("public_key %q: %v (want %s)\n%s", s, err, kp.Public, body)
	}
	if raw["plaintext"] != true {
		t.Errorf("plaintext = %v, want true", raw["plaintext"])
	}
	var b bytes.Buffer
	if err := observe.Render(&b, o.Status(ctx)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "public key "+kp.Public.String()+" (plaintext)") {
		t.Errorf("table lacks the key:\n%s", b.String())
	}

	o2 := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	_, body = get(t, "http://"+o2.Addr()+observe.StatusPath)
	if bytes.Contains(body, []byte("public_key")) || !bytes.Contains(body, []byte(`"plaintext": false`)) {
		t.Errorf("no key given: %s", body)
	}
}

package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// TestStatusConnectionKeysAndRefusals: every session is listed with the
// key its remote proved, in JSON and in the table; the services'
// refusals are in /status (non-zero only), in the table and in /metrics.
func TestStatusConnectionKeysAndRefusals(t *testing.T) {
	ctx := context.Background()
	ka, kb := mustKey(t), mustKey(t)
	a, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithKeyPair(ka), framework.WithAllowNoTopic(true))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := dwebswarm.New(ctx, framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0), framework.WithKeyPair(kb), framework.WithAllowNoTopic(true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	o := startObserver(t, a, observe.Config{NoRuntimeMetrics: true, PublicKey: ka.Public, ServiceRefusals: func() []observe.ServiceRefusal {
		return []observe.ServiceRefusal{{Service: "web", Reason: "key_not_allowed", Count: 3}, {Service: "web", Reason: "no_key", Count: 0}}
	}})
	sub := a.Subscribe()
	defer sub.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := b.Connect(cctx, framework.Peer{Host: "127.0.0.1", Port: a.Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for opened := false; !opened; { // a's side, once its handshake ended
		select {
		case ev := <-sub.C():
			_, opened = ev.(*framework.ConnectionEvent)
		case <-cctx.Done():
			t.Fatal("a saw no connection")
		}
	}
	st := o.Status(ctx)
	if len(st.Connections) != 1 {
		t.Fatalf("connections %+v, want 1", st.Connections)
	}
	if got := st.Connections[0].RemoteKey; got != kb.Public.String() {
		t.Errorf("remote_key %q, want %s", got, kb.Public)
	}
	if len(st.Refusals) != 1 || st.Refusals[0] != (observe.ServiceRefusal{Service: "web", Reason: "key_not_allowed", Count: 3}) {
		t.Errorf("refusals %+v", st.Refusals)
	}
	var tb bytes.Buffer
	if err := observe.Render(&tb, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tb.String(), kb.Public.String()) || !strings.Contains(tb.String(), "REFUSED BY KEY") {
		t.Errorf("table lacks the key or the refusals:\n%s", tb.String())
	}
	_, body := get(t, "http://"+o.Addr()+observe.MetricsPath)
	if !bytes.Contains(body, []byte(`dwebswarm_service_refused_total{reason="key_not_allowed",service="web"} 3`)) {
		t.Errorf("metrics lack the refusals:\n%s", body)
	}
}

func mustKey(t *testing.T) secure.KeyPair {
	t.Helper()
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

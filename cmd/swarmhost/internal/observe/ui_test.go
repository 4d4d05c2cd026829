package observe_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/jsonschema"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// The page and its assets come from the binary with a strict CSP; nothing
// on the page's paths accepts a write.
func TestStatusPageServedReadOnlyWithCSP(t *testing.T) {
	sw, err := dwebswarm.New(context.Background(), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	o := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true})
	base := "http://" + o.Addr()
	for _, c := range []struct{ path, ctype, body string }{
		{observe.PagePath, "text/html", `src="/ui/app.js"`},
		{"/ui/app.js", "javascript", "fetch(\"/status\""},
		{"/ui/style.css", "text/css", "--in"},
		{observe.SchemaPath, "application/schema+json", `"$defs"`},
	} {
		resp, body := get(t, base+c.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(string(body), c.body) {
			t.Errorf("GET %s: %s %q, body lacks %q", c.path, resp.Status, resp.Header.Get("Content-Type"), c.body)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != observe.PageCSP || !strings.HasPrefix(got, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", c.path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
	}
	if resp, _ := get(t, base+"/ui/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js: %s", resp.Status)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, p := range []string{observe.PagePath, "/ui/app.js", observe.SchemaPath, observe.StatusPath} {
			req, _ := http.NewRequest(m, base+p, strings.NewReader("x"))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s, want 405", m, p, resp.Status)
			}
		}
	}
}

// The status document of an observer with a topic, a connection, plugins,
// a DHT and a byte counter matches the committed schema (status.schema.json),
// and the schema refuses a field it does not list.
func TestStatusMatchesSchema(t *testing.T) {
	p := newPair(t)
	p.tracker.Add("transport", "tcp", "")
	p.tracker.Add("validator", "cidr", "/usr/lib/swarmhost/cidr")
	if err := p.clientObs.AddByteCounter("web", &fakeCounter{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*observe.Server{p.clientObs, p.serverObs} {
		_, body := get(t, "http://"+o.Addr()+observe.StatusPath)
		if err := jsonschema.Validate(observe.StatusSchema, body); err != nil {
			t.Errorf("%s: %v\n%s", o.Addr(), err, body)
		}
		if !strings.Contains(string(body), `"connections": [`+"\n") {
			t.Errorf("no connection in the document checked:\n%s", body)
		}
	}
	// a relaying daemon's document (Config.Relay) too; without the hook
	// there is no relay object
	sw, err := dwebswarm.New(context.Background(), framework.WithListenHost("127.0.0.1"), framework.WithPreferredPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	ro := startObserver(t, sw, observe.Config{NoRuntimeMetrics: true, Relay: func() relay.Stats {
		return relay.Stats{Clients: 2, Sessions: 1, SessionsTotal: 7, BytesRelayed: 1 << 20, Announced: 3, LimitSessionsPerClient: 4}
	}})
	_, body := get(t, "http://"+ro.Addr()+observe.StatusPath)
	if err := jsonschema.Validate(observe.StatusSchema, body); err != nil {
		t.Errorf("relay document: %v\n%s", err, body)
	}
	var doc observe.Status
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if r := doc.Relay; r == nil || r.SessionsTotal != 7 || r.BytesRelayed != 1<<20 || r.LimitHits.SessionsPerClient != 4 {
		t.Errorf("relay status %+v", r)
	}
	_, body = get(t, "http://"+p.serverObs.Addr()+observe.StatusPath)
	if strings.Contains(string(body), `"relay"`) {
		t.Errorf("relay object without the hook:\n%s", body)
	}
	bad := `{"schema":1,"time":"2026-01-01T00:00:00Z","uptime_seconds":1,"port":1,"plaintext":false,"topics":[],"connections":[],` +
		`"queue":{"topics":0,"known":0,"queued":0,"dialing":0,"clients":0,"servers":0,"banned":0,"unresponsive":0,"subscriptions":0},` +
		`"connectivity":{"bound":true,"bootstrapped":false,"public_addrs":[],"reporters":0,"consistent":false,"holepunchable":false},` +
		`"plugins":[],"traffic":[],"surprise":1}`
	if err := jsonschema.Validate(observe.StatusSchema, []byte(bad)); err == nil || !strings.Contains(err.Error(), "/surprise") {
		t.Errorf("unknown field accepted: %v", err)
	}
	minimal := strings.Replace(bad, `,"surprise":1`, "", 1)
	if err := jsonschema.Validate(observe.StatusSchema, []byte(minimal)); err != nil {
		t.Errorf("minimal document refused: %v", err)
	}
	// the fields of authorised services (remote keys, refusals by key)
	withKeys := strings.Replace(strings.Replace(minimal, `"connections":[]`,
		`"connections":[{"remote":"127.0.0.1:1","remote_key":"ybndrfg8ejkmcpqxot1uwisza345h769ybndrfg8ejkmcpqxot1u","local":"127.0.0.1:2","type":"tcp","client":false,"topics":[],"age_seconds":1,"path":"relayed"}]`, 1),
		`"traffic":[]`, `"traffic":[],"refusals":[{"service":"web","reason":"key_not_allowed","count":2}]`, 1)
	if err := jsonschema.Validate(observe.StatusSchema, []byte(withKeys)); err != nil {
		t.Errorf("document with remote keys and refusals refused: %v", err)
	}
}

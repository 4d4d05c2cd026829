package hostconfig

import (
	"reflect"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// The relay section, relays and relayWhen decode to their values; left
// out, the relay is off with swarmhost relay's default limits.
func TestRelayValues(t *testing.T) {
	c, err := Parse("c.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Relay.Enabled || c.Relay.Limits != relay.DefaultLimits() || len(c.Relays) != 0 || c.RelayWhen != "unpunchable" {
		t.Fatalf("defaults: %+v %v %q", c.Relay, c.Relays, c.RelayWhen)
	}
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	key := kp.Public.String()
	c, err = Parse("c.yaml", []byte(`
relay:
  enabled: true
  listen: 127.0.0.1:7000
  maxClients: 5
  maxSessions: 6
  maxSessionsPerClient: 2
  maxBytesPerClient: -1
  maxSessionDuration: 10m
  maxInfohashesPerClient: 3
relays: [`+key+`@127.0.0.1:7001, "127.0.0.1:7002"]
relayWhen: always
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Relay{Enabled: true, Listen: "127.0.0.1:7000", Limits: relay.Limits{Clients: 5, Sessions: 6, SessionsPerClient: 2,
		BytesPerClient: -1, SessionDuration: 10 * time.Minute, InfohashesPerClient: 3}}
	if c.Relay != want {
		t.Errorf("relay %+v, want %+v", c.Relay, want)
	}
	if !reflect.DeepEqual(c.Relays, []string{key + "@127.0.0.1:7001", "127.0.0.1:7002"}) || c.RelayWhen != "always" {
		t.Errorf("relays %v when %q", c.Relays, c.RelayWhen)
	}
	// limits left out keep their defaults
	c, err = Parse("c.yaml", []byte("relay: {enabled: true, maxClients: 9}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := relay.DefaultLimits()
	d.Clients = 9
	if c.Relay.Limits != d || c.Relay.Listen != "" {
		t.Errorf("partial limits %+v", c.Relay)
	}
}

// Bad relay settings are reported where they are, with hints.
func TestRelayErrors(t *testing.T) {
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	key := kp.Public.String()
	cases := []struct {
		name      string
		yaml      string
		line, col int
		msg, hint string
		sentinel  error
	}{
		{"unknown relay key", "relay:\n  enable: true\n", 2, 3, `relay: unknown key "enable"`, `did you mean "enabled"?`, framework.ErrInvalidOption},
		{"enabled not bool", "relay:\n  enabled: yes\n", 2, 12, "want a boolean", "true or false", nil},
		{"zero limit", "relay:\n  enabled: true\n  maxSessions: 0\n", 3, 16, "relay.maxSessions: 0 is out of range", "at least 1", nil},
		{"negative limit", "relay:\n  enabled: true\n  maxClients: -1\n", 3, 15, "relay.maxClients: -1 is out of range", "at least 1", nil},
		{"zero bytes", "relay:\n  enabled: true\n  maxBytesPerClient: 0\n", 3, 22, "relay.maxBytesPerClient: 0", "-1 means no limit", framework.ErrInvalidOption},
		{"bare duration", "relay:\n  enabled: true\n  maxSessionDuration: 60\n", 3, 23, "60 has no unit", "", nil},
		{"bad listen", "relay:\n  enabled: true\n  listen: 127.0.0.1\n", 3, 11, `bad address "127.0.0.1"`, "HOST:PORT", framework.ErrInvalidPeer},
		{"listen on node.port", "node: {host: 127.0.0.1, port: 7000}\nrelay:\n  enabled: true\n  listen: 127.0.0.1:7000\n", 4, 11, "relay.listen: port 7000 is node.port", "another port", framework.ErrInvalidOption},
		{"listen while off", "relay:\n  listen: 127.0.0.1:7000\n", 2, 11, "relay.listen: the relay is not enabled", "enabled: true", framework.ErrInvalidOption},
		{"relays not a list", "relays: 127.0.0.1:7000\n", 1, 9, "want a list", "KEY@", nil},
		{"relay bad key", "relays:\n  - nokey@127.0.0.1:7000\n", 2, 5, "relays[0]: ", "public key", secure.ErrBadKey},
		{"relay bad port", "relays:\n  - " + key + "@127.0.0.1:0\n", 2, 5 + len(key) + 1, `relays[0]: bad port "0"`, "1-65535", framework.ErrInvalidPeer},
		{"relay bad port quoted", "relays:\n  - \"" + key + "@127.0.0.1:x\"\n", 2, 5 + len(key) + 2, `relays[0]: bad port "x"`, "", framework.ErrInvalidPeer},
		{"relay no host", "relays: [\":7000\"]\n", 1, 10, `has no host`, "", framework.ErrInvalidPeer},
		{"duplicate relay", "relays:\n  - 127.0.0.1:7000\n  - " + key + "@127.0.0.1:7000\n", 3, 5, "duplicate relay", "line 2", framework.ErrInvalidPeer},
		{"relayWhen word", "relays: [127.0.0.1:7000]\nrelayWhen: unpunched\n", 2, 12, `relayWhen: unknown value "unpunched"`, "always, unpunchable", framework.ErrInvalidOption},
		{"relayWhen without relays", "relayWhen: always\n", 1, 1, "relayWhen: no relays", "relays: [KEY@HOST:PORT]", framework.ErrInvalidOption},
		{"relays misplaced", "relay:\n  relays: [127.0.0.1:7000]\n", 2, 3, `unknown key "relays"`, "top-level", nil},
		{"relay_when", "relay_when: always\n", 1, 1, `unknown key "relay_when"`, `did you mean "relayWhen"?`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrorAt(t, tc.yaml, tc.line, tc.col, tc.msg, tc.hint, tc.sentinel)
		})
	}
}

// A change to relay, relays or relayWhen takes a restart.
func TestDiffRelayNeedsRestart(t *testing.T) {
	parse := func(s string) *Config {
		t.Helper()
		c, err := Parse("c.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := parse("relay: {enabled: true}\nrelays: [127.0.0.1:7000]\n")
	for _, s := range []string{
		"relay: {enabled: false}\nrelays: [127.0.0.1:7000]\n",
		"relay: {enabled: true, maxSessions: 3}\nrelays: [127.0.0.1:7000]\n",
		"relay: {enabled: true}\nrelays: [127.0.0.1:7001]\n",
		"relay: {enabled: true}\nrelays: [127.0.0.1:7000]\nrelayWhen: always\n",
	} {
		if ch := Diff(base, parse(s)); !reflect.DeepEqual(ch.Restart, []string{"relay"}) {
			t.Errorf("%q: restart %v, want [relay]", s, ch.Restart)
		}
	}
	if ch := Diff(base, parse("relay: {enabled: true}\nrelays: [127.0.0.1:7000]\nrelayWhen: unpunchable\n")); !ch.Empty() {
		t.Errorf("default relayWhen spelled out: %+v", ch)
	}
}

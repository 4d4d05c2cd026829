package hostconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// TestErrorPositions: each class of error points at the right line and
// column, with the expected message and hint.
func TestErrorPositions(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "plug")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	hex64 := strings.Repeat("ab", 32)
	cases := []struct {
		name      string
		yaml      string
		line, col int
		msg, hint string
		sentinel  error
	}{
		{"unknown top key", "nodes:\n  port: 1\n", 1, 1, `unknown key "nodes"`, `did you mean "node"?`, framework.ErrInvalidOption},
		{"unknown node key", "node:\n  maxpeers: 3\n", 2, 3, `node: unknown key "maxpeers"`, `did you mean "maxPeers"?`, nil},
		{"snake case key", "node:\n  queue:\n    forget:\n      un_responsive: 1s\n", 4, 7, `unknown key "un_responsive"`, `did you mean "unresponsive"?`, nil},
		{"misplaced key", "bootstrap: [127.0.0.1:1]\n", 1, 1, `unknown key "bootstrap"`, "belongs under node", nil},
		{"dht option moved", "discoveries:\n  - name: dht\n    options:\n      bootstrap: [127.0.0.1:1]\n", 4, 7, `unknown key "bootstrap"`, "node.bootstrap", nil},
		{"duplicate key", "node:\n  port: 1\n  port: 2\n", 3, 3, `duplicate key "port"`, "line 2", nil},
		{"wrong type int", "node:\n  maxPeers: lots\n", 2, 13, "want an integer", "whole number", nil},
		{"quoted int", "node:\n  maxPeers: \"12\"\n", 2, 13, "want an integer", "remove the quotes", nil},
		{"wrong type mapping", "node: [1, 2]\n", 1, 7, "node: want a mapping, got a list", "", nil},
		{"wrong type list", "node:\n  bootstrap: 127.0.0.1:6881\ndiscoveries: [{name: dht}]\n", 2, 14, "want a list", "[127.0.0.1:6881", nil},
		{"wrong type bool", "node:\n  queue:\n    multiplex: yes\n", 3, 16, "want a boolean", "true or false", nil},
		{"bad duration", "node:\n  connectTimeout: 10 seconds\n", 2, 19, `bad duration "10 seconds"`, "10s", nil},
		{"bare number duration", "node:\n  connectTimeout: 10\n", 2, 19, "10 has no unit", "500ms", nil},
		{"negative duration", "node:\n  queue:\n    requeue: [1s, -5s]\n", 3, 19, "requeue[1]: -5s is not positive", "", nil},
		{"never only where allowed", "node:\n  connectTimeout: never\n", 2, 19, "bad duration", "", nil},
		{"out of range maxPeers", "node:\n  maxPeers: 0\n", 2, 13, "node.maxPeers: 0 is out of range", "at least 1", nil},
		{"out of range sockets", "node:\n  maxClientSockets: -2\n", 2, 21, "out of range", "-1 never dials", nil},
		{"out of range port", "node:\n  port: 70000\n", 2, 9, "node.port: 70000 is out of range", "0 to 65535", nil},
		{"ephemeral word", "node:\n  ephemeral: sometimes\ndiscoveries: [{name: dht}]\n", 2, 14, "want true, false or adaptive", "", nil},
		{"bootstrap without dht", "node:\n  bootstrap: [127.0.0.1:6881]\n", 2, 3, "only the dht discovery uses it", "name: dht", nil},
		{"adaptiveAfter not adaptive", "node:\n  ephemeral: true\n  adaptiveAfter: 1m\ndiscoveries: [{name: dht}]\nX: 1\n", 3, 3, "ephemeral is true", "ephemeral: adaptive", nil},
		{"port and preferredPort", "node:\n  port: 4000\n  preferredPort: 4001\n", 3, 3, "both port and preferredPort", "set one", nil},
		{"bad bootstrap address", "node:\n  bootstrap:\n    - 127.0.0.1\ndiscoveries: [{name: dht}]\n", 3, 7, `bad address "127.0.0.1"`, "HOST:PORT", framework.ErrInvalidPeer},
		{"bad port in address", "metrics:\n  listen: 127.0.0.1:0\n", 2, 11, `bad port "0"`, "1-65535", framework.ErrInvalidPeer},
		{"bad host in address", "metrics:\n  listen: \"bad host!:80\"\n", 2, 11, "bad host", "HOST:PORT", framework.ErrInvalidPeer},
		{"empty topic", "topics:\n  - topic: \"\"\n", 2, 12, "empty topic", "SHA-256", framework.ErrInvalidTopic},
		{"truncated hex topic", "topics:\n  - topic: " + hex64[:40] + "\n", 2, 12, "looks like hex but has 40 digits", "64 hex digits", framework.ErrInvalidTopic},
		{"topic with a non-hex letter", "topics:\n  - topic: " + hex64[:63] + "g\n", 2, 12, "character 64", "name:", framework.ErrInvalidTopic},
		{"missing topic", "topics:\n  - announce: true\n", 2, 5, "missing topic", "topic:", framework.ErrInvalidTopic},
		{"topic neither", "topics:\n  - topic: a\n    lookup: false\n", 2, 5, "neither announce nor lookup", "", nil},
		{"duplicate topic", "topics:\n  - topic: " + hex64 + "\n  - topic: " + strings.ToUpper(hex64) + "\n", 3, 5, "duplicate topic", "line 2", framework.ErrInvalidTopic},
		{"topic scalar", "topics:\n  - my-topic\n", 2, 5, "want a mapping with a topic: key", "- topic: my-topic", nil},
		{"both serve and connect", "services:\n  - name: a\n    topic: t\n    serve: 127.0.0.1:80\n    connect: 127.0.0.1:81\n", 5, 14, "both serve and connect", "two services", nil},
		{"neither serve nor connect", "services:\n  - name: a\n    topic: t\n", 2, 5, "neither serve nor connect", "serve: HOST:PORT", nil},
		{"service bad addr", "services:\n  - name: a\n    topic: t\n    serve: localhost\n", 4, 12, "bad address", "HOST:PORT", framework.ErrInvalidPeer},
		{"duplicate service name", "services:\n  - {name: a, topic: t1, serve: 127.0.0.1:80}\n  - {name: a, topic: t2, serve: 127.0.0.1:81}\n", 3, 5, `duplicate name "a"`, "line 2", nil},
		{"duplicate service topic", "services:\n  - {name: a, topic: t1, serve: 127.0.0.1:80}\n  - {name: b, topic: t1, connect: 127.0.0.1:81}\n", 3, 5, `duplicate topic "t1"`, `service "a"`, framework.ErrInvalidTopic},
		{"service topic also a topic", "topics: [{topic: t1}]\nservices:\n  - {name: a, topic: t1, serve: 127.0.0.1:80}\n", 3, 5, "also a plain topic", "remove it from topics", framework.ErrInvalidTopic},
		{"unknown plugin", "transports:\n  - name: tpc\n", 2, 11, `unknown transport "tpc"`, `did you mean "tcp"?`, framework.ErrUnknownPlugin},
		{"plugin in wrong list", "transports:\n  - name: dht\n", 2, 11, `unknown transport "dht"`, "list it under discoveries", framework.ErrUnknownPlugin},
		{"plugin scalar", "transports:\n  - tcp\n", 2, 5, "want a mapping", "- name: tcp", nil},
		{"name and plugin", "transports:\n  - name: tcp\n    plugin: {path: /bin/sh}\n", 3, 13, "both name and plugin", "", nil},
		{"neither name nor plugin", "transports:\n  - options: {}\n", 2, 5, "neither name nor plugin", "tcp, utp", nil},
		{"empty transports", "transports: []\n", 1, 1, "transports: empty", "name: tcp", framework.ErrNoTransport},
		{"duplicate transport", "transports:\n  - name: tcp\n  - name: tcp\n", 3, 11, `duplicate transport "tcp"`, "transports[0]", nil},
		{"plugin option type", "transports:\n  - name: tcp\n    options:\n      keepAlive: 5\n", 4, 18, "has no unit", "", nil},
		{"utp backstop", "transports:\n  - name: utp\n    options:\n      packetSize: 10\n", 4, 7, "PacketSize 10 out of range", "", nil},
		{"static without options", "discoveries:\n  - name: static\n", 2, 5, "static needs options", "peers", nil},
		{"static bad peer", "discoveries:\n  - name: static\n    options:\n      peers:\n        - ok.example:1\n        - :80\n", 6, 11, `":80" has no host`, "HOST:PORT", framework.ErrInvalidPeer},
		{"static peer entry topics", "discoveries:\n  - name: static\n    options:\n      peers:\n        - addr: 10.0.0.1:5\n          topics: [\"\"]\n", 6, 20, "empty topic", "", framework.ErrInvalidTopic},
		{"cidr bad prefix", "validators:\n  - name: cidr\n    options:\n      allow: [10.0.0.0/33]\n", 4, 15, `bad prefix "10.0.0.0/33"`, "10.0.0.0/8", nil},
		{"cidr empty", "validators:\n  - name: cidr\n    options: {}\n", 3, 14, "neither allow nor deny", "", nil},
		{"banlist dir missing", "validators:\n  - name: banlist\n    options: {path: /nonexistent/dir/bans}\n", 3, 21, "directory /nonexistent/dir does not exist", "create the directory", nil},
		{"mdns unknown interface", "discoveries:\n  - name: mdns\n    options: {interfaces: [nosuchif0]}\n", 3, 28, `no interface "nosuchif0"`, "ip link", nil},
		{"dht round order", "discoveries:\n  - name: dht\n    options: {roundMin: 2m, roundMax: 1m}\n", 3, 39, "roundMax: 1m0s < roundMin 2m0s", "", nil},
		{"missing binary", "transports:\n  - plugin:\n      path: " + filepath.Join(dir, "nope") + "\n", 3, 13, "no such file or directory", "build or install", remote.ErrBinaryMissing},
		{"not executable", "transports:\n  - plugin:\n      path: " + noexec + "\n", 3, 13, "is not executable", "chmod +x", remote.ErrBinaryMissing},
		{"binary not on PATH", "transports:\n  - plugin: {path: no-such-plugin-binary-xyz}\n", 2, 20, "not found on $PATH", "", remote.ErrBinaryMissing},
		{"sha256 not hex", "transports:\n  - plugin:\n      path: " + exe + "\n      sha256: abc\n", 4, 15, `"abc" is not a SHA-256`, "64 hex", remote.ErrChecksum},
		{"sha256 mismatch", "transports:\n  - plugin:\n      path: " + exe + "\n      sha256: " + hex64 + "\n", 4, 15, "does not match", "its SHA-256 is", remote.ErrChecksum},
		{"plugin missing path", "validators:\n  - plugin: {args: [a]}\n", 2, 13, "missing path", "path:", remote.ErrBinaryMissing},
		{"plugin options", "transports:\n  - plugin: {path: " + exe + "}\n    options: {a: 1}\n", 3, 14, "options apply to built-ins only", "args", nil},
		{"log level", "log:\n  level: verbose\n", 2, 10, `unknown level "verbose"`, "known levels", nil},
		{"log format", "log:\n  format: jsn\n", 2, 11, `unknown format "jsn"`, `did you mean "json"?`, nil},
		{"yaml syntax", "node:\n  port: 1\n bad: [\n", 2, 1, "invalid YAML", "indentation", nil},
		{"yaml control character", "node:\n  port: 1\n  x: \x01\n", 3, 6, "control characters", "", nil},
		{"yaml bad utf-8", "node:\n  port: 1\n  x: \xff\n", 3, 6, "UTF-8", "", nil},
		{"yaml unknown alias", "node:\n  port: *nope\n", 2, 9, "unknown anchor", "", nil},
		{"yaml bad token", "node:\n  x: @a\n", 2, 6, "cannot start any token", "", nil},
		{"second document", "node: {}\n---\nnode: {}\n", 2, 1, "a second YAML document", "---", nil},
		{"top level scalar", "hello\n", 1, 1, "config: want a mapping", "", nil},
		{"merge key", "base: &b {port: 1}\nnode:\n  <<: *b\n", 1, 1, `unknown key "base"`, "", nil},
		{"alias into node", "node:\n  <<: {port: 1}\n", 2, 3, "merge keys", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.yaml)
			}
			errs := Errors(err)
			for _, e := range errs {
				if e.Line == tc.line && e.Column == tc.col && strings.Contains(e.Msg, tc.msg) {
					if !strings.Contains(e.Hint, tc.hint) {
						t.Errorf("hint %q lacks %q", e.Hint, tc.hint)
					}
					if tc.sentinel != nil && !errors.Is(e, tc.sentinel) {
						t.Errorf("%v does not wrap %v", e, tc.sentinel)
					}
					if !strings.HasPrefix(e.Error(), "c.yaml:") {
						t.Errorf("error %q lacks the file prefix", e)
					}
					return
				}
			}
			t.Fatalf("want %d:%d %q, got:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}
}

// TestManyErrorsReportedTogether: every problem is reported, sorted by
// position, each line prefixed with file:line:col.
func TestManyErrorsReportedTogether(t *testing.T) {
	src := "node:\n  maxPeers: 0\n  colour: red\ntopics:\n  - topic: \"\"\nlog:\n  level: loud\n"
	_, err := Parse("x.yaml", []byte(src))
	errs := Errors(err)
	if len(errs) != 4 {
		t.Fatalf("want 4 errors, got %d:\n%v", len(errs), err)
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"x.yaml:2:13: ", "x.yaml:3:3: ", "x.yaml:5:12: ", "x.yaml:7:10: "}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	if !errors.Is(err, framework.ErrInvalidOption) || !errors.Is(err, framework.ErrInvalidTopic) {
		t.Errorf("joined error does not wrap the sentinels: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"maxPeers", "maxClientSockets", "connectTimeout", "port"}
	for in, want := range map[string]string{"maxpeers": "maxPeers", "max_peers": "maxPeers", "conectTimeout": "connectTimeout", "prot": "port", "zzzzzz": ""} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

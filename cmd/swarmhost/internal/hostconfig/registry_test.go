package hostconfig

import (
	"os"
	"strings"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
)

// Every built-in has a conformance factory of its kind, or says why not.
func TestEveryBuiltinHasConformanceOrAReason(t *testing.T) {
	for _, b := range Builtins() {
		var ok bool
		switch b.Conformance.(type) {
		case conformance.TransportFactory:
			ok = b.Kind == KindTransport
		case conformance.DiscoveryFactory:
			ok = b.Kind == KindDiscovery
		case conformance.ValidatorFactory:
			ok = b.Kind == KindValidator
		case nil:
			ok = b.NoConformance != ""
		}
		if !ok {
			t.Errorf("%s %s: conformance %T, reason %q: give a factory of its kind or a reason", b.Kind, b.Name, b.Conformance, b.NoConformance)
		}
		if b.Conformance != nil && b.NoConformance != "" {
			t.Errorf("%s %s: both a factory and a reason for none", b.Kind, b.Name)
		}
		if b.Summary == "" || b.decode == nil || b.fromFlags == nil || b.build == nil {
			t.Errorf("%s %s: incomplete entry", b.Kind, b.Name)
		}
	}
}

// A registry entry builds its plugin from the options its flag parser and
// its YAML decoder produce, of the kind it is registered under.
func TestBuiltinsBuildFromFlagsAsTheirKind(t *testing.T) {
	f := Flags{Peers: []string{"127.0.0.1:1"}, Bootstrap: []string{"127.0.0.1:2"}, Allow: []string{"127.0.0.0/8"}}
	for _, b := range Builtins() {
		if b.NeedsLab {
			continue // mdns opens multicast sockets: lab only
		}
		arg := ""
		if b.Name == "banlist" {
			arg = t.TempDir() + "/bans"
		}
		p, err := FlagPlugin(b.Kind, b.Name+":"+arg, f)
		if b.Name != "banlist" {
			p, err = FlagPlugin(b.Kind, b.Name, f)
		}
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		ps, err := Build([]Plugin{p}, BuildOptions{})
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		n := map[Kind]int{KindDiscovery: len(ps.Discoveries), KindTransport: len(ps.Transports), KindValidator: len(ps.Validators)}
		if n[b.Kind] != 1 || len(ps.Discoveries)+len(ps.Transports)+len(ps.Validators) != 1 {
			t.Errorf("%s: built %v", b.Name, n)
		}
		if err := ps.Close(); err != nil {
			t.Errorf("%s: close: %v", b.Name, err)
		}
	}
}

// expect turns builtin.KnownFailures into ExpectFail options: the subtest
// of a known failure passes while the check fails, and fails once it
// passes, so the list stays exact.
func expect(name string) []conformance.Option {
	var opts []conformance.Option
	for check, reason := range builtin.KnownFailures(name) {
		opts = append(opts, conformance.ExpectFail(check, reason))
	}
	return opts
}

// Every registered built-in with a loopback suite passes it: transports
// and discoveries in full; validators' full suites run in
// plugins/validators, so here only their first check (the factory builds).
func TestBuiltinsPassConformance(t *testing.T) {
	for _, b := range Builtins() {
		t.Run(b.Name, func(t *testing.T) {
			switch f := b.Conformance.(type) {
			case conformance.TransportFactory:
				conformance.RunTransportSuite(t, f, expect(b.Name)...)
			case conformance.DiscoveryFactory:
				conformance.RunDiscoverySuite(t, f, expect(b.Name)...)
			case conformance.ValidatorFactory:
				if r := conformance.Run(t.Context(), conformance.ValidatorChecks(f)[0]); !r.Passed {
					t.Error(r)
				}
			}
		})
	}
}

// The README's list of built-in plugins is the registry's: regenerate it
// with Markdown when this fails.
func TestREADMEListsTheRegistry(t *testing.T) {
	b, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- builtins:begin (generated from the plugin registry: hostconfig.Markdown) -->\n", "<!-- builtins:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README has no builtins block")
	}
	if got, want := s[i+len(begin):j], Markdown(); got != want {
		t.Errorf("README's builtins block:\n%s\nwant:\n%s", got, want)
	}
}

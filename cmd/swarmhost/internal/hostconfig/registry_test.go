package hostconfig

import (
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/conformance/builtin"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
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

// Every plugin flag belongs to a registered built-in, and every entry's
// decoder and flag parser produce its OptionsType.
func TestPluginFlagsAndOptionsTypesMatchTheRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, pf := range PluginFlags() {
		if _, ok := LookupBuiltin(pf.Plugin); !ok || pf.Usage == "" || seen[pf.Name] {
			t.Errorf("--%s: plugin %q not registered, no usage, or declared twice", pf.Name, pf.Plugin)
		}
		seen[pf.Name] = true
	}
	f := Flags{Allow: []string{"127.0.0.0/8"}}
	for _, b := range Builtins() {
		if b.OptionsType == nil {
			t.Errorf("%s: no OptionsType", b.Name)
			continue
		}
		d := &decoder{}
		if got := reflect.TypeOf(b.decode(d, nil, "x")); got != b.OptionsType {
			t.Errorf("%s: YAML decoder returns %v, OptionsType %v", b.Name, got, b.OptionsType)
		}
		if o, err := b.Options("x", f); err == nil && reflect.TypeOf(o) != b.OptionsType {
			t.Errorf("%s: flag parser returns %T, OptionsType %v", b.Name, o, b.OptionsType)
		}
	}
}

// The list flags take repeats and comma lists alike (--bootstrap A,B
// --bootstrap C), dropping repeats; inside a plugin: item of a plugin
// list, which splits at commas, repeating the flag is the way to give
// several.
func TestListFlagsAreRepeatableAndTakeCommaLists(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f Flags
	RegisterFlags(fs, &f)
	err := fs.Parse([]string{"--bootstrap", "127.0.0.1:1,127.0.0.1:2", "--bootstrap", "127.0.0.1:3", "--bootstrap", "127.0.0.1:1",
		"--peer", "127.0.0.1:4", "--peer", "127.0.0.1:5", "--allow", "10.0.0.0/8, 127.0.0.0/8", "--mdns-interval", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}; !slices.Equal(f.Bootstrap, want) {
		t.Errorf("bootstrap %q, want %q", f.Bootstrap, want)
	}
	if !slices.Equal(f.Peers, []string{"127.0.0.1:4", "127.0.0.1:5"}) || !slices.Equal(f.Allow, []string{"10.0.0.0/8", "127.0.0.0/8"}) || f.MDNSInterval != 2*time.Second {
		t.Errorf("flags %+v", f)
	}
	p, err := FlagPlugin(KindDiscovery, "dht", f)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Options.(dht.Config).Bootstrap; !slices.Equal(got, f.Bootstrap) {
		t.Errorf("dht bootstrap %q", got)
	}
	if err := fs.Parse([]string{"--mdns-interval", "5"}); err == nil {
		t.Error("--mdns-interval 5 (no unit) accepted")
	}
}

// A strict plugin flag without its plugin is an error naming the plugin;
// --bootstrap (perhaps for an out-of-process DHT) is not strict.
func TestCheckFlagsNamesTheMissingPlugin(t *testing.T) {
	for _, tc := range []struct {
		f      Flags
		listed []string
		want   string
	}{
		{Flags{Peers: []string{"127.0.0.1:1"}}, []string{"dht"}, "--peer needs the static discovery (--discovery static,...)"},
		{Flags{Deny: []string{"10.0.0.0/8"}}, []string{"tcp"}, "--allow/--deny need the cidr validator (--validator cidr,...)"},
		{Flags{MDNSIfaces: []string{"eth0"}}, nil, "--mdns-iface needs the mdns discovery"},
		{Flags{Bootstrap: []string{"127.0.0.1:1"}}, nil, ""},
		{Flags{Allow: []string{"10.0.0.0/8"}}, []string{"cidr"}, ""},
	} {
		err := CheckFlags(tc.f, tc.listed)
		if (tc.want == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, framework.ErrInvalidOption)) {
			t.Errorf("%+v with %v: %v, want %q", tc.f, tc.listed, err, tc.want)
		}
	}
}

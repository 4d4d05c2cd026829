package hostconfig

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

// withBuiltins adds entries to the registry for the test (tests in this
// package do not run in parallel).
func withBuiltins(t *testing.T, entries ...Builtin) {
	t.Helper()
	saved := registry
	registry = append(slices.Clip(registry), entries...)
	t.Cleanup(func() { registry = saved })
}

// The plugin package of a new transport, as its author writes it: a
// typed Config and a constructor that opens nothing. Nothing in it knows
// about hostconfig.

// tcpxConfig configures the tcpx transport.
type tcpxConfig struct {
	KeepAlive time.Duration // keepAlive: a duration > 0
	Tag       string        // tag: text
	Backlog   int           `hostconfig:"max=64"` // backlog: 1 to 64
	Quiet     bool          // quiet: a boolean
	Retry     struct {      // retry: {after: DURATION, max: N}
		After time.Duration
		Max   int
	}
	Now func() time.Time // not configurable from YAML
}

// tcpx is TCP under another name.
type tcpx struct {
	*tcp.Transport
	cfg tcpxConfig
}

func (x *tcpx) Name() string { return "tcpx" }

var errTagNeeded = errors.New("tcpx: quiet needs a tag")

func newTCPX(c tcpxConfig) (*tcpx, error) {
	if c.Quiet && c.Tag == "" {
		return nil, fmt.Errorf("%w: %w", framework.ErrInvalidOption, errTagNeeded)
	}
	t := tcp.New()
	t.KeepAlive = c.KeepAlive
	return &tcpx{Transport: t, cfg: c}, nil
}

// tcpxEntry is the whole registration of the new transport: ONE def
// expression of 2 lines. No decoder, flag parser or conformance factory
// is written for it: the YAML options come from tcpxConfig's fields, the
// flags give the zero tcpxConfig, and the conformance factory is the
// default loopback one of transports.
var tcpxEntry = def(Builtin{Kind: KindTransport, Name: "tcpx", Summary: "TCP under another name (a test plugin)"},
	nil, nil, plain(newTCPX))

// Issue 12: a new transport is one registry entry plus its package. The
// entry above (2 lines) is picked up by the YAML config (options, errors
// with positions, the constructor's check), the flags (`pipe --transport
// tcpx`), the README's Markdown list and the conformance suite, with no
// other edit.
func TestANewTransportIsOneRegistryEntry(t *testing.T) {
	withBuiltins(t, tcpxEntry)

	t.Run("yaml", func(t *testing.T) {
		c, err := Parse("c.yaml", []byte("transports:\n  - name: tcpx\n    options:\n      keepAlive: 5s\n      tag: edge\n      backlog: 8\n      quiet: true\n      retry: {after: 1s, max: 3}\n"))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Transports[0].Options.(tcpxConfig)
		if got.KeepAlive != 5*time.Second || got.Tag != "edge" || got.Backlog != 8 || !got.Quiet || got.Retry.After != time.Second || got.Retry.Max != 3 {
			t.Errorf("options %+v", got)
		}
		ps, err := c.BuildPlugins(BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close()
		if len(ps.Transports) != 1 || ps.Transports[0].Name() != "tcpx" || ps.Transports[0].(*tcpx).cfg.Tag != "edge" {
			t.Errorf("built %v", ps.Transports)
		}
	})

	t.Run("yaml errors", func(t *testing.T) {
		for _, tc := range []struct {
			yaml      string
			line, col int
			msg, hint string
		}{
			{"keepAlive: 5", 4, 18, "transports[0].options.keepAlive: 5 has no unit", durationHint},
			{"keepAlive: -1s", 4, 18, "keepAlive: -1s is not positive", "more than 0"},
			{"backlog: 65", 4, 16, "transports[0].options.backlog: 65 is out of range", "must be 1 to 64"},
			{`backlog: "8"`, 4, 16, "want an integer", "remove the quotes"},
			{"quiet: yes please", 4, 14, "want a boolean", "true or false"},
			{"tag: [a]", 4, 12, "want a string, got a list", ""},
			{"retry: {max: 0}", 4, 20, "transports[0].options.retry.max: 0 is out of range", "must be 1 to 1073741824"},
			{"retry: {aftr: 1s}", 4, 15, `transports[0].options.retry: unknown key "aftr"`, `did you mean "after"?`},
			{"keepalive: 1s", 4, 7, `transports[0].options: unknown key "keepalive"`, `did you mean "keepAlive"?`},
			{"now: 1s", 4, 7, `unknown key "now"`, ""},
			{"quiet: true", 4, 7, "transports[0].options: dwebswarm: invalid option: tcpx: quiet needs a tag", "see cmd/swarmhost/internal/hostconfig tcpxConfig for the ranges"},
		} {
			_, err := Parse("c.yaml", []byte("transports:\n  - name: tcpx\n    options:\n      "+tc.yaml+"\n"))
			es := Errors(err)
			if len(es) != 1 || es[0].Line != tc.line || es[0].Column != tc.col || !strings.Contains(es[0].Msg, tc.msg) || !strings.Contains(es[0].Hint, tc.hint) || !errors.Is(es[0], framework.ErrInvalidOption) {
				t.Errorf("%s: got %v, want %d:%d %q (%q)", tc.yaml, err, tc.line, tc.col, tc.msg, tc.hint)
			}
		}
	})

	t.Run("flags", func(t *testing.T) {
		// What `swarmhost pipe --transport tcpx` does with its flags.
		var f Flags
		items := SplitList("tcpx")
		if err := CheckFlags(f, items); err != nil {
			t.Fatal(err)
		}
		p, err := FlagPlugin(KindTransport, items[0], f)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := Build([]Plugin{p}, BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close()
		if len(ps.Transports) != 1 || ps.Transports[0].Name() != "tcpx" {
			t.Errorf("built %v", ps.Transports)
		}
		if !slices.Contains(BuiltinNames(KindTransport), "tcpx") {
			t.Errorf("--transport lists %v", BuiltinNames(KindTransport))
		}
	})

	t.Run("markdown", func(t *testing.T) {
		if row := "| transport | `tcpx` | TCP under another name (a test plugin) |  | loopback suite |\n"; !strings.Contains(Markdown(), row) {
			t.Errorf("Markdown lacks %q:\n%s", row, Markdown())
		}
	})

	t.Run("conformance", func(t *testing.T) {
		b, ok := LookupBuiltin("tcpx")
		if !ok {
			t.Fatal("not registered")
		}
		f, ok := b.Conformance.(conformance.TransportFactory)
		if !ok || b.NoConformance != "" {
			t.Fatalf("conformance %T", b.Conformance)
		}
		if _, err := b.Checks(); err != nil {
			t.Fatal(err)
		}
		conformance.RunTransportSuite(t, f)
	})
}

// The generic decoder's keys: lowerCamel of the field name, or the yaml
// tag.
func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{
		"DialTimeout": "dialTimeout", "TTL": "ttl", "MaxHalfOpenPerIP": "maxHalfOpenPerIP",
		"IPAddr": "ipAddr", "A": "a", "SynRate": "synRate", "ReadBuffer": "readBuffer",
	} {
		if got := lowerCamel(in); got != want {
			t.Errorf("lowerCamel(%q) = %q, want %q", in, got, want)
		}
	}
}

// A yaml tag renames or hides a field; floats, string and duration lists
// decode; tcp's keepAlive takes off.
func TestStructOptionsTagsAndKinds(t *testing.T) {
	type opts struct {
		Rate   float64         `yaml:"perSecond"`
		Hidden string          `yaml:"-"`
		Names  []string        //
		Waits  []time.Duration //
		Grace  time.Duration   `hostconfig:"min=0"`
		Small  uint8           //
	}
	dec := structOptions[opts, any](nil)
	d := &decoder{file: "c.yaml"}
	n := mustNode(t, "perSecond: 2.5\nnames: [a, b]\nwaits: [0s, 1s]\ngrace: 0s\nsmall: 200\n")
	got := dec(d, n, "o")
	if len(d.errs) != 0 {
		t.Fatal(d.errs[0])
	}
	if got.Rate != 2.5 || !slices.Equal(got.Names, []string{"a", "b"}) || !slices.Equal(got.Waits, []time.Duration{0, time.Second}) || got.Small != 200 {
		t.Errorf("decoded %+v", got)
	}
	for _, bad := range []string{"hidden: x\n", "rate: 1\n", "small: 256\n", "names: [\"\"]\n", "grace: -1s\n"} {
		d := &decoder{file: "c.yaml"}
		dec(d, mustNode(t, bad), "o")
		if len(d.errs) != 1 {
			t.Errorf("%q: errors %v", bad, d.errs)
		}
	}

	c, err := Parse("c.yaml", []byte("transports:\n  - name: tcp\n    options: {keepAlive: off}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Transports[0].Options.(TCPOptions).KeepAlive; got != -1 {
		t.Errorf("keepAlive: off gave %v", got)
	}
}

func mustNode(t *testing.T, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// Only transports get a default conformance factory: a discovery or
// validator entry that names none and gives no reason still fails
// TestEveryBuiltinHasConformanceOrAReason.
func TestOnlyTransportsGetADefaultConformanceFactory(t *testing.T) {
	v := def(Builtin{Kind: KindValidator, Name: "v", Summary: "s"}, nil, nil,
		plain(func(struct{}) (framework.PeerValidator, error) { return framework.ValidatorFunc(nil), nil }))
	if v.Conformance != nil {
		t.Errorf("validator got conformance %T", v.Conformance)
	}
	if _, ok := tcpxEntry.Conformance.(conformance.TransportFactory); !ok {
		t.Errorf("transport got conformance %T", tcpxEntry.Conformance)
	}
}

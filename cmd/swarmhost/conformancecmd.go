package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

const conformanceHelp = `usage: swarmhost conformance [flags] TARGET [flags] [-- PLUGIN_ARGS...]

Checks a Transport, Discovery or PeerValidator against the swarm semantics
and prints one PASS/FAIL line per named check, then a summary. Exits 1 when
any check fails, 2 on bad usage.

TARGET is builtin:NAME (a built-in plugin) or the path of a plugin binary
built with the framework/remote SDK; PLUGIN_ARGS are passed to the binary
({bootstrap} becomes the address of the --testnet, if any).

A validator binary needs the peers it must accept (at least two) and reject
(at least one): --accept HOST:PORT, --reject HOST:PORT.

Without --kind, the checks are those of the kind TARGET serves: a
built-in's, or what the binary says it serves in the plugin handshake.
--kind overrides it (and picks one for a binary that serves several).

examples:
  swarmhost conformance builtin:tcp
  swarmhost conformance --accept 10.0.0.1:1 --accept 10.0.0.2:1 \
      --reject 192.0.2.1:1 ./cidrvalidator -- --file rules.txt
  swarmhost conformance --json ./unixtransport

flags:
`

func runConformance(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, conformanceHelp); fs.PrintDefaults() }
	kind := fs.String("kind", "", "what TARGET is: transport, discovery or validator (default: what the plugin serves, learnt from its handshake)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	perCheck := fs.Duration("check-timeout", time.Minute, "bound each check to this `DURATION`")
	testnet := fs.Int("testnet", 0, "start a loopback DHT testnet of `N` nodes for discovery plugins ({bootstrap} in PLUGIN_ARGS)")
	only := fs.String("only", "", "comma-separated check names to run (default: all)")
	var accept, reject []string
	fs.Func("accept", "a peer `HOST:PORT` the validator must accept (repeatable)", func(v string) error { accept = append(accept, v); return nil })
	fs.Func("reject", "a peer `HOST:PORT` the validator must reject (repeatable)", func(v string) error { reject = append(reject, v); return nil })
	var pluginArgs []string
	for i, a := range args {
		if a == "--" {
			args, pluginArgs = args[:i], args[i+1:]
			break
		}
	}
	// flags may come before or after TARGET; PLUGIN_ARGS follow "--"
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(s.err, "swarmhost conformance: want exactly one TARGET, got %d (%s); pass arguments for the plugin after --\n", len(pos), strings.Join(pos, " "))
		fs.Usage()
		return 2
	}
	target := pos[0]
	if *testnet > 0 {
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		tn, err := dhttest.Start(tctx, *testnet, dhttest.Options{})
		cancel()
		if err != nil {
			fmt.Fprintln(s.err, "swarmhost conformance: testnet:", err)
			return 1
		}
		defer tn.Close()
		for i, a := range pluginArgs {
			pluginArgs[i] = strings.ReplaceAll(a, "{bootstrap}", tn.Addr())
		}
	}
	if *kind == "" {
		k, err := detectKind(target, pluginArgs)
		if err != nil {
			fmt.Fprintln(s.err, "swarmhost conformance:", err)
			if isUsageError(err) {
				return 2
			}
			return 1
		}
		*kind = k
	}
	checks, err := conformanceChecks(*kind, target, pluginArgs, accept, reject)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost conformance:", err)
		return 2
	}
	if *only != "" {
		want := map[string]bool{}
		for _, n := range hostconfig.SplitList(*only) {
			want[n] = true
		}
		var kept []conformance.Check
		for _, c := range checks {
			if want[c.Name] {
				kept = append(kept, c)
				delete(want, c.Name)
			}
		}
		if len(want) > 0 {
			var unknown []string
			for n := range want {
				unknown = append(unknown, n)
			}
			sort.Strings(unknown)
			fmt.Fprintf(s.err, "swarmhost conformance: unknown check(s) %s\n", strings.Join(unknown, ", "))
			return 2
		}
		checks = kept
	}
	results := conformance.RunAll(ctx, checks, *perCheck)
	passed := 0
	for _, r := range results {
		if r.Passed {
			passed++
		}
	}
	failed := len(results) - passed
	if *asJSON {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Kind    string               `json:"kind"`
			Target  string               `json:"target"`
			Passed  int                  `json:"passed"`
			Failed  int                  `json:"failed"`
			Results []conformance.Result `json:"results"`
		}{*kind, target, passed, failed, results})
	} else {
		for _, r := range results {
			fmt.Fprintln(s.out, r.String())
		}
		fmt.Fprintf(s.out, "%s %s: %d passed, %d failed\n", *kind, target, passed, failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// detectKind is the kind TARGET serves: a built-in's kind, or what a plugin
// binary says it serves in its handshake. A binary that serves several
// kinds needs --kind.
func detectKind(target string, pluginArgs []string) (string, error) {
	if name, ok := strings.CutPrefix(target, "builtin:"); ok {
		b, ok := hostconfig.LookupBuiltin(name)
		if !ok {
			var known []string
			for _, k := range []hostconfig.Kind{hostconfig.KindTransport, hostconfig.KindDiscovery, hostconfig.KindValidator} {
				known = append(known, hostconfig.BuiltinNames(k)...)
			}
			return "", fmt.Errorf("%w: built-in plugin %q (known: %s)", framework.ErrUnknownPlugin, name, strings.Join(known, ", "))
		}
		return string(b.Kind), nil
	}
	if _, err := os.Stat(target); err != nil {
		return "", fmt.Errorf("%w: plugin binary %s: %w", framework.ErrInvalidOption, target, err)
	}
	kinds, err := remote.Probe(remote.Config{Path: target, Args: pluginArgs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", fmt.Errorf("what does %s serve? %w (name it with --kind)", target, err)
	}
	if len(kinds) > 1 {
		return "", fmt.Errorf("%w: %s serves a %s: pick one with --kind", framework.ErrInvalidOption, target, strings.Join(kinds, " and a "))
	}
	return kinds[0], nil
}

// conformanceChecks builds the checks of one target.
func conformanceChecks(kind, target string, pluginArgs, accept, reject []string) ([]conformance.Check, error) {
	name, isBuiltin := strings.CutPrefix(target, "builtin:")
	if !isBuiltin {
		if _, err := os.Stat(target); err != nil {
			return nil, fmt.Errorf("plugin binary %s: %w", target, err)
		}
	}
	cfg := remote.Config{Path: target, Args: pluginArgs}
	switch kind {
	case "transport":
		if isBuiltin {
			return builtinChecks(hostconfig.KindTransport, name)
		}
		return conformance.TransportChecks(func(t *conformance.T) (framework.Transport, error) {
			tr, err := remote.NewTransport(cfg)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { tr.Close() })
			return tr, nil
		}), nil
	case "discovery":
		if isBuiltin {
			return builtinChecks(hostconfig.KindDiscovery, name)
		}
		return conformance.DiscoveryChecks(func(*conformance.T) (conformance.DiscoveryEnv, error) {
			return remoteDiscoveryEnv{cfg}, nil
		}), nil
	case "validator":
		if isBuiltin {
			return builtinChecks(hostconfig.KindValidator, name)
		}
		acc, err := parsePeers(accept)
		if err != nil {
			return nil, fmt.Errorf("--accept: %w", err)
		}
		rej, err := parsePeers(reject)
		if err != nil {
			return nil, fmt.Errorf("--reject: %w", err)
		}
		if len(acc) < 2 || len(rej) < 1 {
			return nil, fmt.Errorf("%w: a validator binary needs at least two --accept and one --reject peer", framework.ErrInvalidOption)
		}
		return conformance.ValidatorChecks(func(t *conformance.T) (conformance.ValidatorCase, error) {
			v, err := remote.NewValidator(cfg)
			if err != nil {
				return conformance.ValidatorCase{}, err
			}
			t.Cleanup(func() { v.Close() })
			return conformance.ValidatorCase{Validator: v, Accept: acc, Reject: rej}, nil
		}), nil
	}
	return nil, fmt.Errorf("%w: --kind %q: want transport, discovery or validator", framework.ErrInvalidOption, kind)
}

// builtinChecks are the conformance checks of the built-in NAME of kind k,
// from the plugin registry.
func builtinChecks(k hostconfig.Kind, name string) ([]conformance.Check, error) {
	b, ok := hostconfig.LookupBuiltin(name)
	if !ok || b.Kind != k {
		return nil, fmt.Errorf("%w: built-in %s %q (known: %s)", framework.ErrUnknownPlugin, k, name, names(k))
	}
	return b.Checks()
}

// remoteDiscoveryEnv starts one plugin process per discovery instance; the
// plugin's own arguments must make instances see each other.
type remoteDiscoveryEnv struct{ cfg remote.Config }

func (e remoteDiscoveryEnv) New(t *conformance.T) (framework.Discovery, error) {
	d, err := remote.NewDiscovery(e.cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.Close() })
	return d, nil
}

func parsePeers(addrs []string) ([]framework.Peer, error) {
	var out []framework.Peer
	for _, a := range addrs {
		p, err := framework.ParsePeerAddr(a, framework.Topic{})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

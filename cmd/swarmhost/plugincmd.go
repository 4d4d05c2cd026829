package main

import (
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"

	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

const pluginHelp = `usage: swarmhost plugin serve [flags] NAME

Serves the built-in plugin NAME out of process, for a dwebswarm host that
started this binary as a plugin (github.com/hashicorp/go-plugin, gRPC):

  transports:  %s
  discoveries: %s (dht needs --bootstrap)
  validators:  %s (banlist:PATH, dht-private[:EXEMPT;...], cidr with --allow/--deny)

A host runs it from a plugin configuration such as
  remote.Config{Path: "/usr/bin/swarmhost", Args: []string{"plugin", "serve", "tcp"}}
Run by hand, it explains that it is a plugin and exits with status 1.

flags:
`

// runPlugin is "swarmhost plugin serve NAME".
func runPlugin(_ context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("plugin", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(s.err, pluginHelp, names(hostconfig.KindTransport), names(hostconfig.KindDiscovery), names(hostconfig.KindValidator))
		fs.PrintDefaults()
	}
	var nf nodeFlags
	fs.Func("peer", "a peer's `HOST:PORT` for the static discovery (repeatable)", func(v string) error {
		nf.peers = append(nf.peers, v)
		return nil
	})
	fs.Func("mdns-iface", "network interface `NAME` for mDNS (repeatable)", func(v string) error {
		nf.mdnsIfaces = append(nf.mdnsIfaces, v)
		return nil
	})
	fs.StringVar(&nf.bootstrap, "bootstrap", "", "comma-separated DHT bootstrap nodes `HOST:PORT,...`")
	addMDNSIntervalFlag(fs, &nf)
	fs.Func("allow", "a `CIDR` prefix the cidr validator allows (repeatable)", func(v string) error { nf.allow = append(nf.allow, v); return nil })
	fs.Func("deny", "a `CIDR` prefix the cidr validator denies (repeatable)", func(v string) error { nf.deny = append(nf.deny, v); return nil })
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 2 || pos[0] != "serve" {
		fs.Usage()
		return 2
	}
	p, err := builtinPlugin(pos[1], nf)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost plugin:", err)
		if isUsageError(err) {
			return 2
		}
		return 1
	}
	sdk.Serve(p) // exits the process when run by hand
	return 0
}

// builtinPlugin builds the named built-in for serving.
func builtinPlugin(name string, nf nodeFlags) (sdk.Plugins, error) {
	var p sdk.Plugins
	var impl any
	base, arg, _ := strings.Cut(name, ":")
	b, ok := hostconfig.LookupBuiltin(base)
	if !ok {
		return p, fmt.Errorf("%w: %q (transports: %s; discoveries: %s; validators: %s)", framework.ErrUnknownPlugin, name, names(hostconfig.KindTransport), names(hostconfig.KindDiscovery), names(hostconfig.KindValidator))
	}
	if b.Kind != hostconfig.KindValidator && arg != "" {
		return p, fmt.Errorf("%w: %s takes no :ARG", framework.ErrInvalidOption, b.Name)
	}
	opts, err := b.Options(arg, nf.registryFlags())
	if err == nil {
		impl, err = b.New(opts, hostconfig.BuildOptions{})
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w", b.Kind, name, err)
	}
	switch x := impl.(type) {
	case framework.Transport:
		p.Transport = x
	case framework.Discovery:
		p.Discovery = x
	case framework.PeerValidator:
		p.Validator = x
	}
	if _, ok := impl.(framework.PacketConnUser); ok && p.Discovery != nil && len(hostconfig.SplitList(nf.bootstrap)) == 0 {
		// out of process, a DHT never falls back to the public routers
		// unasked: the operator names its bootstrap nodes
		if c, ok := impl.(interface{ Close() error }); ok {
			c.Close()
		}
		return p, fmt.Errorf("%w: %s runs on the swarm's shared UDP socket, relayed to this plugin, and needs --bootstrap HOST:PORT,... (the public routers are %s)", framework.ErrInvalidOption, name, strings.Join(dht.DefaultBootstrap, ","))
	}
	if len(nf.peers) > 0 && p.Discovery == nil {
		return p, fmt.Errorf("%w: --peer is for the static discovery", framework.ErrInvalidOption)
	}
	return p, nil
}

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
  discoveries: %s
  validators:  %s

(out of process, dht needs --bootstrap: it never falls back to the public
routers unasked)

A host runs it from a plugin configuration such as
  remote.Config{Path: "/usr/bin/swarmhost", Args: []string{"plugin", "serve", "tcp"}}
Run by hand, it explains that it is a plugin and exits with status 1.

flags:
`

// runPlugin is "swarmhost plugin serve NAME".
func runPlugin(_ context.Context, args []string, s stdio) int {
	name, nf, code := parseServe(args, s)
	if code >= 0 {
		return code
	}
	p, err := builtinPlugin(name, nf)
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

// parseServe parses the arguments of "plugin serve": the plugin's name and
// flags, or an exit code (>= 0) when there is nothing to serve.
func parseServe(args []string, s stdio) (string, nodeFlags, int) {
	fs := flag.NewFlagSet("plugin", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(s.err, pluginHelp, hostconfig.Usage(hostconfig.KindTransport), hostconfig.Usage(hostconfig.KindDiscovery), hostconfig.Usage(hostconfig.KindValidator))
		fs.PrintDefaults()
	}
	var nf nodeFlags
	hostconfig.RegisterFlags(fs, &nf.plugin)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return "", nf, 0
	}
	if err != nil {
		return "", nf, 2
	}
	if len(pos) != 2 || pos[0] != "serve" {
		fs.Usage()
		return "", nf, 2
	}
	return pos[1], nf, -1
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
	for _, pf := range hostconfig.PluginFlags() {
		if pf.Strict && pf.Given(nf.plugin) && pf.Plugin != b.Name {
			owner, _ := hostconfig.LookupBuiltin(pf.Plugin)
			return p, fmt.Errorf("%w: --%s is for the %s %s", framework.ErrInvalidOption, pf.Name, pf.Plugin, owner.Kind)
		}
	}
	opts, err := b.Options(arg, nf.plugin)
	if err == nil {
		impl, err = b.New(opts, hostconfig.BuildOptions{})
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w", b.Kind, name, err)
	}
	switch b.Kind { // New checked that impl is of its kind
	case hostconfig.KindTransport:
		p.Transport = impl.(framework.Transport)
	case hostconfig.KindDiscovery:
		p.Discovery = impl.(framework.Discovery)
	case hostconfig.KindValidator:
		p.Validator = impl.(framework.PeerValidator)
	}
	if _, ok := impl.(framework.PacketConnUser); ok && p.Discovery != nil && len(nf.plugin.Bootstrap) == 0 {
		// out of process, a DHT never falls back to the public routers
		// unasked: the operator names its bootstrap nodes
		if c, ok := impl.(interface{ Close() error }); ok {
			c.Close()
		}
		return p, fmt.Errorf("%w: %s runs on the swarm's shared UDP socket, relayed to this plugin, and needs --bootstrap HOST:PORT,... (the public routers are %s)", framework.ErrInvalidOption, name, strings.Join(dht.DefaultBootstrap, ","))
	}
	return p, nil
}

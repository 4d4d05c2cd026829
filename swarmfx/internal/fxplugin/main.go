// Command fxplugin is the plugin binary of swarmfx's tests: a transport, a
// discovery or a validator served out of process through the plugin SDK.
// Its first argument picks the mode:
//
//	fxplugin tcp                  the built-in TCP transport
//	fxplugin static ADDR,...      a static discovery listing ADDRs
//	fxplugin deny ADDR,...        a validator rejecting ADDRs
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fxplugin tcp | static ADDR,... | deny ADDR,...")
		os.Exit(2)
	}
	var list []string
	if len(os.Args) > 2 {
		list = strings.Split(os.Args[2], ",")
	}
	switch os.Args[1] {
	case "tcp":
		sdk.ServeTransport(tcp.New())
	case "static":
		d, err := static.FromAddrs(list...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sdk.ServeDiscovery(d)
	case "deny":
		deny := denyValidator{}
		for _, a := range list {
			deny[a] = true
		}
		sdk.ServeValidator(deny)
	default:
		fmt.Fprintf(os.Stderr, "fxplugin: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// denyValidator rejects the addresses it holds.
type denyValidator map[string]bool

func (d denyValidator) Name() string { return "deny" }

func (d denyValidator) Validate(_ context.Context, p framework.Peer) error {
	if d[p.Addr()] {
		return fmt.Errorf("%w: %s is on the deny list", framework.ErrRejected, p.Addr())
	}
	return nil
}

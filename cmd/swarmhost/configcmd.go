package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
)

const configUsage = `usage: swarmhost config check FILE

Check a daemon config file: prints "FILE: ok", or every problem as
FILE:LINE:COL: message (hint). Exit 0 ok, 1 invalid, 2 bad usage.

Example:
  swarmhost config check /etc/swarmhost.yaml
`

// runConfig is "swarmhost config check FILE".
func runConfig(_ context.Context, args []string, s stdio) int {
	if len(args) == 0 {
		fmt.Fprint(s.err, configUsage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(s.out, configUsage)
		return 0
	case "check":
	default:
		fmt.Fprintf(s.err, "swarmhost config: unknown subcommand %q\n\n%s", args[0], configUsage)
		return 2
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, configUsage) }
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(s.err, "swarmhost config check: want one FILE, got %d\n\n%s", len(pos), configUsage)
		return 2
	}
	file := pos[0]
	_, err = hostconfig.Load(file)
	if err == nil {
		fmt.Fprintf(s.out, "%s: ok\n", file)
		return 0
	}
	if errs := hostconfig.Errors(err); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(s.err, e)
		}
		return 1
	}
	fmt.Fprintf(s.err, "%s: %v\n", file, err)
	return 1
}

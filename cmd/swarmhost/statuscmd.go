package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/observe"
)

const statusHelp = `usage: swarmhost status [--addr HOST:PORT] [--json]

Reads the status endpoint of a running daemon (the listener given to
'swarmhost run --metrics HOST:PORT', which also serves /metrics) and prints
its topics, connections, queue, connectivity and plugins as tables. --json
prints the status document itself. Exits 1 when nothing answers.

examples:
  swarmhost status
  swarmhost status --addr 127.0.0.1:9737 --json | jq '.connections[].remote'

flags:
`

func runStatus(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, statusHelp); fs.PrintDefaults() }
	addr := fs.String("addr", observe.DefaultAddr, "the daemon's metrics and status listener, `HOST:PORT` or http://HOST:PORT")
	asJSON := fs.Bool("json", false, "print the status document as JSON instead of tables")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `DURATION`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "swarmhost status: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(s.err, "swarmhost status: --timeout must be positive")
		return 2
	}
	if _, err := observe.StatusURL(*addr); err != nil {
		fmt.Fprintln(s.err, "swarmhost status: --addr:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, raw, err := observe.Fetch(ctx, *addr)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost status:", err)
		return 1
	}
	if *asJSON {
		var b bytes.Buffer
		if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
			fmt.Fprintln(s.err, "swarmhost status:", err)
			return 1
		}
		b.WriteByte('\n')
		if _, err := b.WriteTo(s.out); err != nil {
			return 1
		}
		return 0
	}
	if err := observe.Render(s.out, st); err != nil {
		fmt.Fprintln(s.err, "swarmhost status:", err)
		return 1
	}
	return 0
}

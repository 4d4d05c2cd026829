package main

import (
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// isUsageError reports errors in what the user asked for (exit code 2),
// a port in use included.
func isUsageError(err error) bool {
	if errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	for _, e := range []error{framework.ErrUnknownPlugin, framework.ErrInvalidOption, framework.ErrInvalidPeer, framework.ErrNoTransport, framework.ErrPortInUse, remote.ErrBinaryMissing, remote.ErrChecksum} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// parseInterleaved parses flags that may come before or after positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// addNodeFlags registers the flags shared by commands that run a swarm.
func addNodeFlags(fs *flag.FlagSet, f *nodeFlags, defaultDiscovery string) {
	hostconfig.RegisterFlags(fs, &f.plugin)
	fs.StringVar(&f.discovery, "discovery", defaultDiscovery, "comma-separated discoveries to use: "+hostconfig.Usage(hostconfig.KindDiscovery)+", or plugin:PATH (an out-of-process plugin binary)")
	fs.StringVar(&f.validator, "validator", "", "comma-separated peer validators, chained in this order: "+hostconfig.Usage(hostconfig.KindValidator)+", or plugin:PATH")
	fs.StringVar(&f.transport, "transport", "tcp", "comma-separated transports to use: "+names(hostconfig.KindTransport)+", or plugin:PATH")
	fs.StringVar(&f.host, "host", "", "address to listen on (default: all)")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 0, "bound each dial to this `DURATION` (default 10s)")
	fs.IntVar(&f.port, "port", 0, "exact port to listen on (default: 49737, +1, +2, then random)")
}

// newLogger builds the stderr logger from a level name.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// exitCode reports err of command name and returns the exit code: 0 for
// nil; 130, quietly, when the user interrupted (ctx canceled); 2 for a
// usage error or a port in use; 1 otherwise. Errors already logged
// (errReported) are not printed again.
func exitCode(ctx context.Context, name string, err error, s stdio) int {
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return 130
	case errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintf(s.err, "swarmhost %s: %v\n", name, err)
	if isUsageError(err) {
		return 2
	}
	return 1
}

// durationFlag parses a duration flag that must not be negative (0 means
// "no limit"); a bare number gets a hint.
func durationFlag(d *time.Duration) func(string) error {
	return func(v string) error {
		x, err := time.ParseDuration(v)
		if err != nil {
			if _, nerr := strconv.ParseFloat(v, 64); nerr == nil {
				return fmt.Errorf("%q has no unit: did you mean %ss?", v, v)
			}
			return fmt.Errorf("%q: want a duration such as 30s, 2m or 1h", v)
		}
		if x < 0 {
			return fmt.Errorf("%q is negative: give 0 to wait forever, or a positive duration", v)
		}
		*d = x
		return nil
	}
}

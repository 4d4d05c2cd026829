// Command swarmhost runs dwebswarm from the command line.
//
//	swarmhost demo                 two local swarms find each other and talk (no internet)
//	swarmhost pipe [flags] TOPIC   pipe stdin/stdout to the first peer of TOPIC
//	swarmhost bootstrap --listen HOST:PORT   a long-lived full DHT node
//	swarmhost testnet --nodes N    a local DHT testnet on loopback
//	swarmhost conformance [--kind K] TARGET   PASS/FAIL per named check
//	swarmhost run --config FILE    the daemon: topics, services, metrics
//	swarmhost config check FILE    validate a daemon config
//	swarmhost status               a running daemon's state
//	swarmhost key [--file PATH]    print (creating if missing) a key file's public key
//	swarmhost key generate PATH    write a new key file
//	swarmhost key rotate           replace the key file, keeping the old one
//	swarmhost version              print the version
//
// Run "swarmhost COMMAND -h" for a command's flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, io stdio) int
}

// stdio is the command's standard streams, replaceable in tests.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func commands() []command {
	return []command{
		{"demo", "two local swarms find each other and exchange a message (loopback only)", runDemo},
		{"pipe", "pipe stdin/stdout to the first peer that connects on a topic", runPipe},
		{"bootstrap", "run a long-lived full DHT node (seed of a private network)", runBootstrap},
		{"relay", "run a blind relay for swarms behind NATs that cannot be hole punched", runRelay},
		{"testnet", "run a local DHT testnet of N nodes on loopback", runTestnet},
		{"conformance", "check a transport, discovery or validator against the swarm semantics", runConformance},
		{"plugin", "serve a built-in plugin out of process (plugin serve tcp|static|...)", runPlugin},
		{"run", "run the daemon from a YAML config: topics, services, metrics", runRun},
		{"config", "check a daemon config file (config check FILE)", runConfig},
		{"status", "print a running daemon's topics, connections, queue, connectivity and plugins", runStatus},
		{"key", "print the public key of a key file, creating it if missing (key generate PATH: a new one; key rotate: replace it)", runKey},
		{"completion", "print a shell completion script (completion bash|zsh|fish)", runCompletion},
		{"version", "print the version", func(_ context.Context, _ []string, s stdio) int {
			fmt.Fprintln(s.out, versionString())
			return 0
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: swarmhost COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'swarmhost COMMAND -h' for a command's flags.")
}

// run dispatches args (without the program name) and returns the exit code.
func run(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 {
		usage(s.err)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(s.out)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], s)
		}
	}
	fmt.Fprintf(s.err, "swarmhost: unknown command %q\n\n", args[0])
	usage(s.err)
	return 2
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

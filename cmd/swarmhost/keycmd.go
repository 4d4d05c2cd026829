package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// identityOptions are the swarm options that give it kp as its identity,
// and turn encryption off when plaintext is set. Every command that builds
// a swarm appends them.
func identityOptions(kp secure.KeyPair, plaintext bool) []framework.Option {
	opts := []framework.Option{framework.WithKeyPair(kp)}
	if plaintext {
		opts = append(opts, framework.WithPlaintext())
	}
	return opts
}

// identityFlags are --key and --plaintext.
type identityFlags struct {
	key       string
	plaintext bool
}

func addIdentityFlags(fs *flag.FlagSet, f *identityFlags) {
	fs.StringVar(&f.key, "key", "", "use the key pair in key `FILE` as this swarm's identity (created, mode 0600, if missing; default: a new key for this run)")
	fs.BoolVar(&f.plaintext, "plaintext", false, "no encryption: raw sockets, as hyperswarm v2 (only with peers that also use --plaintext)")
}

// keyPair is the identity the flags name: the key file's (created when
// missing, which is said on stderr), else an ephemeral key pair.
func (f identityFlags) keyPair(s stdio) (secure.KeyPair, error) {
	if f.key == "" {
		return secure.GenerateKeyPair()
	}
	return loadOrCreateKey(f.key, s)
}

// loadOrCreateKey reads the key file at path or creates it (mode 0600),
// saying so on stderr.
func loadOrCreateKey(path string, s stdio) (secure.KeyPair, error) {
	kp, created, err := secure.LoadOrCreateKeyFile(path)
	if err != nil {
		return kp, err
	}
	if created {
		fmt.Fprintf(s.err, "swarmhost: created key file %s (mode 0600), public key %s\n", path, kp.Public)
	}
	return kp, nil
}

// mode names the session mode for logs.
func mode(plaintext bool) string {
	if plaintext {
		return "plaintext"
	}
	return "encrypted"
}

const keyHelp = `usage: swarmhost key [--file PATH | --config FILE]
       swarmhost key generate PATH

A swarm's identity is a static X25519 key pair kept in a key file (mode
0600; a key file that group or others may read is refused: chmod 600 it).
Its public key, printed in z-base-32 (52 characters), is what peers see.

  key                  print the public key of the key file (--file, default
                       ./node.key; or, with --config, the daemon's node.key),
                       creating the file if it is missing (said on stderr)
  key generate PATH    write a new key file at PATH and print its public key;
                       fails if PATH exists (rotate by writing a new file)

examples:
  swarmhost key --config /etc/swarmhost.yaml     # the daemon's public key
  swarmhost key generate ~/.config/swarmhost/pipe.key
  swarmhost pipe --key ~/.config/swarmhost/pipe.key my-topic

flags:
`

// runKey is "swarmhost key".
func runKey(_ context.Context, args []string, s stdio) int {
	if len(args) > 0 && args[0] == "generate" {
		return runKeyGenerate(args[1:], s)
	}
	fs := flag.NewFlagSet("key", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, keyHelp); fs.PrintDefaults() }
	file := fs.String("file", "", "the key `PATH` (default "+hostconfig.DefaultKeyFile+")")
	config := fs.String("config", "", "use the node.key of the daemon config `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "swarmhost key: unknown subcommand %q\n\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *file != "" && *config != "" {
		fmt.Fprintln(s.err, "swarmhost key: give --file or --config, not both")
		return 2
	}
	path := *file
	if path == "" {
		path = hostconfig.DefaultKeyFile
	}
	if *config != "" {
		cfg, err := hostconfig.Load(*config)
		if err != nil {
			if errs := hostconfig.Errors(err); len(errs) > 0 {
				for _, e := range errs {
					fmt.Fprintln(s.err, e)
				}
			} else {
				fmt.Fprintf(s.err, "swarmhost key: %v\n", err)
			}
			return 1
		}
		path = cfg.Node.Key
	}
	kp, err := loadOrCreateKey(path, s)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost key:", err)
		return 1
	}
	fmt.Fprintln(s.out, kp.Public)
	return 0
}

func runKeyGenerate(args []string, s stdio) int {
	fs := flag.NewFlagSet("key generate", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, keyHelp); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(s.err, "swarmhost key generate: want exactly one PATH")
		return 2
	}
	kp, err := secure.GenerateKeyPair()
	if err == nil {
		err = secure.WriteKeyFile(pos[0], kp)
	}
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost key generate:", err)
		return 1
	}
	fmt.Fprintf(s.err, "swarmhost: wrote key file %s (mode 0600)\n", pos[0])
	fmt.Fprintln(s.out, kp.Public)
	return 0
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

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
       swarmhost key rotate [--file PATH | --config FILE]

A swarm's identity is a static X25519 key pair kept in a key file (mode
0600; a key file that group or others may read is refused: chmod 600 it).
Its public key, printed in z-base-32 (52 characters), is what peers see.

  key                  print the public key of the key file (--file, default
                       ./node.key; or, with --config, the daemon's node.key),
                       creating the file if it is missing (said on stderr)
  key generate PATH    write a new key file at PATH and print its public key;
                       fails if PATH exists
  key rotate           replace the key file (--file or --config, as for key)
                       with a new key: the old file is kept beside it as
                       PATH.old-XXXXXXXX (the old key's first characters),
                       and the keys to update on peers are printed

Keys are printed in z-base-32: lowercase letters and digits with no
look-alikes (0/o, 1/l), no padding and no punctuation, so a key survives
being read aloud, retyped or double-click-selected. Anywhere a key is
read (allow:, allowFile, serverKey) 64 hex digits are accepted too.

examples:
  swarmhost key --config /etc/swarmhost.yaml     # the daemon's public key
  swarmhost key generate ~/.config/swarmhost/pipe.key
  swarmhost pipe --key ~/.config/swarmhost/pipe.key my-topic
  swarmhost key rotate --config /etc/swarmhost.yaml   # then restart the daemon

flags:
`

// runKey is "swarmhost key".
func runKey(_ context.Context, args []string, s stdio) int {
	if len(args) > 0 && args[0] == "generate" {
		return runKeyGenerate(args[1:], s)
	}
	rotate := len(args) > 0 && args[0] == "rotate"
	name := "key"
	if rotate {
		args, name = args[1:], "key rotate"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
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
		fmt.Fprintf(s.err, "swarmhost %s: unknown subcommand %q\n\n", name, fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *file != "" && *config != "" {
		fmt.Fprintf(s.err, "swarmhost %s: give --file or --config, not both\n", name)
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
				fmt.Fprintf(s.err, "swarmhost %s: %v\n", name, err)
			}
			return 1
		}
		path = cfg.Node.Key
	}
	if rotate {
		return rotateKey(path, *config != "", s)
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

// rotateKey replaces the key file at path with a new key pair. The old
// file is kept, hard-linked as path.old-<its key's first characters>
// before the new file is renamed over path, so that at every moment path
// holds a whole key file. It tells the operator what to update.
func rotateKey(path string, daemon bool, s stdio) int {
	fail := func(err error) int {
		fmt.Fprintln(s.err, "swarmhost key rotate:", err)
		return 1
	}
	old, err := secure.ReadKeyFile(path)
	if err != nil {
		return fail(err)
	}
	kp, err := secure.GenerateKeyPair()
	if err != nil {
		return fail(err)
	}
	tmp := path + ".new"
	if err := secure.WriteKeyFile(tmp, kp); err != nil {
		return fail(fmt.Errorf("%w (a rotation left %s behind? remove it and retry)", err, tmp))
	}
	kept := path + ".old-" + old.Public.Short()
	if err := os.Link(path, kept); err != nil {
		os.Remove(tmp)
		return fail(fmt.Errorf("keep the old key file: %w", err))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	fmt.Fprintf(s.err, `swarmhost: rotated key file %s (mode 0600)
  old public key %s, kept in %s
  new public key %s
update every peer that names the old key:
  - servers that allow this node: replace it in their allow: lists and allowFile, then reload them (kill -HUP)
  - clients that pin this node: replace it in their connect services' serverKey
`, path, old.Public, kept, kp.Public)
	if daemon {
		fmt.Fprintln(s.err, "  - restart this daemon: node.key is read at start only")
	}
	fmt.Fprintf(s.err, "delete %s once no peer needs the old key\n", kept)
	fmt.Fprintln(s.out, kp.Public)
	return 0
}

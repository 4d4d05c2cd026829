package main_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/remotetest"
)

// bin is this example built as a separate binary, as a plugin author ships it.
var bin string

func TestMain(m *testing.M) { remotetest.Main(m, ".", &bin) }

func writeList(t *testing.T, list string) string {
	path := filepath.Join(t.TempDir(), "peers.cidr")
	if err := os.WriteFile(path, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func start(cfg remote.Config) (*remote.Validator, error) {
	cfg.Path = bin
	cfg.Logger = slog.New(slog.DiscardHandler)
	return remote.NewValidator(cfg)
}

func peers(hosts ...string) []framework.Peer {
	var out []framework.Peer
	for _, h := range hosts {
		out = append(out, framework.Peer{Host: h, Port: 4000})
	}
	return out
}

// The whole validator suite passes against the plugin out of process, as
// a deny list and as an allow list.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name, list     string
		accept, reject []framework.Peer
	}{
		{"deny", "# private ranges\ndeny 10.0.0.0/8\ndeny 192.168.0.0/16\ndeny fd00::/8\n",
			peers("192.0.2.1", "2001:db8::1", "::ffff:198.51.100.2"), peers("10.1.2.3", "192.168.7.7", "fd12::5", "::ffff:10.9.9.9")},
		{"allow", "deny 192.0.2.66 # one bad host\nallow 192.0.2.0/24\nallow 2001:db8::/32\n",
			peers("192.0.2.1", "2001:db8::7"), peers("192.0.2.66", "198.51.100.1", "::1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeList(t, tc.list)
			conformance.RunValidatorSuite(t, func(ct *conformance.T) (conformance.ValidatorCase, error) {
				v, err := start(remote.Config{Args: []string{"-file", path}})
				if err != nil {
					return conformance.ValidatorCase{}, err
				}
				ct.Cleanup(func() { v.Close() })
				return conformance.ValidatorCase{Validator: v, Accept: tc.accept, Reject: tc.reject}, nil
			}, conformance.PerCheckTimeout(30*time.Second))
		})
	}
}

// The file also comes from the environment; rejections say why.
func TestReasons(t *testing.T) {
	v, err := start(remote.Config{Env: []string{"CIDRVALIDATOR_FILE=" + writeList(t, "deny 10.0.0.0/8\nallow 10.0.0.0/8\n")}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for host, want := range map[string]string{
		"10.1.2.3":    `cidr: 10.1.2.3 denied by "deny 10.0.0.0/8" (line 1)`,
		"192.0.2.1":   "cidr: 192.0.2.1 is not in the allow list",
		"example.org": `cidr: host "example.org" is not an IP address`,
	} {
		err := v.Validate(ctx, framework.Peer{Host: host, Port: 1})
		if !errors.Is(err, framework.ErrRejected) || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%s) = %v; want ErrRejected saying %q", host, err, want)
		}
	}
}

// A bad list stops the plugin before it serves, and the host's start error
// carries the plugin's message with the file and line.
func TestBadFile(t *testing.T) {
	for _, tc := range []struct{ name, list, want string }{
		{"bad prefix", "deny 10.0.0.0/8\n\nallow 10.0.0.0/33\n", `:3: "10.0.0.0/33" is not a CIDR prefix or an IP address`},
		{"bad verb", "# ok\npermit 10.0.0.0/8\n", `:2: "permit 10.0.0.0/8": want "allow CIDR" or "deny CIDR"`},
		{"missing file", "", "no such file or directory"},
		{"no file given", "", "give -file PATH or set CIDRVALIDATOR_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			switch tc.name {
			case "missing file":
				args = []string{"-file", filepath.Join(t.TempDir(), "nope")}
			case "no file given":
			default:
				args = []string{"-file", writeList(t, tc.list)}
			}
			v, err := start(remote.Config{Args: args, StartTimeout: 10 * time.Second})
			if err == nil {
				v.Close()
				t.Fatal("the plugin started with a bad list")
			}
			if !errors.Is(err, remote.ErrStart) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start error %q; want ErrStart mentioning %q", err, tc.want)
			}
			t.Logf("as the operator sees it: %v", err)
		})
	}
}

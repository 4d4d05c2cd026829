package remote_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

var (
	syscallECONNREFUSED = syscall.ECONNREFUSED
	errCanceled         = context.Canceled
	errDeadline         = context.DeadlineExceeded
)

func contextWithCancel() (context.Context, context.CancelFunc) { return context.WithCancel(bg) }
func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(bg, d)
}

func TestStartFailuresAreClear(t *testing.T) {
	sum := sha256Of(t, pluginBin)
	cases := []struct {
		name     string
		cfg      func(*remote.Config)
		want     error
		contains []string
	}{
		{"missing binary", func(c *remote.Config) { c.Path = filepath.Join(t.TempDir(), "nope") }, remote.ErrBinaryMissing, []string{"does not exist"}},
		{"checksum mismatch", func(c *remote.Config) { c.SHA256 = strings.Repeat("ab", 32) }, remote.ErrChecksum, []string{sum, strings.Repeat("ab", 32)}},
		{"bad checksum syntax", func(c *remote.Config) { c.SHA256 = "xyz" }, remote.ErrStart, []string{"64 hex"}},
		{"garbage at handshake", func(c *remote.Config) { c.Args = []string{"garbage"} }, remote.ErrHandshake, []string{"not a dwebswarm plugin", "definitely not a plugin"}},
		{"never answers the handshake", func(c *remote.Config) { c.Args = []string{"silent"}; c.StartTimeout = 300 * time.Millisecond }, remote.ErrHandshake, []string{"within 300ms"}},
		{"exits at once", func(c *remote.Config) { c.Args = []string{"no-such-mode"} }, remote.ErrHandshake, []string{"exited", "unknown mode"}},
		{"wrong protocol version", func(c *remote.Config) { c.Args = []string{"badversion"} }, remote.ErrIncompatible, []string{"version 99", "this host speaks [1]"}},
		{"wrong kind", func(c *remote.Config) { c.Args = []string{"deny"} }, remote.ErrIncompatible, []string{"does not serve a transport"}},
		{"not executable", func(c *remote.Config) { c.Path = "/etc/hostname" }, remote.ErrStart, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, "tcp")
			tc.cfg(&cfg)
			start := time.Now()
			tr, err := remote.NewTransport(cfg)
			if err == nil {
				tr.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, remote.ErrStart) {
				t.Fatalf("err = %v, want it to wrap ErrStart", err)
			}
			wantErr(t, err, tc.want, tc.contains...)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestChecksumPinAccepted(t *testing.T) {
	cfg := config(t, "tcp")
	cfg.SHA256 = strings.ToUpper(sha256Of(t, pluginBin))
	tr := startTransport(t, cfg)
	if tr.Name() != "tcp" || tr.Order() != -100 {
		t.Fatalf("name %q order %d", tr.Name(), tr.Order())
	}
}

package main_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/conformance"
	"github.com/dwebswarm/dwebswarm-go/examples/internal/brokenplugin/broken"
	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/remotetest"
)

var bin string

func TestMain(m *testing.M) { remotetest.Main(m, ".", &bin) }

// failing runs checks with conformance's own runner (as swarmhost
// conformance does) and returns the sorted names of the failed ones.
func failing(t *testing.T, checks []conformance.Check) []string {
	t.Helper()
	var failed []string
	for _, r := range conformance.RunAll(context.Background(), checks, 30*time.Second) {
		t.Log(r.String())
		if !r.Passed {
			failed = append(failed, r.Name)
			if r.Reason == "" {
				t.Errorf("%s failed without a reason", r.Name)
			}
		}
	}
	slices.Sort(failed)
	return failed
}

func assertExactly(t *testing.T, got, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("failed checks:\n  got  %v\n  want %v", got, want)
	}
}

// without returns list minus drop.
func without(list, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
}

func config(kind string) remote.Config {
	return remote.Config{Path: bin, Args: []string{kind}, Logger: slog.New(slog.DiscardHandler)}
}

func TestBrokenTransportOutOfProcess(t *testing.T) {
	got := failing(t, conformance.TransportChecks(func(ct *conformance.T) (framework.Transport, error) {
		tr, err := remote.NewTransport(config("transport"))
		if err != nil {
			return nil, err
		}
		ct.Cleanup(func() { tr.Close() })
		return tr, nil
	}))
	assertExactly(t, got, without(broken.TransportFailures, broken.TransportMasked))
}

func TestBrokenTransportInProcess(t *testing.T) {
	got := failing(t, conformance.TransportChecks(func(*conformance.T) (framework.Transport, error) {
		return broken.NewTransport(), nil
	}))
	assertExactly(t, got, broken.TransportFailures)
}

func validatorCase(v framework.PeerValidator) conformance.ValidatorCase {
	return conformance.ValidatorCase{
		Validator: v,
		Accept:    []framework.Peer{{Host: "192.0.2.1", Port: 1}, {Host: broken.SlowHost, Port: 1}},
		Reject:    []framework.Peer{{Host: "10.1.2.3", Port: 1}},
	}
}

func TestBrokenValidatorOutOfProcess(t *testing.T) {
	got := failing(t, conformance.ValidatorChecks(func(ct *conformance.T) (conformance.ValidatorCase, error) {
		v, err := remote.NewValidator(config("validator"))
		if err != nil {
			return conformance.ValidatorCase{}, err
		}
		ct.Cleanup(func() { v.Close() })
		return validatorCase(v), nil
	}))
	assertExactly(t, got, without(broken.ValidatorFailures, broken.ValidatorMasked))
}

func TestBrokenValidatorInProcess(t *testing.T) {
	got := failing(t, conformance.ValidatorChecks(func(*conformance.T) (conformance.ValidatorCase, error) {
		return validatorCase(broken.Validator{}), nil
	}))
	assertExactly(t, got, broken.ValidatorFailures)
}

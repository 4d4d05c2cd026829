package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestConformanceBuiltinPrintsOneLinePerCheck(t *testing.T) {
	code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "conformance", "--kind", "transport", "builtin:tcp")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 || !strings.HasPrefix(lines[0], "PASS ") || !strings.HasSuffix(lines[len(lines)-1], "passed, 0 failed") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestConformanceOutOfProcessPluginJSON(t *testing.T) {
	bin := buildSwarmhost(t)
	code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "conformance", "--kind", "transport", "--json",
		"--only", "listen_dial_round_trip,taken_port_wraps_err_port_in_use", bin, "--", "plugin", "serve", "tcp")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	var res struct {
		Passed, Failed int
		Results        []struct {
			Name   string
			Passed bool
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if res.Passed != 2 || res.Failed != 0 || len(res.Results) != 2 {
		t.Fatalf("results %+v", res)
	}
}

func TestConformanceFailingPluginExitsNonZeroWithReasons(t *testing.T) {
	bin := buildSwarmhost(t)
	// a static discovery with no peers listed: instances never find each other
	code, out, _ := runCmd(context.Background(), strings.NewReader(""), "conformance", "--kind", "discovery",
		"--only", "discovery_name_is_short_and_stable,announced_peer_found_by_lookup", bin, "--", "plugin", "serve", "static")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "PASS discovery_name_is_short_and_stable") || !strings.Contains(out, "FAIL announced_peer_found_by_lookup") || !strings.Contains(out, "1 passed, 1 failed") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestConformanceBadInput(t *testing.T) {
	for name, args := range map[string][]string{
		"no target":          {"conformance"},
		"unknown kind":       {"conformance", "--kind", "teleporter", "builtin:tcp"},
		"unknown builtin":    {"conformance", "builtin:carrier-pigeon"},
		"missing binary":     {"conformance", "/nonexistent/plugin"},
		"validator no peers": {"conformance", "--kind", "validator", "/bin/true"},
		"unknown check":      {"conformance", "--only", "nope", "builtin:tcp"},
	} {
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), args...)
		if code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
}

// Without --kind, conformance asks a plugin binary in its handshake what
// it serves: a validator binary gets the validator checks (no transport
// FAILs), a discovery binary the discovery checks; --kind still overrides.
func TestConformanceDetectsTheKindABinaryServes(t *testing.T) {
	bin := buildSwarmhost(t)
	code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "conformance",
		"--accept", "10.0.0.1:1", "--accept", "10.0.0.2:1", "--reject", "192.0.2.1:1", bin, "--", "plugin", "serve", "--deny", "192.0.2.0/24", "cidr")
	if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "validator "+bin+": ") || !strings.Contains(out, " 0 failed") {
		t.Fatalf("validator binary without --kind: exit %d:\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(context.Background(), strings.NewReader(""), "conformance",
		"--only", "discovery_name_is_short_and_stable", bin, "--", "plugin", "serve", "static")
	if code != 0 || !strings.Contains(out, "PASS discovery_name_is_short_and_stable") || !strings.Contains(out, "discovery "+bin+": 1 passed, 0 failed") {
		t.Fatalf("discovery binary without --kind: exit %d:\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCmd(context.Background(), strings.NewReader(""), "conformance", "--kind", "transport",
		"--only", "listen_dial_round_trip", bin, "--", "plugin", "serve", "--deny", "192.0.2.0/24", "cidr")
	if code != 1 || !strings.Contains(out, "FAIL listen_dial_round_trip") || !strings.Contains(out, "transport "+bin+": 0 passed, 1 failed") {
		t.Fatalf("--kind transport on a validator binary: exit %d:\n%s", code, out)
	}
	code, out, _ = runCmd(context.Background(), strings.NewReader(""), "conformance", "--only", "validator_name_is_short_and_stable", "builtin:cidr")
	if !strings.Contains(out, "validator builtin:cidr: ") {
		t.Fatalf("builtin:cidr without --kind: exit %d:\n%s", code, out)
	}
}

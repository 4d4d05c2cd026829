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

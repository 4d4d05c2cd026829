package main

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPipeSaysWhyNoPeerConnected: at the default log level, a --timeout
// that passes says why, once, at warn: the refused dials and the DHT
// bootstrap node that never answered.
func TestPipeSaysWhyNoPeerConnected(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	udp, err := net.ListenPacket("udp", "127.0.0.1:0") // a bootstrap node that never answers
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	boot := udp.LocalAddr().String()
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1",
		"--discovery", "static,dht", "--peer", dead, "--bootstrap", boot, "--timeout", "3s", "why")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"no peer connected within 3s", "to " + dead + " refused", "no DHT node answered " + boot} {
		if strings.Count(errOut, want) < 1 || !strings.Contains(errOut, "level=WARN") {
			t.Errorf("stderr lacks %q at warn:\n%s", want, errOut)
		}
	}
	if n := strings.Count(errOut, "no peer connected"); n != 1 {
		t.Errorf("the failure is said %d times, want once:\n%s", n, errOut)
	}
}

// TestPipeStaticPrintsNoDHTFields: with the static discovery, the flushed
// line has no DHT fields that look like errors.
func TestPipeStaticPrintsNoDHTFields(t *testing.T) {
	_, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1", "--timeout", "2s", "static-only")
	if !strings.Contains(errOut, "msg=flushed") || strings.Contains(errOut, "bootstrapped=") || strings.Contains(errOut, "public=") {
		t.Fatalf("stderr:\n%s", errOut)
	}
}

// TestPipeTopicAndTimeoutRules: one topic rule (see
// framework.ParseTopicArg) and durations that must be durations.
func TestPipeTopicAndTimeoutRules(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"empty topic":       {[]string{""}, "empty topic"},
		"63 hex digits":     {[]string{hex64[:63]}, "has 63 digits"},
		"one non-hex":       {[]string{hex64[:63] + "g"}, "is not a hex digit"},
		"negative timeout":  {[]string{"--timeout", "-1s", "t"}, "negative"},
		"timeout no unit":   {[]string{"--timeout", "5", "t"}, "did you mean 5s?"},
		"timeout not a dur": {[]string{"--timeout", "soon", "t"}, "want a duration"},
	} {
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), append([]string{"pipe", "--host", "127.0.0.1"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want 2 and %q in:\n%s", name, code, c.want, errOut)
		}
	}
}

// TestPipeInterruptExits130Quietly: Ctrl-C (ctx canceled) while waiting
// for a peer exits 130 without "context canceled".
func TestPipeInterruptExits130Quietly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"pipe", "--host", "127.0.0.1", "interrupted"}, stdio{in: strings.NewReader(""), out: &syncBuffer{}, err: &errOut})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "msg=flushed") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("pipe did not start: %s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 130 || strings.Contains(errOut.String(), "canceled") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

// TestPortInUseExits2Everywhere: pipe, bootstrap and testnet agree.
func TestPortInUseExits2Everywhere(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	taken := udp.LocalAddr().String()
	for _, args := range [][]string{
		{"bootstrap", "--listen", taken},
		{"testnet", "--nodes", "1", "--listen", taken},
	} {
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), args...)
		if code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestConformanceParsesFlagsAfterTarget: flags after TARGET count; stray
// arguments are an error.
func TestConformanceParsesFlagsAfterTarget(t *testing.T) {
	code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "conformance", "builtin:tcp", "--only", "listen_dial_round_trip", "--json")
	if code != 0 || !strings.Contains(out, `"passed": 1,`) {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "conformance", "builtin:tcp", "stray"); code != 2 || !strings.Contains(errOut, "after --") {
		t.Fatalf("stray argument: exit %d: %s", code, errOut)
	}
}

// TestCompletionForEveryShell: bash, zsh and fish scripts complete the
// subcommands, plugin names and conformance kinds.
func TestCompletionForEveryShell(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "completion", sh)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", sh, code, errOut)
		}
		for _, want := range []string{"conformance", "pipe", "utp", "tcp", "dht", "mdns", "static", "cidr", "banlist", "validator", "discovery"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s script lacks %q", sh, want)
			}
		}
		if strings.Contains(out, "%!") {
			t.Errorf("%s script has a formatting error:\n%s", sh, out)
		}
		if sh == "bash" {
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = strings.NewReader(out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bash -n: %v\n%s", err, b)
			}
		}
	}
}

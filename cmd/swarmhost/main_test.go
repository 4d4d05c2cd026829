package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exeSuffix is what executables' names end with here.
var exeSuffix = map[bool]string{true: ".exe"}[runtime.GOOS == "windows"]

// buildSwarmhost builds this command into a temporary directory.
func buildSwarmhost(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "swarmhost"+exeSuffix)
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func runCmd(ctx context.Context, stdin io.Reader, args ...string) (code int, out, errOut string) {
	var o, e syncBuffer
	code = run(ctx, args, stdio{in: stdin, out: &o, err: &e})
	return code, o.String(), e.String()
}

func TestDemoRunsOnLoopbackAndExitsZero(t *testing.T) {
	code, out, errOut := runCmd(context.Background(), strings.NewReader(""), "demo")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"local DHT testnet: 20 nodes on loopback", "alice (127.0.0.1:", "through the DHT (referrer 127.0.0.1:", "bob connected to alice over tcp", `bob read "alice got \"hello from bob\""`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// freePort returns a loopback port that is free for both TCP and UDP right
// now (a swarm binds both on its port), for a child process to bind.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP in 100 tries")
	return 0
}

func TestPipeExchangesBothWaysAndExits(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	annc := make(chan result, 1)
	bigA := strings.Repeat("a", 1<<20)
	go func() {
		c, o, e := runCmd(ctx, strings.NewReader(bigA), "pipe", "--announce", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--timeout", "15s", "my topic")
		annc <- result{c, o, e}
	}()
	// the looker retries the announcer's port until it listens (requeue)
	c, out, errOut := runCmd(ctx, strings.NewReader("from b"), "pipe", "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--peer", "127.0.0.1:"+strconv.Itoa(port), "--timeout", "15s", "my topic")
	if c != 0 {
		t.Fatalf("looker exit %d: %s", c, errOut)
	}
	if out != bigA {
		t.Fatalf("looker got %d bytes, want %d", len(out), len(bigA))
	}
	a := <-annc
	if a.code != 0 || a.out != "from b" {
		t.Fatalf("announcer exit %d out %q: %s", a.code, a.out, a.err)
	}
}

func TestPipeTimeoutIsAClearError(t *testing.T) {
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1", "--timeout", "100ms", "lonely")
	if code != 1 || !strings.Contains(errOut, "no peer connected within 100ms") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestPipeBadInput(t *testing.T) {
	port := freePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cases := map[string][]string{
		"unknown discovery":  {"pipe", "--discovery", "carrier-pigeon", "t"},
		"unknown transport":  {"pipe", "--transport", "smoke", "t"},
		"no topic":           {"pipe"},
		"two topics":         {"pipe", "a", "b"},
		"bad peer":           {"pipe", "--peer", "nohost", "t"},
		"bad bootstrap":      {"pipe", "--bootstrap", "1.2.3.4", "t"},
		"port in use":        {"pipe", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "t"},
		"bad log level":      {"pipe", "--log-level", "loud", "t"},
		"unknown command":    {"frobnicate"},
		"unknown validator":  {"pipe", "--validator", "vibes", "t"},
		"banlist no file":    {"pipe", "--validator", "banlist", "t"},
		"allow without cidr": {"pipe", "--allow", "10.0.0.0/8", "t"},
		"bad cidr":           {"pipe", "--validator", "cidr", "--deny", "10.0.0.0/99", "t"},
		"missing plugin":     {"pipe", "--transport", "plugin:/nonexistent/plugin", "t"},
	}
	for name, args := range cases {
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), args...)
		if code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
}

// firstLine runs a long-running command and returns the first line it
// prints; cancel the returned stop to end it, then wait on done.
func firstLine(t *testing.T, args ...string) (line string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errOut syncBuffer
	go func() {
		done <- run(ctx, args, stdio{in: strings.NewReader(""), out: pw, err: &errOut})
		pw.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		b := make([]byte, 0, 64)
		one := make([]byte, 1)
		for {
			if _, err := pr.Read(one); err != nil {
				lines <- string(b)
				io.Copy(io.Discard, pr)
				return
			}
			if one[0] == '\n' {
				lines <- string(b)
				io.Copy(io.Discard, pr)
				return
			}
			b = append(b, one[0])
		}
	}()
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("%v printed nothing: %s", args, errOut.String())
	}
	var once sync.Once
	var code int
	return line, func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
}

func TestTestnetAndPipeOverTheDHT(t *testing.T) {
	bootstrap, stop := firstLine(t, "testnet", "--nodes", "20")
	defer stop()
	if !strings.HasPrefix(bootstrap, "127.0.0.1:") {
		t.Fatalf("first line %q is not the bootstrap address", bootstrap)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	annc := make(chan result, 1)
	go func() {
		c, o, e := runCmd(ctx, strings.NewReader("from the announcer"), "pipe", "--discovery", "dht", "--bootstrap", bootstrap, "--host", "127.0.0.1", "--announce", "--timeout", "15s", "dht topic")
		annc <- result{c, o, e}
	}()
	c, out, errOut := runCmd(ctx, strings.NewReader("from the looker"), "pipe", "--discovery", "dht", "--bootstrap", bootstrap, "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--timeout", "15s", "dht topic")
	if c != 0 || out != "from the announcer" {
		t.Fatalf("looker exit %d out %q: %s", c, out, errOut)
	}
	a := <-annc
	if a.code != 0 || a.out != "from the looker" {
		t.Fatalf("announcer exit %d out %q: %s", a.code, a.out, a.err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("testnet exit %d", code)
	}
}

func TestBootstrapNodePrintsItsAddress(t *testing.T) {
	addr, stop := firstLine(t, "bootstrap", "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("first line %q", addr)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestDHTCommandsBadInput(t *testing.T) {
	for name, args := range map[string][]string{
		"bootstrap without listen": {"bootstrap"},
		"bootstrap bad listen":     {"bootstrap", "--listen", "nope"},
		"testnet zero nodes":       {"testnet", "--nodes", "0"},
		"testnet off loopback":     {"testnet", "--listen", "0.0.0.0:0"},
	} {
		code, _, errOut := runCmd(context.Background(), strings.NewReader(""), args...)
		if code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
}

func TestPipeWithValidatorsAndAPluginTransport(t *testing.T) {
	bin := buildSwarmhost(t)
	// a cidr validator that denies loopback: the static peer is rejected,
	// nothing connects
	code, _, errOut := runCmd(context.Background(), strings.NewReader(""), "pipe", "--host", "127.0.0.1",
		"--peer", "127.0.0.1:1", "--validator", "cidr,ratelimit", "--deny", "127.0.0.0/8", "--log-level", "debug", "--timeout", "300ms", "v")
	if code != 1 || !strings.Contains(errOut, "peer rejected") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// the TCP transport served out of process by this very binary
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	plugin := "plugin:" + bin + " plugin serve tcp"
	done := make(chan string, 1)
	go func() {
		_, out, e := runCmd(ctx, strings.NewReader("via plugin"), "pipe", "--transport", plugin, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--announce", "--timeout", "15s", "p")
		done <- out + e
	}()
	c, out, e := runCmd(ctx, strings.NewReader("back"), "pipe", "--transport", plugin, "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--peer", "127.0.0.1:"+strconv.Itoa(port), "--timeout", "15s", "p")
	if c != 0 || out != "via plugin" {
		t.Fatalf("looker exit %d out %q: %s", c, out, e)
	}
	if a := <-done; !strings.HasPrefix(a, "back") {
		t.Fatalf("announcer: %s", a)
	}
}

func TestBashCompletionIsValidAndListsCommands(t *testing.T) {
	code, out, _ := runCmd(context.Background(), strings.NewReader(""), "completion", "bash")
	if code != 0 || !strings.Contains(out, "complete -o default -F _swarmhost swarmhost") || !strings.Contains(out, " run ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, b)
	}
	if code, _, _ := runCmd(context.Background(), strings.NewReader(""), "completion", "tcsh"); code != 2 {
		t.Fatalf("unsupported shell: exit %d", code)
	}
}

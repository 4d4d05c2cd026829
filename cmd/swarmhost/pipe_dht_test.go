package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pipeProc is one `swarmhost pipe` process.
type pipeProc struct {
	cmd     *exec.Cmd
	out     bytes.Buffer
	errOut  syncBuffer
	flushed chan struct{} // closed when it logged msg=flushed
	logged  chan struct{} // closed when its stderr ended
}

func startPipe(ctx context.Context, t *testing.T, bin string, stdin []byte, args ...string) *pipeProc {
	t.Helper()
	p := &pipeProc{flushed: make(chan struct{}), logged: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, append([]string{"pipe"}, args...)...)
	p.cmd.Stdin = bytes.NewReader(stdin)
	p.cmd.Stdout = &p.out
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.logged)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(&p.errOut, sc.Text())
			if !seen && strings.Contains(sc.Text(), "msg=flushed") {
				seen = true
				close(p.flushed)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	return p
}

// wait returns the exit code once the process and its stderr ended.
func (p *pipeProc) wait() int {
	<-p.logged
	err := p.cmd.Wait()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Issue 11, item 1: `swarmhost pipe --discovery dht --transport tcp,utp`
// between two processes on a loopback testnet succeeds 20 times of 20, the
// data intact both ways (it used to fail about half the time: each side
// could keep the connection the other had discarded).
func TestPipeOverTheDHTWithTCPAndUTPTwentyOfTwenty(t *testing.T) {
	bin := buildSwarmhost(t)
	bootstrap, stop := firstLine(t, "testnet", "--nodes", "20")
	defer stop()
	const runs = 20
	for i := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		topic := fmt.Sprintf("happy eyeballs run %d %x", i, randomBytes(t, 4))
		common := []string{"--discovery", "dht", "--transport", "tcp,utp", "--bootstrap", bootstrap, "--host", "127.0.0.1", "--timeout", "30s"}
		fromA := randomBytes(t, 1<<20) // the acceptor sends much
		fromB := randomBytes(t, 1000)
		if i%4 == 3 {
			fromB = nil // the dialler has nothing to say: the acceptor speaks first
		}
		a := startPipe(ctx, t, bin, fromA, append(common, "--announce", "--port", strconv.Itoa(freePort(t)), topic)...)
		// look up once the announcer has announced (a signal, not a sleep)
		select {
		case <-a.flushed:
		case <-a.logged:
		case <-ctx.Done():
		}
		b := startPipe(ctx, t, bin, fromB, append(common, "--port", strconv.Itoa(freePort(t)), topic)...)
		codeB, codeA := b.wait(), a.wait()
		cancel()
		switch {
		case codeA != 0 || codeB != 0:
			t.Fatalf("run %d: exit codes announcer %d, looker %d\nannouncer:\n%s\nlooker:\n%s", i, codeA, codeB, a.errOut.String(), b.errOut.String())
		case sha256.Sum256(b.out.Bytes()) != sha256.Sum256(fromA):
			t.Fatalf("run %d: the looker got %d bytes, want %d intact\nlooker:\n%s", i, b.out.Len(), len(fromA), b.errOut.String())
		case !bytes.Equal(a.out.Bytes(), fromB):
			t.Fatalf("run %d: the announcer got %d bytes, want %d intact\nannouncer:\n%s", i, a.out.Len(), len(fromB), a.errOut.String())
		}
		t.Logf("run %d ok: looker %s", i, connectedLine(b.errOut.String()))
	}
	if code := stop(); code != 0 {
		t.Fatalf("testnet exit %d", code)
	}
}

func connectedLine(log string) string {
	for l := range strings.Lines(log) {
		if strings.Contains(l, "msg=connected") {
			return strings.TrimSpace(l)
		}
	}
	return "(no connected line)"
}

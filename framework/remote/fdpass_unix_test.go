//go:build unix

package remote_test

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// Tests that need fds to pass (not on windows), and in every fd mode.
func init() {
	fdModeTests = append(fdModeTests, modeTest{"TestKill9KeepsFDHandedConnectionAndRestarts", TestKill9KeepsFDHandedConnectionAndRestarts})
}

// A connection handed off by fd belongs to the host: it keeps working after
// the plugin is killed, and the restarted plugin dials again.
func TestKill9KeepsFDHandedConnectionAndRestarts(t *testing.T) {
	l := loopbackListener(t)
	echoServer(t, l)
	ev := newEvents()
	cfg := config(t, "tcp")
	cfg.OnEvent = ev.add
	tr := startTransport(t, cfg)
	ev.wait(t, remote.EventStarted, time.Second)
	dir := remote.SocketDir(tr)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("socket dir: %v", err)
	}
	c, err := tr.Dial(bg, peerOf(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("conn is a %T, want a native *net.TCPConn", c)
	}
	roundTrip(t, c, "before")
	pid := tr.PID()
	start := time.Now()
	kill9(t, pid)
	crash := ev.wait(t, remote.EventCrashed, 5*time.Second)
	t.Logf("crash seen after %v", time.Since(start))
	if crash.PID != pid {
		t.Fatalf("crash event pid %d, want %d", crash.PID, pid)
	}
	roundTrip(t, c, "after the plugin died")
	re := ev.wait(t, remote.EventRestarted, 5*time.Second)
	t.Logf("restarted after %v", time.Since(start))
	if re.PID == pid || re.PID != tr.PID() {
		t.Fatalf("restart pid %d (old %d, now %d)", re.PID, pid, tr.PID())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the dead instance's socket dir %s is still there: %v", dir, err)
	}
	c2, err := tr.Dial(bg, peerOf(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	roundTrip(t, c2, "through the restarted plugin")
	roundTrip(t, c, "the first conn still works")
	dir2 := remote.SocketDir(tr)
	tr.Close()
	if _, err := os.Stat(dir2); !os.IsNotExist(err) {
		t.Fatalf("socket dir %s left after Close: %v", dir2, err)
	}
	roundTrip(t, c, "and after Close")
	if _, err := tr.Dial(bg, peerOf(l.Addr())); !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("dial after close: %v", err)
	}
}

// echoServer accepts on a loopback listener and echoes every connection
// until it closes; everything stops at test cleanup.
func echoServer(t testing.TB, l net.Listener) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
}

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/dwebswarm/dwebswarm-go/internal/testenv"
)

// A minimal DevTools-protocol client for headless Chromium (the Debian
// package), enough to load a page, evaluate expressions in it and take a
// screenshot. No dependency beyond golang.org/x/net/websocket.

// chromiumFlags keep the browser off the network (every host name but
// 127.0.0.1 fails to resolve; no background, update, sync or metrics
// traffic) and out of the machine's profile.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--disable-domain-reliability",
	"--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
	"--no-default-browser-check", "--no-pings", "--mute-audio", "--hide-scrollbars",
	"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
	"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
	"--remote-allow-origins=http://127.0.0.1",
}

// browser is a running headless Chromium and one page in it.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	ws      *websocket.Conn
	session string // the page's flat session id

	mu      sync.Mutex
	next    int
	pending map[int]chan cdpReply
	errs    []string // exceptions and console errors of the page
	readErr error
	done    chan struct{} // closed when the reader ends
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

var devtoolsURL = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser starts Chromium (it fails under CI=true when chromium is
// missing, and skips otherwise) with a page attached. The cleanup closes
// the browser, kills its process group and waits for it; the profile is a
// t.TempDir removed after that.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	testenv.Require(t, testenv.Tool("chromium", "chromium"))
	bin, _ := exec.LookPath("chromium")
	profile, tmp := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, append(chromiumFlags, "--user-data-dir="+profile, "about:blank")...)
	// its own temporary files go under a test directory too, removed with it
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its renderers and zygotes too
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, cmd: cmd, pending: map[int]chan cdpReply{}, done: make(chan struct{})}
	var logMu sync.Mutex
	var chromeLog strings.Builder
	found := make(chan string, 1)
	drained := make(chan struct{})
	go func() { // reads chromium's stderr to its end (it closes when chromium exits)
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			if chromeLog.Len() < 64<<10 {
				chromeLog.WriteString(line + "\n")
			}
			logMu.Unlock()
			if m := devtoolsURL.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		if b.ws != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			b.callCtx(ctx, "", "Browser.close", nil) // best effort; the kill below is what counts
			cancel()
			b.ws.Close()
			<-b.done
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group this test made
		cmd.Wait()
		<-drained
		// the renderers die with the group, asynchronously: wait until
		// none is left (their parent, init, reaps them), bounded
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-cmd.Process.Pid, 0) == nil; {
			if time.Now().After(deadline) {
				t.Errorf("chromium's process group %d still has processes 10s after SIGKILL", cmd.Process.Pid)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("chromium stderr:\n%s", chromeLog.String())
			logMu.Unlock()
		}
	})
	var wsURL string
	select {
	case wsURL = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("chromium printed no DevTools address within 60s")
	}
	b.ws, err = websocket.Dial(wsURL, "", "http://127.0.0.1")
	if err != nil {
		close(b.done)
		t.Fatalf("devtools websocket: %v", err)
	}
	b.ws.MaxPayloadBytes = 64 << 20
	go b.read()

	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	b.call("", "Target.getTargets", nil, &targets)
	var target string
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			target = ti.TargetID
		}
	}
	if target == "" {
		var created struct {
			TargetID string `json:"targetId"`
		}
		b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &created)
		target = created.TargetID
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target, "flatten": true}, &att)
	b.session = att.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	b.call(b.session, "Runtime.enable", nil, nil)
	b.call(b.session, "Log.enable", nil, nil)
	return b
}

// read dispatches replies to their callers and records the page's errors.
func (b *browser) read() {
	defer close(b.done)
	for {
		var raw []byte
		if err := websocket.Message.Receive(b.ws, &raw); err != nil {
			b.mu.Lock()
			b.readErr = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(raw, &msg) != nil {
			continue
		}
		if msg.ID == 0 {
			b.event(msg.Method, msg.Params)
			continue
		}
		b.mu.Lock()
		ch := b.pending[msg.ID]
		delete(b.pending, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

func (b *browser) event(method string, params json.RawMessage) {
	var text string
	switch method {
	case "Runtime.exceptionThrown":
		var p struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(params, &p)
		text = "exception: " + p.Details.Text + " " + p.Details.Exception.Description
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level, Text, URL string
			} `json:"entry"`
		}
		json.Unmarshal(params, &p)
		if p.Entry.Level != "error" {
			return
		}
		text = "console: " + p.Entry.Text + " " + p.Entry.URL
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, text)
	b.mu.Unlock()
}

// pageErrors returns the exceptions and console errors seen so far.
func (b *browser) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *browser) callCtx(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return nil, b.readErr
	}
	b.next++
	id := b.next
	ch := make(chan cdpReply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	if err := websocket.JSON.Send(b.ws, msg); err != nil {
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: devtools connection closed", method)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		return r.Result, nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// call runs a DevTools method (bounded to 30 s) and decodes its result
// into out (nil: ignored); an error fails the test.
func (b *browser) call(session, method string, params, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := b.callCtx(ctx, session, method, params)
	if err != nil {
		b.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
	}
}

// navigate loads url in the page and waits for its load event.
func (b *browser) navigate(url string) {
	b.t.Helper()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, &r)
	if r.ErrorText != "" {
		b.t.Fatalf("navigate %s: %s", url, r.ErrorText)
	}
	b.waitFor("the page loaded", `document.readyState === "complete"`)
}

// eval evaluates a JavaScript expression in the page and decodes its value
// into out.
func (b *browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := b.callCtx(ctx, b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return errors.New("evaluate " + expr + ": " + r.ExceptionDetails.Text)
	}
	if len(r.Result.Value) == 0 {
		return errors.New("evaluate " + expr + ": no value")
	}
	return json.Unmarshal(r.Result.Value, out)
}

// browserWait bounds every DOM condition of the browser tests (the page
// polls once a second; a busy machine is slow).
const browserWait = 60 * time.Second

// waitFor polls the boolean expression cond every 50 ms until it is true,
// and fails the test after browserWait.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		var ok bool
		err := b.eval("Boolean("+cond+")", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var body string
			b.eval(`document.body ? document.body.innerText : ""`, &body)
			b.t.Fatalf("%s: not within %v (%s; last error %v); page text:\n%s", what, browserWait, cond, err, body)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll of the DOM
	}
}

// screenshot returns a PNG of the whole page at the given width.
func (b *browser) screenshot(width int) []byte {
	b.t.Helper()
	var height int
	if err := b.eval(`Math.ceil(document.documentElement.scrollHeight)`, &height); err != nil {
		b.t.Fatal(err)
	}
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	var r struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	return png
}

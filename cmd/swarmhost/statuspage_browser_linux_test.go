package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// screenshotPath is where UPDATE_SCREENSHOT=1 writes the status page's
// screenshot (the README embeds it).
var screenshotPath = filepath.Join("..", "..", "docs", "status-page.png")

// The status page in headless Chromium, served by a daemon on loopback:
// it shows the daemon's topics, key, plugins and connectivity; a
// connection appears when a peer daemon forwards through it and goes when
// that peer stops; forwarded bytes reach the services table and the chart;
// the page runs without an exception or a console error (a CSP violation
// is one). UPDATE_SCREENSHOT=1 rewrites docs/status-page.png.
func TestStatusPageInBrowser(t *testing.T) {
	p := newPagePair(t)
	br := startBrowser(t) // after the daemons: its cleanup runs first
	br.navigate("http://" + p.a.obs.Addr() + "/")

	br.waitFor("the page is live", `document.getElementById("live").dataset.state === "ok"`)
	br.waitFor("topics listed", `[...document.querySelectorAll("#topics tbody tr")].map(r => r.dataset.name).sort().join() === "ui-demo,web"`)
	var st struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(get(t, http.DefaultClient, p.status)), &st); err != nil {
		t.Fatal(err)
	}
	br.waitFor("the daemon's key shown", fmt.Sprintf(`document.getElementById("public-key").textContent === %q`, st.PublicKey))
	br.waitFor("plugins listed", `[...document.querySelectorAll("#plugins tbody tr")].some(r => r.dataset.name === "tcp")`)
	br.waitFor("connectivity shown", `document.querySelector('#connectivity dd[data-key="bound"]').textContent === "yes"`)
	br.waitFor("no connection yet", `document.querySelectorAll("#conns tbody tr").length === 0 && !document.getElementById("conns-empty").hidden`)

	p.startB(t)
	h := p.hold(t)
	br.waitFor("the connection appears", `(() => {
		const rows = document.querySelectorAll("#conns tbody tr");
		return rows.length === 1 && rows[0].dataset.transport === "tcp" && rows[0].textContent.includes("inbound") &&
			document.getElementById("conn-count").textContent === "1";
	})()`)

	// traffic over a few polls, for the services table and the chart
	for i := range 6 {
		var polls int
		if err := br.eval(`Number(document.body.dataset.updated) || 0`, &polls); err != nil {
			t.Fatal(err)
		}
		for range 1 + i%3 {
			if err := h.request(); err != nil {
				t.Fatalf("request through the service: %v", err)
			}
		}
		br.waitFor("the next poll", fmt.Sprintf(`Number(document.body.dataset.updated) > %d`, polls))
	}
	br.waitFor("bytes counted for the service", `Number(document.querySelector('#services tbody tr[data-name="web"]').dataset.bytesOut) > 0`)
	br.waitFor("the chart has a rate", `document.getElementById("traffic-rate").textContent.startsWith("in ")`)

	shot := br.screenshot(1100)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() != 1100 || img.Bounds().Dy() < 400 {
		t.Fatalf("screenshot: %v, %v", err, img.Bounds())
	}
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(screenshotPath, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", screenshotPath, len(shot))
	}

	p.stopB()
	br.waitFor("the connection goes when the peer leaves", `document.querySelectorAll("#conns tbody tr").length === 0 && document.getElementById("conn-count").textContent === "0"`)
	br.waitFor("still live", `document.getElementById("live").dataset.state === "ok"`)

	// fields this daemon does not send are rendered when present (a
	// connection's remote key and path, refusals by service, the NAT
	// class) and sections it leaves out do not break the page; render runs
	// synchronously, so the next poll cannot interleave
	var shown struct {
		Key, Path, Refused, NAT string
		Rows                    int
	}
	const doc = `{schema: 1, time: new Date().toISOString(), port: 1, topics: [],
		connections: [{remote: "192.0.2.1:5", remote_key: "ybndrfg8ejkmcpqxot1uwisza345h769ybndrfg8ejkmcpqxot1u", path: "punched", type: "utp", client: true, topics: []}],
		connectivity: {nat_class: "consistent"}, plugins: [],
		traffic: [{name: "web", bytes_in: 1, bytes_out: 2}], refusals: [{service: "web", reason: "key_not_allowed", count: 3}]}`
	if err := br.eval(`(() => {
		render(`+doc+`);
		const c = document.querySelector("#conns tbody tr");
		return {Key: c.dataset.key, Path: c.children[3].textContent, Rows: document.querySelectorAll("#conns tbody tr").length,
			Refused: document.querySelector('#services tbody tr[data-name="web"]').children[3].textContent,
			NAT: document.querySelector('#connectivity dd[data-key="NAT class"]').textContent};
	})()`, &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Rows != 1 || !strings.HasPrefix(shown.Key, "ybndrfg8") || shown.Path != "punched" || shown.Refused != "key_not_allowed 3" || shown.NAT != "consistent" {
		t.Errorf("optional fields rendered as %+v", shown)
	}
	if errs := br.pageErrors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// ErrNotListening: nothing accepts connections on the status address.
var ErrNotListening = errors.New("nothing listens")

// maxStatusBytes bounds the status document a client reads.
const maxStatusBytes = 64 << 20

// StatusURL returns the status endpoint's URL for addr: "HOST:PORT", or a
// base URL "http://HOST:PORT[/prefix]".
func StatusURL(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("empty address")
	}
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("address %q: want HOST:PORT or http://HOST:PORT", addr)
		}
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("address %q: want HOST:PORT or http://HOST:PORT", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + StatusPath
	return u.String(), nil
}

// Fetch GETs the status document from a server at addr (see [StatusURL]) and
// returns it decoded and as received. When nothing listens there the error
// wraps [ErrNotListening].
func Fetch(ctx context.Context, addr string) (*Status, []byte, error) {
	u, err := StatusURL(addr)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	// one request, no pooled connection left behind, no proxy for what is
	// usually a loopback address
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("%w on %s (is the daemon running with --metrics %s?)", ErrNotListening, addr, addr)
		}
		return nil, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: reading the reply: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, body, fmt.Errorf("GET %s: %s: %s", u, resp.Status, clip(strings.TrimSpace(string(body)), 200))
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, body, fmt.Errorf("GET %s: not a status document: %w", u, err)
	}
	if st.Schema != SchemaVersion {
		return &st, body, fmt.Errorf("GET %s: status schema %d, this client reads %d", u, st.Schema, SchemaVersion)
	}
	return &st, body, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Render writes st as readable tables: a summary line, then topics,
// connections, queue, connectivity, plugins and (when any) traffic.
func Render(w io.Writer, st *Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }

	version := st.Version
	if version == "" {
		version = "unknown"
	}
	p("swarm on port %d, version %s, up %s\n", st.Port, version, seconds(st.UptimeSeconds))
	if st.PublicKey != "" {
		mode := "encrypted"
		if st.Plaintext {
			mode = "plaintext"
		}
		p("public key %s (%s)\n", st.PublicKey, mode)
	} else if st.Plaintext {
		p("plaintext (not encrypted)\n")
	}

	p("\nTOPICS (%d)\n", len(st.Topics))
	if len(st.Topics) == 0 {
		p("  (none joined)\n")
	} else {
		p("  TOPIC\tNAME\tANNOUNCE\tLOOKUP\tFLUSHED\tCONNECTIONS\n")
		for _, t := range st.Topics {
			p("  %s\t%s\t%s\t%s\t%s\t%d\n", short(t.Topic), dash(t.Name), yesNo(t.Announce), yesNo(t.Lookup), yesNo(t.Flushed), t.Connections)
		}
	}

	p("\nCONNECTIONS (%d)\n", len(st.Connections))
	if len(st.Connections) == 0 {
		p("  (none open)\n")
	} else {
		p("  REMOTE\tKEY\tTYPE\tPATH\tDIRECTION\tTOPICS\tAGE\n")
		for _, c := range st.Connections {
			topics := make([]string, len(c.Topics))
			for i, t := range c.Topics {
				topics[i] = short(t)
			}
			age := "-"
			if c.OpenedAt != nil {
				age = seconds(c.AgeSeconds)
			}
			p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Remote, dash(c.RemoteKey), c.Type, dash(c.Path), c.Direction(), dash(strings.Join(topics, ",")), age)
		}
	}

	q := st.Queue
	p("\nQUEUE\n")
	p("  TOPICS\tKNOWN\tQUEUED\tDIALING\tCLIENTS\tSERVERS\tBANNED\tUNRESPONSIVE\n")
	p("  %d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", q.Topics, q.Known, q.Queued, q.Dialing, q.Clients, q.Servers, q.Banned, q.Unresponsive)

	c := st.Connectivity
	p("\nCONNECTIVITY\n")
	p("  BOUND\tBOOTSTRAPPED\tHOLEPUNCHABLE\tCONSISTENT\tREPORTERS\tPUBLIC ADDRESSES\tDHT NODES\n")
	dhtNodes := "-"
	if st.DHT != nil && st.DHT.Nodes >= 0 {
		dhtNodes = strconv.Itoa(st.DHT.Nodes)
	}
	p("  %s\t%s\t%s\t%s\t%d\t%s\t%s\n", yesNo(c.Bound), yesNo(c.Bootstrapped), yesNo(c.Holepunchable), yesNo(c.Consistent), c.Reporters, dash(strings.Join(c.PublicAddrs, ",")), dhtNodes)

	if r := st.Relay; r != nil {
		h := r.LimitHits
		p("\nRELAY (relaying for others)\n")
		p("  CLIENTS\tSESSIONS\tSESSIONS TOTAL\tBYTES RELAYED\tANNOUNCED\tLIMITS HIT\n")
		p("  %d\t%d\t%d\t%d\t%d\t%d\n", r.Clients, r.Sessions, r.SessionsTotal, r.BytesRelayed, r.Announced,
			h.Clients+h.Sessions+h.SessionsPerClient+h.Bytes+h.Duration+h.Infohashes)
	}

	p("\nPLUGINS (%d)\n", len(st.Plugins))
	if len(st.Plugins) == 0 {
		p("  (none reported)\n")
	} else {
		p("  KIND\tNAME\tSTATE\tPID\tRESTARTS\tPATH\tLAST ERROR\n")
		for _, pl := range st.Plugins {
			pid := "-"
			if pl.PID > 0 {
				pid = strconv.Itoa(pl.PID)
			}
			restarts := "-"
			if pl.External {
				restarts = strconv.Itoa(pl.Restarts)
			}
			p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", pl.Kind, pl.Name, pl.State, pid, restarts, dash(pl.Path), dash(clip(pl.LastError, 60)))
		}
	}

	if len(st.Traffic) > 0 {
		p("\nTRAFFIC\n")
		p("  NAME\tBYTES IN\tBYTES OUT\n")
		for _, t := range st.Traffic {
			p("  %s\t%d\t%d\n", t.Name, t.BytesIn, t.BytesOut)
		}
	}
	if len(st.Refusals) > 0 {
		p("\nREFUSED BY KEY\n")
		p("  SERVICE\tREASON\tCOUNT\n")
		for _, r := range st.Refusals {
			p("  %s\t%s\t%d\n", r.Service, r.Reason, r.Count)
		}
	}
	return tw.Flush()
}

func short(topic string) string {
	if len(topic) > 8 {
		return topic[:8]
	}
	return topic
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// seconds renders a duration in seconds as "1h2m3s", rounded to the second
// ("0s" under half a second).
func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

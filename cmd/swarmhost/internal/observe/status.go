package observe

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/relay"
)

// Status is the JSON document served on /status (schema version 1). Lists
// are never null. Topics are 64 hex characters (framework.Topic's text
// form); times are RFC 3339.
type Status struct {
	Schema        int       `json:"schema"` // 1
	Version       string    `json:"version,omitempty"`
	Time          time.Time `json:"time"`           // when the document was made
	UptimeSeconds float64   `json:"uptime_seconds"` // since the observer was created
	Port          int       `json:"port"`           // the swarm's listening port
	// PublicKey is the swarm's public key in z-base-32 (secure.PublicKey's
	// text form; absent when Config.PublicKey is unset).
	PublicKey string `json:"public_key,omitempty"`
	// Plaintext: the swarm's connections are not encrypted (--plaintext,
	// node.plaintext).
	Plaintext    bool               `json:"plaintext"`
	Topics       []TopicStatus      `json:"topics"`
	Connections  []ConnStatus       `json:"connections"`
	Queue        QueueStatus        `json:"queue"`
	Connectivity ConnectivityStatus `json:"connectivity"`
	DHT          *DHTStatus         `json:"dht,omitempty"` // absent without a DHT hook
	Plugins      []PluginStatus     `json:"plugins"`
	Traffic      []TrafficStatus    `json:"traffic"` // forwarded bytes by counter name
	// Refusals are the forwarded services' refusals by key, by service
	// and reason (from Config.ServiceRefusals; only non-zero counts).
	Refusals []ServiceRefusal `json:"refusals"`
	// Relay is the daemon's relay server (from Config.Relay; absent when
	// the daemon does not relay for others).
	Relay *RelayStatus `json:"relay,omitempty"`
}

// RelayStatus is what a relay server reports (relay.Stats).
type RelayStatus struct {
	Clients       int            `json:"clients"`        // reservations held now
	Sessions      int            `json:"sessions"`       // relayed connections open now
	SessionsTotal uint64         `json:"sessions_total"` // relayed connections opened
	BytesRelayed  uint64         `json:"bytes_relayed"`  // ciphertext, both directions (per splice chunk)
	Announced     int            `json:"announced"`      // client infohashes announced now
	LimitHits     RelayLimitHits `json:"limit_hits"`
}

// RelayLimitHits counts the times each relay limit refused or cut
// something (relay.Limits).
type RelayLimitHits struct {
	Clients           uint64 `json:"clients"`
	Sessions          uint64 `json:"sessions"`
	SessionsPerClient uint64 `json:"sessions_per_client"`
	Bytes             uint64 `json:"bytes"`
	Duration          uint64 `json:"duration"`
	Infohashes        uint64 `json:"infohashes"`
}

func relayStatus(st relay.Stats) *RelayStatus {
	return &RelayStatus{Clients: st.Clients, Sessions: st.Sessions, SessionsTotal: st.SessionsTotal, BytesRelayed: st.BytesRelayed, Announced: st.Announced,
		LimitHits: RelayLimitHits{Clients: st.LimitClients, Sessions: st.LimitSessions, SessionsPerClient: st.LimitSessionsPerClient,
			Bytes: st.LimitBytes, Duration: st.LimitDuration, Infohashes: st.LimitInfohashes}}
}

// ServiceRefusal is how many connections a forwarded service refused for
// one reason: a serve service's "key_not_allowed" (the remote key is not
// in its allow list) or "no_key" (a plaintext connection), a connect
// service's "server_key_mismatch" (the peer is not its pinned server).
type ServiceRefusal struct {
	Service string `json:"service"`
	Reason  string `json:"reason"`
	Count   uint64 `json:"count"`
}

// SchemaVersion is [Status.Schema]'s current value.
const SchemaVersion = 1

// TopicStatus is a joined topic.
type TopicStatus struct {
	Topic    string `json:"topic"`          // hex
	Name     string `json:"name,omitempty"` // from Server.NameTopic
	Announce bool   `json:"announce"`
	Lookup   bool   `json:"lookup"`
	// Flushed: every discovery has announced the topic (framework
	// FlushedEvent / Swarm.Flushed).
	Flushed bool `json:"flushed"`
	// Connections open that are known to serve the topic (inbound
	// connections do not say which topics they serve).
	Connections int `json:"connections"`
}

// ConnStatus is an open connection.
type ConnStatus struct {
	Remote string `json:"remote"` // remote address
	// RemoteKey is the public key the remote swarm proved in the
	// session's handshake, in z-base-32; absent for a plaintext
	// connection.
	RemoteKey string   `json:"remote_key,omitempty"`
	Local     string   `json:"local"`  // local address
	Type      string   `json:"type"`   // transport: "tcp", "utp", a plugin's name
	Client    bool     `json:"client"` // this swarm dialled it
	Peer      string   `json:"peer,omitempty"`
	Topics    []string `json:"topics"` // hex; empty for inbound connections
	// OpenedAt is when the observer saw the connection open (absent for
	// one it has not seen yet); AgeSeconds is 0 then.
	OpenedAt   *time.Time `json:"opened_at,omitempty"`
	AgeSeconds float64    `json:"age_seconds"`

	// Path is how the connection reaches its peer: "direct", "punched"
	// (a hole punch made the path) or "relayed" (framework.Conn.Path).
	Path string `json:"path"`
}

// Direction returns "outbound" for a connection this swarm dialled,
// "inbound" otherwise (the direction label of the connection metrics).
func (c ConnStatus) Direction() string {
	if c.Client {
		return directionOutbound
	}
	return directionInbound
}

// QueueStatus is framework.Stats.
type QueueStatus struct {
	Topics        int `json:"topics"`        // joined topics
	Known         int `json:"known"`         // peers known to the queue (any state)
	Queued        int `json:"queued"`        // peers ready to be dialled
	Dialing       int `json:"dialing"`       // dials in flight
	Clients       int `json:"clients"`       // open client connections
	Servers       int `json:"servers"`       // open server connections
	Banned        int `json:"banned"`        // banned peers remembered
	Unresponsive  int `json:"unresponsive"`  // unresponsive peers remembered
	Subscriptions int `json:"subscriptions"` // open event subscriptions
}

// ConnectivityStatus is framework.Connectivity.
type ConnectivityStatus struct {
	Bound         bool     `json:"bound"`
	Bootstrapped  bool     `json:"bootstrapped"`
	PublicAddrs   []string `json:"public_addrs"`
	Reporters     int      `json:"reporters"`
	Consistent    bool     `json:"consistent"`
	Holepunchable bool     `json:"holepunchable"`
}

// DHTStatus is what the DHT hook reports.
type DHTStatus struct {
	Nodes int `json:"nodes"` // routing-table size; -1: not started
}

// PluginStatus is one plugin: built-in (in-process) or an out-of-process
// binary with its lifecycle.
type PluginStatus struct {
	Name        string     `json:"name"`
	Kind        string     `json:"kind"` // transport, discovery, validator
	External    bool       `json:"external"`
	Path        string     `json:"path,omitempty"`
	State       string     `json:"state"`         // PluginInProcess, PluginRunning, ...
	PID         int        `json:"pid,omitempty"` // the live instance's
	Restarts    int        `json:"restarts"`
	LastEvent   string     `json:"last_event,omitempty"`
	LastEventAt *time.Time `json:"last_event_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// TrafficStatus is one byte counter's totals.
type TrafficStatus struct {
	Name     string `json:"name"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}

// flushProbe bounds the check that a topic seen flushed still is (a re-join
// starts a new flush): a flushed topic answers at once.
const flushProbe = 50 * time.Millisecond

// Status builds the status document.
func (s *Server) Status(ctx context.Context) *Status {
	now := time.Now()
	st := &Status{
		Schema:        SchemaVersion,
		Version:       s.cfg.Version,
		Time:          now.UTC(),
		UptimeSeconds: now.Sub(s.created).Seconds(),
		Port:          s.sw.Port(),
		Plaintext:     s.cfg.Plaintext,
		Topics:        []TopicStatus{},
		Connections:   []ConnStatus{},
		Plugins:       s.plugins.Status(),
		Traffic:       []TrafficStatus{},
		Refusals:      s.refusals(),
	}

	if !s.cfg.PublicKey.IsZero() {
		st.PublicKey = s.cfg.PublicKey.String()
	}
	conns := s.sw.Connections()
	perTopic := map[framework.Topic]int{}
	s.mu.Lock()
	opened := make([]time.Time, len(conns))
	for i, c := range conns {
		opened[i] = s.conns[c]
	}
	s.mu.Unlock()
	for i, c := range conns {
		cs := ConnStatus{Remote: addrString(c.RemoteAddr()), Local: addrString(c.LocalAddr()), Type: c.Type(), Client: c.Client(), Path: c.Path(), Topics: []string{}}
		if p := c.Peer(); p != nil {
			cs.Peer = p.Addr()
		}
		if k := c.RemotePublicKey(); !k.IsZero() {
			cs.RemoteKey = k.String()
		}
		for _, t := range c.Topics() {
			cs.Topics = append(cs.Topics, t.String())
			perTopic[t]++
		}
		if at := opened[i]; !at.IsZero() {
			u := at.UTC()
			cs.OpenedAt = &u
			cs.AgeSeconds = now.Sub(at).Seconds()
		}
		st.Connections = append(st.Connections, cs)
	}
	slices.SortFunc(st.Connections, func(a, b ConnStatus) int {
		return cmp.Or(-cmp.Compare(a.AgeSeconds, b.AgeSeconds), cmp.Compare(a.Remote, b.Remote))
	})

	topics := s.sw.Topics()
	joined := make(map[framework.Topic]bool, len(topics))
	for _, t := range topics {
		joined[t] = true
	}
	s.mu.Lock()
	for t := range s.flushed {
		if !joined[t] {
			delete(s.flushed, t) // left since
		}
	}
	seenFlushed := make([]bool, len(topics))
	names := make([]string, len(topics))
	for i, t := range topics {
		seenFlushed[i], names[i] = s.flushed[t], s.names[t]
	}
	s.mu.Unlock()
	st.Topics = make([]TopicStatus, 0, len(topics))
	flushed := s.probeFlushed(ctx, topics, seenFlushed)
	for i, t := range topics {
		js, ok := s.sw.Status(t)
		if !ok {
			continue // left meanwhile
		}
		st.Topics = append(st.Topics, TopicStatus{Topic: t.String(), Name: names[i], Announce: js.Announce, Lookup: js.Lookup, Flushed: flushed[i], Connections: perTopic[t]})
	}
	slices.SortFunc(st.Topics, func(a, b TopicStatus) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Topic, b.Topic))
	})

	fs := s.sw.Stats()
	st.Queue = QueueStatus{Topics: fs.Topics, Known: fs.Known, Queued: fs.Queued, Dialing: fs.Dialing, Clients: fs.Clients, Servers: fs.Servers, Banned: fs.Banned, Unresponsive: fs.Unresponsive, Subscriptions: fs.Subscriptions}
	cy := s.sw.Connectivity()
	st.Connectivity = ConnectivityStatus{Bound: cy.Bound, Bootstrapped: cy.Bootstrapped, PublicAddrs: append([]string{}, cy.PublicAddrs...), Reporters: cy.Reporters, Consistent: cy.Consistent, Holepunchable: cy.Holepunchable}
	if f := s.cfg.DHTNodes; f != nil {
		n := f()
		if n < 0 {
			n = -1
		}
		st.DHT = &DHTStatus{Nodes: n}
	}
	if f := s.cfg.Relay; f != nil {
		st.Relay = relayStatus(f())
	}

	s.mu.Lock()
	counters := make(map[string]ByteCounter, len(s.counters))
	for name, bc := range s.counters {
		counters[name] = bc
	}
	s.mu.Unlock()
	for name, bc := range counters {
		st.Traffic = append(st.Traffic, TrafficStatus{Name: name, BytesIn: bc.BytesIn(), BytesOut: bc.BytesOut()})
	}
	slices.SortFunc(st.Traffic, func(a, b TrafficStatus) int { return cmp.Compare(a.Name, b.Name) })
	return st
}

// probeFlushed confirms, in parallel, that the topics seen flushed still
// are; a topic not seen flushed is not (its FlushedEvent may lag by the
// event queue's delay).
func (s *Server) probeFlushed(ctx context.Context, topics []framework.Topic, seen []bool) []bool {
	out := make([]bool, len(topics))
	var wg sync.WaitGroup
	for i, t := range topics {
		if !seen[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, flushProbe)
			defer cancel()
			out[i] = s.sw.Flushed(pctx, t) == nil
		}()
	}
	wg.Wait()
	return out
}

func addrString(a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := json.MarshalIndent(s.Status(r.Context()), "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// refusals reads Config.ServiceRefusals: the non-zero counts, sorted by
// service and reason; never nil.
func (s *Server) refusals() []ServiceRefusal {
	out := []ServiceRefusal{}
	if f := s.cfg.ServiceRefusals; f != nil {
		for _, r := range f() {
			if r.Count > 0 {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b ServiceRefusal) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

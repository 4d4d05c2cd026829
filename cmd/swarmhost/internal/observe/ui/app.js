// swarmhost status page: polls the JSON status document (/status) once a
// second and renders it. Read-only; no external assets; data is inserted as
// text, never as HTML. Fields another daemon version may add or leave out
// (a connection's remote key or path, a service's refusals, the NAT class)
// are rendered when present and shown as unknown otherwise.
"use strict";

const POLL_MS = 1000;
const HISTORY = 120; // samples kept for the traffic chart

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs || {})) tr.dataset[k] = v;
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function fillTable(id, rows) {
  const table = $(id);
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
  table.hidden = rows.length === 0;
  const empty = $(id + "-empty");
  if (empty) empty.hidden = rows.length !== 0;
}

function kv(id, pairs) {
  const dl = $(id);
  const items = [];
  for (const [k, v] of pairs) {
    const dt = el("dt", k);
    const dd = el("dd");
    dd.dataset.key = k;
    if (v instanceof Node) dd.appendChild(v);
    else dd.textContent = String(v);
    items.push(dt, dd);
  }
  dl.replaceChildren(...items);
}

function yesno(b) {
  if (b === undefined || b === null) return el("span", "unknown", "muted");
  return el("span", b ? "yes" : "no", b ? "yes" : "no");
}

function bytes(n) {
  n = Number(n) || 0;
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}

function duration(s) {
  s = Math.max(0, Math.floor(Number(s) || 0));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}

function short(hex) {
  return hex && hex.length > 16 ? hex.slice(0, 8) + "…" + hex.slice(-6) : hex || "";
}

function first(obj, ...keys) {
  for (const k of keys) if (obj && obj[k] !== undefined && obj[k] !== null && obj[k] !== "") return obj[k];
  return undefined;
}

// refusals renders a count or a {reason: count} map.
function refusals(v) {
  if (v === undefined) return el("span", "–", "muted");
  if (typeof v === "number") return el("span", v, v ? "warn" : "");
  if (Array.isArray(v)) return el("span", v.length, v.length ? "warn" : "");
  if (typeof v === "object") {
    const parts = Object.entries(v).map(([k, n]) => k + " " + n);
    const total = Object.values(v).reduce((a, n) => a + (Number(n) || 0), 0);
    return el("span", parts.length ? parts.join(", ") : "0", total ? "warn" : "");
  }
  return el("span", v);
}

function topicState(t) {
  const tags = el("span");
  if (t.announce) tags.appendChild(el("span", "announce", "tag"));
  if (t.lookup) tags.appendChild(el("span", "lookup", "tag"));
  tags.appendChild(el("span", t.flushed ? "flushed" : "flushing", "tag " + (t.flushed ? "yes" : "warn")));
  return tags;
}

function render(st) {
  $("public-key").textContent = st.public_key || "–";
  $("port").textContent = st.port;
  $("version").textContent = st.version || "dev";
  $("uptime").textContent = duration(st.uptime_seconds);
  $("plaintext").hidden = !st.plaintext;

  const topics = st.topics || [];
  const names = {};
  for (const t of topics) names[t.topic] = t.name || short(t.topic);
  $("topic-count").textContent = topics.length;
  fillTable("topics", topics.map((t) => row(
    [t.name || el("span", "(unnamed)", "muted"), el("code", short(t.topic)), topicState(t), t.connections],
    { topic: t.topic, name: t.name || "" })));

  const conns = st.connections || [];
  $("conn-count").textContent = conns.length;
  fillTable("conns", conns.map((c) => {
    const key = first(c, "remote_key", "remote_public_key", "public_key", "key");
    const path = first(c, "path");
    const topicsCell = (c.topics || []).length
      ? (c.topics || []).map((t) => names[t] || short(t)).join(", ")
      : el("span", c.client ? "–" : "(inbound)", "muted");
    return row([
      el("code", c.remote),
      key ? el("code", short(key)) : el("span", "unknown", "muted"),
      c.type,
      path || el("span", "direct", ""),
      c.client ? "outbound" : "inbound",
      topicsCell,
      duration(c.age_seconds),
    ], { remote: c.remote, transport: c.type, key: key || "" });
  }));

  const q = st.queue || {};
  kv("queue", [
    ["known", q.known], ["queued", q.queued], ["dialing", q.dialing],
    ["clients", q.clients], ["servers", q.servers], ["banned", q.banned],
    ["unresponsive", q.unresponsive],
  ]);

  const cy = st.connectivity || {};
  const addrs = cy.public_addrs || [];
  const nat = first(cy, "nat", "nat_class", "nat_type") || first(st, "nat", "nat_class");
  const pairs = [
    ["bound", yesno(cy.bound)],
    ["bootstrapped", yesno(cy.bootstrapped)],
    ["public address", addrs.length ? el("code", addrs.join(", ")) : el("span", "unknown", "muted")],
    ["reporters", cy.reporters === undefined ? "–" : cy.reporters + (cy.consistent ? " (consistent)" : addrs.length ? " (inconsistent)" : "")],
    ["hole-punchable", yesno(cy.holepunchable)],
    ["NAT class", nat ? String(nat) : el("span", "unknown", "muted")],
  ];
  if (st.dht) pairs.push(["DHT nodes", st.dht.nodes < 0 ? "not started" : st.dht.nodes]);
  kv("connectivity", pairs);

  const services = st.services || st.traffic || [];
  // refusals: [{service, reason, count}] (only non-zero counts), or a
  // {service: ...} map from another version
  let refusalMap = {};
  if (Array.isArray(st.refusals)) {
    for (const r of st.refusals) {
      const m = (refusalMap[r.service] = refusalMap[r.service] || {});
      m[r.reason] = (m[r.reason] || 0) + (Number(r.count) || 0);
    }
  } else if (st.refusals && typeof st.refusals === "object") {
    refusalMap = st.refusals;
  }
  const refusalsKnown = st.refusals !== undefined;
  $("service-count").textContent = services.length;
  fillTable("services", services.map((s) => row(
    [s.name, bytes(s.bytes_in), bytes(s.bytes_out), refusals(first(s, "refused", "refusals") ?? refusalMap[s.name] ?? (refusalsKnown ? 0 : undefined))],
    { name: s.name, bytesIn: s.bytes_in || 0, bytesOut: s.bytes_out || 0 })));

  const plugins = st.plugins || [];
  $("plugin-count").textContent = plugins.length;
  fillTable("plugins", plugins.map((p) => {
    const ev = p.last_event ? p.last_event + (p.last_event_at ? " " + new Date(p.last_event_at).toLocaleTimeString() : "") : "";
    const last = el("span", p.last_error ? ev + " — " + p.last_error : ev, p.last_error ? "bad" : "muted");
    const state = el("span", p.state, /running|in-process|inprocess/i.test(p.state || "") ? "yes" : "warn");
    return row([p.name, p.kind, p.external ? "external" + (p.pid ? " pid " + p.pid : "") : "in process", state,
      el("span", p.restarts || 0, p.restarts ? "warn" : ""), last], { name: p.name });
  }));

  sample(st, services);
}

// ---- traffic chart: bytes per second summed over the services ----

const history = [];
let prev = null;

function sample(st, services) {
  let tin = 0, tout = 0;
  for (const s of services) { tin += Number(s.bytes_in) || 0; tout += Number(s.bytes_out) || 0; }
  const t = Date.parse(st.time) || Date.now();
  if (prev && t > prev.t) {
    const dt = (t - prev.t) / 1000;
    history.push({ in: Math.max(0, tin - prev.in) / dt, out: Math.max(0, tout - prev.out) / dt });
    if (history.length > HISTORY) history.shift();
  }
  prev = { t, in: tin, out: tout };
  const last = history[history.length - 1];
  $("traffic-rate").textContent = last ? "in " + bytes(last.in) + "/s · out " + bytes(last.out) + "/s" : "–";
  draw();
}

function draw() {
  const c = $("traffic-chart");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 640, h = c.clientHeight || 140;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const pad = { l: 64, r: 8, t: 8, b: 18 };
  const max = Math.max(1024, ...history.map((p) => Math.max(p.in, p.out)));
  g.strokeStyle = css.getPropertyValue("--line");
  g.fillStyle = css.getPropertyValue("--muted");
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = pad.t + (h - pad.t - pad.b) * (1 - f);
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
    g.fillText(bytes(max * f) + "/s", 2, y + 4);
  }
  g.fillText("−" + HISTORY + " s", pad.l, h - 4);
  g.fillText("now", w - pad.r - 22, h - 4);
  const x = (i) => pad.l + (w - pad.l - pad.r) * (i + HISTORY - history.length) / (HISTORY - 1);
  const y = (v) => pad.t + (h - pad.t - pad.b) * (1 - v / max);
  for (const [k, color] of [["in", "--in"], ["out", "--out"]]) {
    if (history.length < 2) break;
    g.strokeStyle = css.getPropertyValue(color);
    g.lineWidth = 2;
    g.beginPath();
    history.forEach((p, i) => (i ? g.lineTo(x(i), y(p[k])) : g.moveTo(x(i), y(p[k]))));
    g.stroke();
  }
}

// ---- polling ----

let failures = 0;

async function poll() {
  const live = $("live");
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 5000);
    const resp = await fetch("/status", { cache: "no-store", signal: ctl.signal });
    clearTimeout(timer);
    if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
    const st = await resp.json();
    render(st);
    failures = 0;
    live.dataset.state = "ok";
    live.textContent = "live · " + new Date(st.time).toLocaleTimeString();
    document.body.dataset.updated = String((Number(document.body.dataset.updated) || 0) + 1);
  } catch (err) {
    failures++;
    live.dataset.state = "error";
    live.textContent = "daemon unreachable (" + (err && err.message ? err.message : err) + ")";
  }
  setTimeout(poll, failures ? Math.min(POLL_MS * 2 ** failures, 10000) : POLL_MS);
}

window.addEventListener("resize", draw);
poll();

// Lookout dashboard: live feed, per-camera counts, event detail, filters
// and system health. Plain JavaScript, no dependencies.
//
// Correctness of the feed rests on `seq`, one per change of an event
// (new, update, end):
//  * history comes from GET /api/events (each event in its current state,
//    at its latest change's seq), then the WebSocket is opened with
//    ?after_seq=<highest seq loaded>, so changes committed in between are
//    replayed by the server: no gap;
//  * every reconnect resumes from the highest seq received: nothing missed
//    across a webserver restart;
//  * a change at or below that seq is ignored, and a change of an event
//    already shown replaces it in place (upsert by event_id): each event
//    once, in its latest state.

const params = new URLSearchParams(location.search);
// A server started with --token needs it on every API call and the stream.
// Given once as /?token=…, it is kept for this tab and removed from the URL.
if (params.get("token")) {
  sessionStorage.setItem("lookout-token", params.get("token"));
  params.delete("token");
  history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}`);
}
const TOKEN = sessionStorage.getItem("lookout-token");
const FEED_CAP = clampInt(params.get("cap"), 20, 2000, 200);
const HEALTH_EVERY_MS = 3000;
const DETECTOR_EVERY_MS = 5000;
const SPARK_POINTS = 100; // 5 minutes at one sample per 3 s
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
const ANNOUNCE_EVERY_MS = 8000;

const $ = (id) => document.getElementById(id);
const feed = $("feed");

const state = {
  lastSeq: null,          // highest seq received from the server
  shown: new Map(),       // event_id -> its <li> in the feed
  paused: false,
  held: new Map(),        // event_id -> latest state, received while paused
  filter: {},             // active filter (camera_id, label, start, end, q)
  cameras: new Map(),     // camera_id -> { events, lastTimestamp }
  sources: new Map(),     // camera_id -> { state, error } as its detector reports it
  labels: new Set(),
  ws: null,
  attempt: 0,
  retryAt: 0,
  unannounced: [],
  sparks: new Map(),      // metric key -> number[]
};

// ---------- start ----------

init().catch((e) => console.warn("dashboard start failed; retrying", e));

async function init() {
  $("pause").addEventListener("click", togglePause);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); applyFilter(); });
  $("filters").addEventListener("reset", () => setTimeout(applyFilter, 0));
  feed.addEventListener("click", (e) => openFromItem(e.target));
  feed.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openFromItem(e.target); }
  });
  setInterval(refreshRelativeTimes, 1000);
  setInterval(tickConnection, 250);
  setInterval(announce, ANNOUNCE_EVERY_MS);
  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  refreshDetector();
  setInterval(refreshDetector, DETECTOR_EVERY_MS);
  await loadCameras();
  await loadHistory();
  connect();
}

// ---------- history and filters ----------

async function loadHistory() {
  const query = new URLSearchParams({ limit: String(FEED_CAP) });
  for (const [k, v] of Object.entries(state.filter)) if (v) query.set(k, v);
  const page = await getJson(`/api/events?${query}`);
  clearFeed();
  // Oldest first, so the newest ends on top.
  for (const event of page.events.slice().reverse()) addToFeed(event, false);
  // First load (unfiltered): resume the stream from the newest event shown.
  if (state.lastSeq === null) state.lastSeq = page.events.length ? page.events[0].seq : 0;
  updateEmptyNote();
}

async function applyFilter() {
  const form = new FormData($("filters"));
  const filter = {};
  for (const key of ["camera_id", "label", "q"]) {
    const v = String(form.get(key) || "").trim();
    if (v) filter[key] = v;
  }
  for (const key of ["start", "end"]) {
    const v = String(form.get(key) || "");
    if (v) filter[key] = new Date(v).toISOString();
  }
  state.filter = filter;
  const note = $("filter-note");
  const parts = Object.entries(filter).map(([k, v]) => `${k} = ${v}`);
  note.hidden = parts.length === 0;
  note.textContent = parts.length ? `Filtered: ${parts.join(", ")}. Live events that match are added.` : "";
  try {
    await loadHistory();
  } catch (e) {
    note.hidden = false;
    note.textContent = `Could not load filtered history: ${e.message}`;
  }
}

function matches(event) {
  const f = state.filter;
  if (f.camera_id && event.camera_id !== f.camera_id) return false;
  if (f.label && !event.detected_objects.some((o) => o.label === f.label)) return false;
  if (f.start && event.timestamp < f.start) return false;
  if (f.end && event.timestamp > f.end) return false;
  if (f.q) {
    const hay = `${event.description} ${event.camera_id}`.toLowerCase();
    if (!hay.includes(f.q.toLowerCase())) return false;
  }
  return true;
}

// ---------- the WebSocket ----------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const after = state.lastSeq ?? 0;
  const auth = TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/events?after_seq=${after}${auth}`);
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.attempt = 0;
    setConnection("connected", "Live");
  });
  ws.addEventListener("message", (m) => onMessage(ws, m));
  ws.addEventListener("close", (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    scheduleReconnect(e.code === 1008 && e.reason === "slow consumer" ? "fell behind" : "");
  });
}

function onMessage(ws, message) {
  let msg;
  try { msg = JSON.parse(message.data); } catch { return; }
  if (msg.type === "ping") {
    ws.send(JSON.stringify({ type: "pong", timestamp: msg.timestamp }));
  } else if (msg.type === "event") {
    receive(msg.data, msg.change);
  } else if (msg.type === "reset") {
    onReset(msg);
  } else if (msg.type === "error") {
    console.warn("server:", msg.message);
  }
}

// Retention deleted history this page may show: say so, and reload the
// list from what is kept (the replay that follows adds what is newer).
function onReset(msg) {
  const note = $("reset-note");
  note.hidden = false;
  note.textContent = `Older events were deleted by retention (history now starts at seq ${msg.oldest_seq}); the list was reloaded.`;
  loadHistory().catch((e) => console.warn("reload after reset:", e.message));
}

function receive(event, change) {
  if (state.lastSeq !== null && event.seq <= state.lastSeq) return; // already have it
  state.lastSeq = event.seq;
  if (change === "new") countCamera(event);
  if (!matches(event)) return;
  if (change === "new") state.unannounced.push(event);
  if (state.paused && !state.shown.has(event.event_id)) {
    state.held.set(event.event_id, event);
    showHeld();
  } else {
    addToFeed(event, change === "new");
    updateEmptyNote();
  }
}

function scheduleReconnect(why) {
  state.attempt += 1;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (state.attempt - 1));
  const delay = base / 2 + Math.random() * base / 2; // jitter
  state.retryAt = Date.now() + delay;
  state.retryWhy = why;
  setTimeout(connect, delay);
  tickConnection();
}

function tickConnection() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) return;
  if (!state.retryAt) return;
  const secs = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
  const offline = !navigator.onLine || state.attempt > 5;
  const why = state.retryWhy ? ` (${state.retryWhy})` : "";
  if (secs === 0) setConnection(offline ? "offline" : "reconnecting", "Reconnecting…");
  else setConnection(offline ? "offline" : "reconnecting", `${offline ? "Offline" : "Reconnecting"} in ${secs} s${why}`);
}

function setConnection(kind, text) {
  const el = $("conn");
  el.dataset.state = kind;
  el.className = `pill ${kind === "connected" ? "pill--ok" : kind === "offline" ? "pill--bad" : "pill--wait"}`;
  if ($("conn-text").textContent !== text) $("conn-text").textContent = text;
}

// ---------- the feed ----------

// Adds an event, or replaces the one with its event_id in place (an
// update or end of an event already shown).
function addToFeed(event, fresh) {
  const shown = state.shown.get(event.event_id);
  if (shown && Number(shown.dataset.seq) >= event.seq) return;
  rememberLabels(event);
  const li = document.createElement("li");
  li.className = fresh ? "event fresh" : "event";
  li.dataset.state = event.state;
  li.tabIndex = 0;
  li.dataset.seq = String(event.seq);
  li.dataset.eventId = event.event_id;
  li.eventData = event;
  li.setAttribute("aria-label", `${event.camera_id}: ${event.description}`);

  const when = el("div", "when");
  const t = el("time");
  t.dateTime = event.timestamp;
  t.textContent = new Date(event.timestamp).toLocaleTimeString();
  t.title = new Date(event.timestamp).toLocaleString();
  const ago = el("span", "ago");
  ago.dataset.ts = event.timestamp;
  ago.textContent = relative(event.timestamp);
  when.append(t, ago);
  // How long it lasted; while active, a running duration and a badge.
  const lasted = el("span", "lasted");
  lasted.dataset.start = event.timestamp;
  if (event.state === "active") {
    lasted.dataset.running = "";
    when.append(el("span", "badge-live", "in progress"));
  } else {
    lasted.dataset.end = event.end_time;
  }
  lasted.textContent = duration(lasted);
  when.append(lasted);

  const what = el("div", "what");
  const camera = el("span", "camera", event.camera_id);
  const chips = el("span", "chips");
  for (const o of event.detected_objects) {
    chips.append(el("span", "chip", `${o.label} ${Math.round(o.confidence * 100)}%`));
  }
  what.append(camera, chips, el("span", "desc", event.description));
  li.append(when, what);

  state.shown.set(event.event_id, li);
  if (shown) {
    shown.replaceWith(li); // in place: the reader's place in the list stays
    if ($("detail").open && $("detail").dataset.eventId === event.event_id) openDetail(event);
    return;
  }
  // Keep newest on top even if history and live interleave.
  let before = feed.firstElementChild;
  while (before && Number(before.dataset.seq) > event.seq) before = before.nextElementSibling;
  feed.insertBefore(li, before);
  while (feed.children.length > FEED_CAP) {
    const last = feed.lastElementChild;
    state.shown.delete(last.dataset.eventId);
    last.remove();
  }
}

// "12 s", "3 min 4 s": from the start to the end, or to now while running.
function duration(span) {
  const end = span.dataset.end ? Date.parse(span.dataset.end) : Date.now();
  const secs = Math.max(0, Math.round((end - Date.parse(span.dataset.start)) / 1000));
  if (!span.dataset.end && !("running" in span.dataset)) return "";
  if (secs === 0 && span.dataset.end) return "";
  return secs < 60 ? `${secs} s` : `${Math.floor(secs / 60)} min ${secs % 60} s`;
}

function clearFeed() {
  feed.replaceChildren();
  state.shown.clear();
  state.held.clear();
  showHeld();
}

function updateEmptyNote() {
  $("feed-empty").hidden = feed.children.length > 0;
}

function togglePause() {
  state.paused = !state.paused;
  const button = $("pause");
  button.setAttribute("aria-pressed", String(state.paused));
  button.textContent = state.paused ? "Resume" : "Pause";
  if (!state.paused) {
    for (const event of state.held.values()) addToFeed(event, true);
    state.held.clear();
    showHeld();
    updateEmptyNote();
  }
}

function showHeld() {
  const badge = $("paused-badge");
  badge.hidden = state.held.size === 0;
  badge.textContent = `${state.held.size} new while paused`;
}

function refreshRelativeTimes() {
  for (const span of feed.querySelectorAll(".ago")) span.textContent = relative(span.dataset.ts);
  for (const span of feed.querySelectorAll(".lasted[data-running]")) span.textContent = duration(span);
}

// Screen readers get a short summary now and then, not every event.
function announce() {
  const n = state.unannounced.length;
  if (!n) return;
  const latest = state.unannounced[n - 1];
  state.unannounced = [];
  $("announcer").textContent = n === 1
    ? `New event at ${latest.camera_id}: ${latest.description}`
    : `${n} new events. Latest at ${latest.camera_id}: ${latest.description}`;
}

// ---------- cameras ----------

async function loadCameras() {
  const cameras = await getJson("/api/cameras");
  for (const c of cameras) state.cameras.set(c.camera_id, { events: c.events, lastTimestamp: c.last_timestamp });
  renderCameras();
}

function countCamera(event) {
  const c = state.cameras.get(event.camera_id) || { events: 0, lastTimestamp: null };
  c.events += 1;
  if (!c.lastTimestamp || event.timestamp > c.lastTimestamp) c.lastTimestamp = event.timestamp;
  state.cameras.set(event.camera_id, c);
  renderCameras();
}

/** A stage time for the camera list: 0.42 ms, 12 ms, 1.2 s. */
function formatMs(ms) {
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(2)} ms`;
}

function renderCameras() {
  const body = $("cameras");
  const rows = [...state.cameras.entries()].sort(([a], [b]) => a.localeCompare(b));
  body.replaceChildren(...rows.map(([id, c]) => {
    const tr = document.createElement("tr");
    tr.dataset.camera = id;
    const last = el("td", "", "");
    if (c.lastTimestamp) {
      const t = el("time", "", new Date(c.lastTimestamp).toLocaleTimeString());
      t.dateTime = c.lastTimestamp;
      last.append(t);
    } else {
      last.textContent = "—";
    }
    const name = el("td", "", id);
    const source = state.sources.get(id);
    if (source && source.state !== "up") {
      // A camera whose source is down (or whose file ended) says so.
      const tag = el("span", `source source--${source.state}`, source.state);
      if (source.error) tag.title = source.error;
      name.append(" ", tag);
    }
    // Analysis stages at p50 (motion on every frame, detect on frames with
    // motion), the waits for ffmpeg left out.
    const stages = ((source && source.stages) || []).filter((t) => t.stage !== "decode_wait" && t.ms.count > 0);
    if (stages.length) {
      const line = el("small", "stages", stages.map((t) => `${t.stage} ${formatMs(t.ms.p50)}`).join(" · "));
      line.title = "p50 per frame of each analysis stage";
      name.append(line);
    }
    tr.append(name, el("td", "num", String(c.events)), last);
    return tr;
  }));
  const select = $("f-camera");
  const known = new Set([...select.options].map((o) => o.value));
  for (const [id] of rows) {
    if (!known.has(id)) select.append(new Option(id, id));
  }
}

function rememberLabels(event) {
  for (const o of event.detected_objects) {
    if (!state.labels.has(o.label)) {
      state.labels.add(o.label);
      $("known-labels").append(new Option(o.label));
    }
  }
}

// ---------- detail ----------

function openFromItem(target) {
  const li = target.closest && target.closest("li.event");
  if (li && li.eventData) openDetail(li.eventData);
}

function openDetail(event) {
  $("detail-title").textContent = `${event.camera_id} · ${new Date(event.timestamp).toLocaleString()}`;
  const fields = $("detail-fields");
  const rows = [
    ["Description", event.description],
    ["Camera", event.camera_id],
    ["Seen", `${new Date(event.timestamp).toLocaleString()} (${event.timestamp})`],
    ["State", event.state === "active" ? "in progress" : `ended ${event.end_time}${event.metadata.end_reason ? ` (${event.metadata.end_reason})` : ""}`],
    ["Committed", event.created_at],
    ["Updated", event.updated_at],
    ["Sequence", String(event.seq)],
    ["Event id", event.event_id],
    ["Motion", `${Math.round(event.motion_confidence * 100)}%`],
    ["Objects", event.detected_objects.length
      ? event.detected_objects.map((o) => `${o.label} ${Math.round(o.confidence * 100)}% at ${o.bbox.x},${o.bbox.y} ${o.bbox.width}×${o.bbox.height}`).join("; ")
      : "none"],
    ["Inference", event.metadata.inference_ms == null ? "—" : `${event.metadata.inference_ms} ms`],
    ["Frame", event.metadata.frame_number == null ? "—" : String(event.metadata.frame_number)],
    ["Source", `${event.metadata.source}${event.metadata.producer ? ` (${event.metadata.producer})` : ""}`],
    ["Snapshot", event.image_path || "none"],
  ];
  fields.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  $("detail-json").textContent = JSON.stringify(event, null, 2);
  $("detail").dataset.eventId = event.event_id;
  renderFrame(event);
  $("detail").showModal();
}

// Boxes over the snapshot when there is one; otherwise over a schematic
// frame sized to hold them, so their placement is still visible.
function renderFrame(event) {
  const figure = $("detail-figure");
  figure.replaceChildren();
  const boxes = event.detected_objects;
  if (event.image_path) {
    const img = document.createElement("img");
    img.alt = `Snapshot from ${event.camera_id}`;
    // An <img> cannot send an Authorization header: the token goes in the query.
    // ?v=seq: each change of the event is a new URL, so an update's better
    // snapshot is never hidden by a cached earlier one.
    const auth = TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : "";
    img.src = `/api/events/${encodeURIComponent(event.event_id)}/image?v=${event.seq}${auth}`;
    img.addEventListener("load", () => figure.append(overlay(boxes, img.naturalWidth, img.naturalHeight, "overlay")));
    img.addEventListener("error", () => { img.remove(); schematic(figure, boxes, "snapshot unavailable"); });
    figure.append(img);
  } else {
    schematic(figure, boxes, "no snapshot: boxes on a schematic frame");
  }
}

function schematic(figure, boxes, caption) {
  const w = Math.max(1920, ...boxes.map((b) => b.bbox.x + b.bbox.width));
  const h = Math.max(1080, ...boxes.map((b) => b.bbox.y + b.bbox.height));
  figure.append(overlay(boxes, w, h, ""), el("figcaption", "", caption));
}

function overlay(boxes, width, height, cls) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", boxes.length ? `${boxes.length} detected objects` : "no detected objects");
  if (cls) svg.setAttribute("class", cls);
  // Labels scale with the frame: a 320-px snapshot and a 1920-px schematic
  // both show them at about the same size on screen.
  const fontSize = width / 64;
  for (const o of boxes) {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("class", "box");
    for (const [k, v] of [["x", o.bbox.x], ["y", o.bbox.y], ["width", o.bbox.width], ["height", o.bbox.height]]) r.setAttribute(k, String(v));
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", String(o.bbox.x + fontSize / 6));
    t.setAttribute("y", String(Math.max(fontSize, o.bbox.y - fontSize / 5)));
    t.setAttribute("font-size", String(fontSize));
    t.textContent = `${o.label} ${Math.round(o.confidence * 100)}%`;
    svg.append(r, t);
  }
  return svg;
}

// ---------- system health ----------

const TILES = [
  { key: "cpu", label: "CPU", unit: "%", warn: 50, bad: 85, get: (m) => m.process.cpu_percent },
  { key: "rss", label: "Memory", unit: "MB", warn: 512, bad: 2048, get: (m) => m.process.rss_bytes / 1048576 },
  { key: "clients", label: "WebSocket clients", unit: "", get: (m) => m.websocket.connections.current },
  { key: "rate", label: "Events/s", unit: "", get: (m) => m.events.per_second },
  { key: "p99", label: "Broadcast p99", unit: "ms", warn: 100, bad: 500, get: (m) => m.events.broadcast_latency_ms.p99 },
  { key: "inf50", label: "Inference p50", unit: "ms", warn: 100, bad: 250, get: (m) => maxOf(m.detectors, (d) => d.inference_ms.p50) },
  { key: "inf95", label: "Inference p95", unit: "ms", warn: 150, bad: 400, get: (m) => maxOf(m.detectors, (d) => d.inference_ms.p95) },
  // A slow disk (an SD card, a busy NAS) shows here first: every event waits for its commit.
  { key: "commit99", label: "Commit p99", unit: "ms", warn: 20, bad: 100, get: (m) => maxOf(m.detectors, (d) => d.commit_ms.p99) },
  { key: "slow", label: "Slow-consumer closes", unit: "", warn: 1, bad: 10, get: (m) => m.websocket.connections.slow_consumer_closes },
];

async function refreshHealth() {
  let metrics;
  try { metrics = await getJson("/api/metrics"); } catch { return; }
  const dl = $("health");
  dl.dataset.updated = String(Date.now());
  if (!dl.children.length) {
    for (const t of TILES) {
      const div = el("div", "tile");
      div.dataset.metric = t.key;
      const dt = el("dt", "", t.label);
      const dd = el("dd");
      div.append(dt, dd, sparkSvg());
      dl.append(div);
    }
  }
  for (const t of TILES) {
    const value = Number(t.get(metrics) ?? 0);
    const tile = dl.querySelector(`[data-metric="${t.key}"]`);
    const dd = tile.querySelector("dd");
    dd.dataset.value = String(value);
    dd.textContent = `${format(value)}${t.unit ? ` ${t.unit}` : ""}`;
    tile.className = `tile ${t.bad !== undefined ? (value >= t.bad ? "bad" : value >= t.warn ? "warn" : "ok") : ""}`;
    const series = state.sparks.get(t.key) || [];
    series.push(value);
    if (series.length > SPARK_POINTS) series.shift();
    state.sparks.set(t.key, series);
    drawSpark(tile.querySelector("svg"), series);
  }
}

async function refreshDetector() {
  let health;
  try { health = await getJson("/api/health"); } catch {
    setPill("detector", "bad", "Detector: unknown (server unreachable)");
    return;
  }
  const links = health.detectors || [];
  // Camera sources as the detectors report them (state, last error); a
  // camera with no event yet still gets its row.
  state.sources.clear();
  for (const link of links) {
    for (const c of (link.stats && link.stats.cameras) || []) {
      state.sources.set(c.camera_id, { state: c.state, error: c.last_error, stages: c.stages || [] });
      if (!state.cameras.has(c.camera_id)) state.cameras.set(c.camera_id, { events: 0, lastTimestamp: null });
    }
  }
  renderCameras();
  const up = links.filter((d) => d.connected);
  if (links.length && up.length === links.length) {
    const names = up.map((d) => d.detector).join(", ");
    setPill("detector", "ok", `Detector: connected (${names})`);
  } else if (up.length) {
    setPill("detector", "wait", `Detectors: ${up.length} of ${links.length} connected`);
  } else {
    setPill("detector", "bad", "Detector: not connected");
  }
}

function setPill(id, kind, text) {
  $(id).className = `pill pill--${kind}`;
  $(`${id}-text`).textContent = text;
}

function sparkSvg() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${SPARK_POINTS - 1} 28`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "spark");
  svg.append(document.createElementNS(ns, "polyline"));
  return svg;
}

function drawSpark(svg, series) {
  const max = Math.max(...series, 1e-9);
  const offset = SPARK_POINTS - series.length;
  const points = series.map((v, i) => `${offset + i},${(27 - (v / max) * 25).toFixed(1)}`).join(" ");
  svg.firstChild.setAttribute("points", points);
}

// ---------- helpers ----------

async function getJson(url) {
  const headers = { accept: "application/json" };
  if (TOKEN) headers.authorization = `Bearer ${TOKEN}`;
  const response = await fetch(url, { headers });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function el(tag, cls = "", text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function relative(ts) {
  const secs = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}

function format(v) {
  if (!Number.isFinite(v)) return "—";
  if (Math.abs(v) >= 100) return String(Math.round(v));
  return v.toFixed(1).replace(/\.0$/, "");
}

function maxOf(items, get) {
  return items.length ? Math.max(...items.map(get)) : 0;
}

function clampInt(text, min, max, fallback) {
  const n = Number.parseInt(text ?? "", 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

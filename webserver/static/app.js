// Lookout dashboard: camera tiles, the event list (live at the top, all of
// history below), filters kept in the URL, event detail with its history,
// browser notifications and system health. Plain JavaScript, no
// dependencies.
//
// Correctness of the list rests on `seq`, one per change of an event
// (new, update, end):
//  * history comes from GET /api/events (each event in its current state,
//    at its latest change's seq), then the WebSocket is opened with
//    ?after_seq=<the newest change loaded>, so changes committed in between
//    are replayed by the server: no gap;
//  * every reconnect resumes from the highest seq received: nothing missed
//    across a webserver restart;
//  * a change at or below that seq is ignored, and a change of an event
//    already shown replaces it in place (upsert by event_id): each event
//    once, in its latest state;
//  * scrolling down pages back with `before_seq` = the previous page's
//    `next_before_seq`, with the same filters, until the beginning.
//
// The reader's place is kept: a new event is put at the top only while the
// top of the list is in view; otherwise it waits behind an "N new" chip.

const params = new URLSearchParams(location.search);
// A server started with --token needs it on every API call and the stream.
// Given once as /?token=…, it is kept for this tab and removed from the URL.
if (params.get("token")) {
  sessionStorage.setItem("lookout-token", params.get("token"));
  params.delete("token");
  history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}${location.hash}`);
}
const TOKEN = sessionStorage.getItem("lookout-token");
const FEED_CAP = clampInt(params.get("cap"), 20, 2000, 200);
const PAGE = 100;
const HEALTH_EVERY_MS = 3000;
const DETECTOR_EVERY_MS = 5000;
const CAMERAS_EVERY_MS = 60000;
const SPARK_POINTS = 100; // 5 minutes at one sample per 3 s
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
const ANNOUNCE_EVERY_MS = 8000;
const THUMB = { width: 112, height: 63 };
// About a screenful of list items: their pictures are fetched without waiting for layout.
const EAGER_THUMBNAILS = 12;
// Changes replayed after a long disconnection are history, not news.
const NOTIFY_WITHIN_MS = 5 * 60 * 1000;
const NOTIFY_KEY = "lookout-notify";

const $ = (id) => document.getElementById(id);
const feed = $("feed");

const state = {
  lastSeq: null,          // highest seq received from the server
  shown: new Map(),       // event_id -> its <li> in the list
  paused: false,
  held: new Map(),        // event_id -> latest state, waiting (paused, or the reader scrolled away)
  heldOverflow: false,    // more waited than the cap: showing them means reloading
  filter: readFilter(params),
  older: { next: null, done: false, loading: false },
  generation: 0,          // bumped at each (re)load, so a stale page is dropped
  endWatch: null,         // observes the end of the list: scrolled near it, older pages load
  cameras: new Map(),     // camera_id -> { events, today, active, lastTimestamp, image }
  tiles: new Map(),       // camera_id -> its tile's elements
  sources: new Map(),     // camera_id -> { state, error, stages } as its detector reports it
  labels: new Set(),
  ws: null,
  attempt: 0,
  retryAt: 0,
  unannounced: [],
  sparks: new Map(),      // metric key -> number[]
  detailId: null,
  notify: loadNotifySettings(),
  notified: new Set(),    // event ids a notification was shown for
  lastNotified: new Map(), // camera_id -> time of its last notification
  audio: null,
};

// ---------- start ----------

init().catch((e) => console.warn("dashboard start failed", e));

async function init() {
  $("pause").addEventListener("click", togglePause);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); applyFilter(filterFromForm()); });
  $("filters").addEventListener("reset", () => setTimeout(() => applyFilter(emptyFilter()), 0));
  $("new-chip").addEventListener("click", () => { feed.scrollIntoView({ block: "start" }); showHeld(); });
  feed.addEventListener("click", (e) => openFromItem(e.target));
  feed.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openFromItem(e.target); }
  });
  setUpPreview();
  setUpDetail();
  setUpNotifications();
  addEventListener("scroll", onScroll, { passive: true });
  state.endWatch = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadOlder();
  }, { rootMargin: "600px 0px" });
  state.endWatch.observe($("feed-end"));
  setInterval(refreshRelativeTimes, 1000);
  setInterval(tickConnection, 250);
  setInterval(announce, ANNOUNCE_EVERY_MS);
  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  refreshDetector();
  setInterval(refreshDetector, DETECTOR_EVERY_MS);
  setInterval(() => loadCameras().catch(() => {}), CAMERAS_EVERY_MS);
  // On a phone the list comes first: the filters fold away unless in use.
  if (matchMedia("(max-width: 560px)").matches && !isFiltered(state.filter)) $("filters-box").open = false;
  showFilter();
  await Promise.all([loadCameras(), loadHistory()]);
  performance.mark("lookout:history"); // for scripts/dashboard_bench.sh
  showFilter();
  connect();
  await openPermalink();
}

// ---------- filters, and the URL that keeps them ----------

function emptyFilter() {
  return { cameras: [], labels: [], min: null, start: null, end: null, q: "" };
}

/** The filter a URL's query names (`camera_id=a,b&label=person&min_confidence=0.6…`). */
function readFilter(query) {
  const list = (key) => (query.get(key) || "").split(",").map((s) => s.trim()).filter(Boolean);
  const time = (key) => {
    const t = Date.parse(query.get(key) || "");
    return Number.isFinite(t) ? new Date(t).toISOString() : null;
  };
  const min = Number.parseFloat(query.get("min_confidence") ?? "");
  return {
    cameras: list("camera_id"),
    labels: list("label"),
    min: Number.isFinite(min) && min > 0 && min <= 1 ? min : null,
    start: time("start"),
    end: time("end"),
    q: (query.get("q") || "").trim(),
  };
}

/** The API's (and the page URL's) query for a filter. */
function filterQuery(f) {
  const query = new URLSearchParams();
  if (f.cameras.length) query.set("camera_id", f.cameras.join(","));
  if (f.labels.length) query.set("label", f.labels.join(","));
  if (f.min !== null) query.set("min_confidence", String(f.min));
  if (f.start) query.set("start", f.start);
  if (f.end) query.set("end", f.end);
  if (f.q) query.set("q", f.q);
  return query;
}

function isFiltered(f) {
  return filterQuery(f).size > 0;
}

/** The page's URL for its filters, open event and feed cap. */
function pageUrl(eventId = state.detailId) {
  const query = filterQuery(state.filter);
  if (params.get("cap")) query.set("cap", params.get("cap"));
  const hash = eventId ? `#/events/${encodeURIComponent(eventId)}` : "";
  return `${location.pathname}${query.size ? `?${query}` : ""}${hash}`;
}

function filterFromForm() {
  const form = new FormData($("filters"));
  const localTime = (key) => {
    const v = String(form.get(key) || "");
    return v ? new Date(v).toISOString() : null;
  };
  const min = Number.parseFloat(String(form.get("min_confidence") || ""));
  return {
    cameras: form.getAll("camera").map(String),
    labels: form.getAll("label").map(String),
    min: Number.isFinite(min) && min > 0 ? Math.min(100, min) / 100 : null,
    start: localTime("start"),
    end: localTime("end"),
    q: String(form.get("q") || "").trim(),
  };
}

async function applyFilter(filter) {
  state.filter = filter;
  history.replaceState(null, "", pageUrl());
  showFilter();
  try {
    await loadHistory();
  } catch (e) {
    $("filter-note").hidden = false;
    $("filter-note").textContent = `Could not load filtered history: ${e.message}`;
  }
}

/** The form, the camera tiles and the note, as the filter is. */
function showFilter() {
  const f = state.filter;
  renderChoices($("f-cameras"), "camera", [...state.cameras.keys(), ...f.cameras], f.cameras);
  renderChoices($("f-labels"), "label", [...state.labels, ...f.labels], f.labels);
  $("f-min").value = f.min === null ? "" : String(Math.round(f.min * 100));
  $("f-start").value = f.start ? localInput(f.start) : "";
  $("f-end").value = f.end ? localInput(f.end) : "";
  $("f-q").value = f.q;
  for (const [id, tile] of state.tiles) tile.button.setAttribute("aria-pressed", String(f.cameras.includes(id)));
  const parts = [];
  if (f.cameras.length) parts.push(`cameras ${f.cameras.join(", ")}`);
  if (f.labels.length) parts.push(`labels ${f.labels.join(", ")}`);
  if (f.min !== null) parts.push(`score ≥ ${Math.round(f.min * 100)}%`);
  if (f.start) parts.push(`from ${dateTime(f.start)}`);
  if (f.end) parts.push(`to ${dateTime(f.end)}`);
  if (f.q) parts.push(`text "${f.q}"`);
  const note = $("filter-note");
  note.hidden = parts.length === 0;
  note.textContent = parts.length ? `Filtered: ${parts.join("; ")}. Live events that match are added.` : "";
}

/** Checkbox chips named `name`, one per value, the `checked` ones ticked. */
function renderChoices(container, name, values, checked) {
  const wanted = [...new Set(values)].sort((a, b) => a.localeCompare(b));
  const have = [...container.querySelectorAll("input")].map((i) => i.value);
  if (wanted.join("\n") !== have.join("\n")) {
    container.replaceChildren(...wanted.map((value) => {
      const label = el("label", "chip-toggle");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = name;
      input.value = value;
      label.append(input, ` ${value}`);
      return label;
    }));
  }
  for (const input of container.querySelectorAll("input")) input.checked = checked.includes(input.value);
}

function matches(event) {
  const f = state.filter;
  if (f.cameras.length && !f.cameras.includes(event.camera_id)) return false;
  if (f.labels.length || f.min !== null) {
    const passes = (o) => (!f.labels.length || f.labels.includes(o.label)) && (f.min === null || o.confidence >= f.min);
    if (!event.detected_objects.some(passes)) return false;
  }
  if (f.start && event.timestamp < f.start) return false;
  if (f.end && event.timestamp > f.end) return false;
  if (f.q) {
    const hay = `${event.description} ${event.camera_id}`.toLowerCase();
    if (!hay.includes(f.q.toLowerCase())) return false;
  }
  return true;
}

// ---------- history: the first page, then older pages on scrolling ----------

async function loadHistory() {
  const generation = ++state.generation;
  const query = filterQuery(state.filter);
  query.set("limit", String(Math.min(FEED_CAP, 1000)));
  const page = await getJson(`/api/events?${query}`);
  // The stream resumes from the newest change of all, filtered or not.
  let head = null;
  if (state.lastSeq === null) {
    const newest = isFiltered(state.filter) ? (await getJson("/api/events?limit=1")).events : page.events;
    head = newest.length ? newest[0].seq : 0;
  }
  if (generation !== state.generation) return;
  if (head !== null) state.lastSeq = head;
  clearFeed();
  // The first screenful's pictures are asked for at once, before layout
  // (lazy ones wait for it); the rest as they near the screen.
  page.events.forEach((event, i) => appendItem(event, i < EAGER_THUMBNAILS));
  state.older = { next: page.next_before_seq, done: page.next_before_seq === null, loading: false };
  showFeedEnd();
  updateEmptyNote();
  watchEnd();
}

async function loadOlder() {
  const older = state.older;
  if (older.loading || older.done || older.next === null) return;
  older.loading = true;
  showFeedEnd();
  const generation = state.generation;
  const query = filterQuery(state.filter);
  query.set("before_seq", String(older.next));
  query.set("limit", String(PAGE));
  let page;
  try {
    page = await getJson(`/api/events?${query}`);
  } catch (e) {
    older.loading = false;
    $("feed-end").textContent = `Could not load older events (${e.message}); scroll to try again.`;
    return;
  }
  if (generation !== state.generation) return;
  for (const event of page.events) appendItem(event);
  Object.assign(older, { next: page.next_before_seq, done: page.next_before_seq === null, loading: false });
  showFeedEnd();
  updateEmptyNote();
  watchEnd();
}

/**
 * Asks again whether the end of the list is near the screen: an observer
 * only speaks when that changes, and a page that leaves it in view needs
 * the next one. Answered after the next layout, never forcing one now.
 */
function watchEnd() {
  state.endWatch.unobserve($("feed-end"));
  state.endWatch.observe($("feed-end"));
}

function showFeedEnd() {
  const end = $("feed-end");
  end.dataset.state = state.older.loading ? "loading" : state.older.done ? "done" : "more";
  end.textContent = state.older.loading ? "Loading older events…"
    : state.older.done && feed.children.length ? "The beginning of history." : "";
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
  trackCamera(event, change);
  notifyIfWanted(event, change);
  if (!matches(event)) return;
  if (change === "new") state.unannounced.push(event);
  const shown = state.shown.get(event.event_id);
  if (shown) {
    replaceItem(shown, event); // in place: the reader's place in the list stays
  } else if (state.paused || !atTop()) {
    hold(event);
  } else {
    if (state.held.size) showHeld();
    insertItem(event, true);
    trimToCap();
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

// ---------- the list ----------

/** Whether the top of the list is in view: only then do new events go in. */
function atTop() {
  return feed.getBoundingClientRect().top >= -8;
}

/** A new event the reader is not looking at: it waits behind the chip. */
function hold(event) {
  state.held.delete(event.event_id);
  state.held.set(event.event_id, event);
  if (state.held.size > FEED_CAP) {
    state.held.delete(state.held.keys().next().value);
    state.heldOverflow = true;
  }
  showHeldCount();
}

/** Puts what waited at the top of the list. */
function showHeld() {
  if (state.paused) return;
  if (state.heldOverflow) {
    state.held.clear();
    state.heldOverflow = false;
    showHeldCount();
    loadHistory().catch((e) => console.warn("reload:", e.message));
    return;
  }
  const waiting = [...state.held.values()].sort((a, b) => a.seq - b.seq);
  state.held.clear();
  for (const event of waiting) {
    const shown = state.shown.get(event.event_id);
    if (shown) replaceItem(shown, event);
    else insertItem(event, true);
  }
  trimToCap();
  showHeldCount();
  updateEmptyNote();
}

function showHeldCount() {
  const n = state.held.size + (state.heldOverflow ? "+" : "");
  const badge = $("paused-badge");
  badge.hidden = !state.paused || state.held.size === 0;
  badge.textContent = `${n} new while paused`;
  const chip = $("new-chip");
  chip.hidden = state.paused || state.held.size === 0;
  chip.textContent = `↑ ${n} new`;
}

let scrollQueued = false;
function onScroll() {
  if (scrollQueued) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    if (!state.paused && state.held.size && atTop()) showHeld();
    hidePreview();
  });
}

/** A list item for `event`; its picture fetched at once if `eager`. */
function renderItem(event, fresh, eager = false) {
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
  t.textContent = clock(event.timestamp);
  t.title = dateTime(event.timestamp);
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
  li.append(thumbnail(event, eager), when, what);
  return li;
}

/** The event's snapshot, small, fetched only when near the screen; a placeholder without one. */
function thumbnail(event, eager = false) {
  const box = el("div", "thumb");
  if (!event.image_path) {
    box.append(placeholder("No snapshot"));
    return box;
  }
  const img = document.createElement("img");
  img.loading = eager ? "eager" : "lazy";
  img.decoding = "async";
  img.width = THUMB.width;
  img.height = THUMB.height;
  img.alt = `Snapshot: ${pictureWords(event)}`;
  img.src = imageUrl(event);
  img.addEventListener("error", () => box.replaceChildren(placeholder("Snapshot unavailable")), { once: true });
  box.append(img);
  return box;
}

function placeholder(words) {
  const span = el("span", "thumb-none", "◉");
  span.setAttribute("role", "img");
  span.setAttribute("aria-label", words);
  span.title = words;
  return span;
}

/** "person, dog at front_door, 14:02:11": what a picture shows, for its alt text. */
function pictureWords(event) {
  const labels = [...new Set(event.detected_objects.map((o) => o.label))].join(", ") || "motion";
  return `${labels} at ${event.camera_id}, ${clock(event.timestamp)}`;
}

/** The snapshot's URL at this change: a new URL per change, so never a stale cached picture. */
function imageUrl(event, seq = event.seq) {
  // An <img> cannot send an Authorization header: the token goes in the query.
  const auth = TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : "";
  return `/api/events/${encodeURIComponent(event.event_id)}/image?v=${seq}${auth}`;
}

/** A new event at the top (or by seq, should history and live interleave). */
function insertItem(event, fresh) {
  const li = renderItem(event, fresh);
  state.shown.set(event.event_id, li);
  let before = feed.firstElementChild;
  while (before && Number(before.dataset.seq) > event.seq) before = before.nextElementSibling;
  feed.insertBefore(li, before);
}

/** An older event, from a history page, at the bottom. */
function appendItem(event, eager = false) {
  if (state.shown.has(event.event_id)) return;
  const li = renderItem(event, false, eager);
  state.shown.set(event.event_id, li);
  feed.append(li);
}

/** The item of an event shown, in its newer state, where it was. */
function replaceItem(shown, event) {
  if (Number(shown.dataset.seq) >= event.seq) return;
  const li = renderItem(event, false);
  state.shown.set(event.event_id, li);
  shown.replaceWith(li);
  if (state.detailId === event.event_id && $("detail").open) openDetail(event);
}

/** Keeps the live list at the cap while the reader is at the top. */
function trimToCap() {
  if (!atTop() || feed.children.length <= FEED_CAP) return;
  while (feed.children.length > FEED_CAP) {
    const last = feed.lastElementChild;
    state.shown.delete(last.dataset.eventId);
    last.remove();
  }
  // What was dropped is back in history: scrolling down loads it again.
  state.older = { next: Number(feed.lastElementChild.dataset.seq), done: false, loading: false };
  showFeedEnd();
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
  state.heldOverflow = false;
  showHeldCount();
}

function updateEmptyNote() {
  $("feed-empty").hidden = feed.children.length > 0;
  $("feed-empty").textContent = isFiltered(state.filter) ? "No events match." : "Waiting for events…";
}

function togglePause() {
  state.paused = !state.paused;
  const button = $("pause");
  button.setAttribute("aria-pressed", String(state.paused));
  button.textContent = state.paused ? "Resume" : "Pause";
  if (!state.paused && atTop()) showHeld();
  showHeldCount();
}

function refreshRelativeTimes() {
  for (const span of feed.querySelectorAll(".ago")) span.textContent = relative(span.dataset.ts);
  for (const span of document.querySelectorAll(".lasted[data-running]")) span.textContent = duration(span);
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

// ---------- a larger picture on hover or focus ----------

function setUpPreview() {
  const hover = matchMedia("(hover: hover)").matches;
  if (hover) {
    feed.addEventListener("mouseover", (e) => {
      const img = e.target.closest && e.target.closest(".thumb img");
      if (img) showPreview(img);
    });
    feed.addEventListener("mouseout", (e) => { if (e.target.closest && e.target.closest(".thumb img")) hidePreview(); });
  }
  feed.addEventListener("focusin", (e) => {
    const li = e.target.closest && e.target.closest("li.event");
    const img = li && li.querySelector(".thumb img");
    if (img) showPreview(img);
  });
  feed.addEventListener("focusout", hidePreview);
}

function showPreview(img) {
  const preview = $("preview");
  const big = $("preview-img");
  if (big.getAttribute("src") !== img.getAttribute("src")) big.src = img.src;
  big.alt = img.alt;
  // Beside the thumbnail where there is room, else over the list.
  const thumb = img.getBoundingClientRect();
  const width = Math.min(400, innerWidth - 16);
  const left = thumb.right + 8 + width <= innerWidth - 8 ? thumb.right + 8 : Math.max(8, innerWidth - width - 8);
  const top = Math.min(Math.max(8, thumb.top), Math.max(8, innerHeight - width * 9 / 16 - 8));
  Object.assign(preview.style, { left: `${left}px`, top: `${top}px`, width: `${width}px` });
  preview.hidden = false;
}

function hidePreview() {
  $("preview").hidden = true;
}

// ---------- camera tiles ----------

async function loadCameras() {
  const cameras = await getJson(`/api/cameras?since=${encodeURIComponent(localMidnight())}`);
  for (const c of cameras) {
    state.cameras.set(c.camera_id, {
      events: c.events,
      today: c.events_since ?? 0,
      active: c.active,
      lastTimestamp: c.last_timestamp,
      image: c.latest_image,
    });
  }
  renderTiles();
}

function camera(id) {
  let c = state.cameras.get(id);
  if (!c) {
    c = { events: 0, today: 0, active: 0, lastTimestamp: null, image: null };
    state.cameras.set(id, c);
  }
  return c;
}

/** A live change, into its camera's tile. */
function trackCamera(event, change) {
  const c = camera(event.camera_id);
  const known = state.tiles.has(event.camera_id);
  if (change === "new") {
    c.events += 1;
    if (event.timestamp >= localMidnight()) c.today += 1;
    if (event.state === "active") c.active += 1;
    if (!c.lastTimestamp || event.timestamp > c.lastTimestamp) c.lastTimestamp = event.timestamp;
  } else if (change === "end") {
    c.active = Math.max(0, c.active - 1);
  }
  if (event.image_path) c.image = { event_id: event.event_id, seq: event.seq };
  if (known) updateTile(event.camera_id);
  else renderTiles();
}

function renderTiles() {
  const list = $("tiles");
  const ids = [...state.cameras.keys()].sort((a, b) => a.localeCompare(b));
  for (const id of ids) {
    if (!state.tiles.has(id)) state.tiles.set(id, makeTile(id));
  }
  const items = ids.map((id) => state.tiles.get(id).item);
  if (items.some((item, i) => list.children[i] !== item) || list.children.length !== items.length) list.replaceChildren(...items);
  for (const id of ids) updateTile(id);
  if (!$("filters").contains(document.activeElement)) {
    renderChoices($("f-cameras"), "camera", [...state.cameras.keys(), ...state.filter.cameras], state.filter.cameras);
  }
}

function makeTile(id) {
  const item = el("li", "cam");
  const button = el("button", "cam-tile");
  button.type = "button";
  button.dataset.camera = id;
  button.setAttribute("aria-pressed", String(state.filter.cameras.includes(id)));
  const picture = el("div", "cam-picture");
  const name = el("span", "cam-name", id);
  const status = el("span", "source");
  const counts = el("span", "cam-counts");
  const stages = el("small", "stages");
  stages.title = "p50 per frame of each analysis stage";
  button.append(picture, el("span", "cam-line", ""), counts, stages);
  button.children[1].append(name, " ", status);
  button.addEventListener("click", () => {
    const f = state.filter;
    const cameras = f.cameras.includes(id) ? f.cameras.filter((c) => c !== id) : [...f.cameras, id];
    applyFilter({ ...f, cameras });
  });
  item.append(button);
  return { item, button, picture, status, counts, stages, image: null };
}

function updateTile(id) {
  const tile = state.tiles.get(id);
  const c = state.cameras.get(id);
  if (!tile || !c) return;
  const source = state.sources.get(id);
  const sourceState = source ? source.state : "";
  tile.item.dataset.camera = id;
  tile.item.dataset.state = sourceState || "unknown";
  tile.status.className = `source source--${sourceState || "unknown"}`;
  tile.status.textContent = sourceState;
  tile.status.hidden = !sourceState;
  tile.status.title = source && source.error ? source.error : "";
  tile.button.title = source && source.error ? `${id}: ${source.error}` : `Show only ${id} (or stop)`;
  tile.button.setAttribute("aria-label", `${id}${sourceState ? `, ${sourceState}` : ""}: ${c.today} events today, ${c.active} in progress. Filter the list by this camera.`);
  tile.counts.textContent = `${c.today} today · ${c.active} active`;
  tile.counts.dataset.today = String(c.today);
  tile.counts.dataset.active = String(c.active);
  // Analysis stages at p50 (motion on every frame, detect on frames with
  // motion), the waits for ffmpeg left out.
  const stages = ((source && source.stages) || []).filter((t) => t.stage !== "decode_wait" && t.ms.count > 0);
  tile.stages.textContent = stages.map((t) => `${t.stage} ${formatMs(t.ms.p50)}`).join(" · ");
  const key = c.image ? `${c.image.event_id}@${c.image.seq}` : null;
  if (key !== tile.image) {
    tile.image = key;
    if (c.image) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.width = 192;
      img.height = 108;
      img.alt = `Latest snapshot from ${id}`;
      img.src = imageUrl(c.image);
      img.addEventListener("error", () => tile.picture.replaceChildren(placeholder(`No snapshot from ${id}`)), { once: true });
      tile.picture.replaceChildren(img);
    } else {
      tile.picture.replaceChildren(placeholder(`No snapshot from ${id} yet`));
    }
  }
}

/** A stage time: 0.42 ms, 12 ms, 1.2 s. */
function formatMs(ms) {
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(2)} ms`;
}

function rememberLabels(event) {
  let added = false;
  for (const o of event.detected_objects) {
    if (!state.labels.has(o.label)) {
      state.labels.add(o.label);
      added = true;
    }
  }
  if (added && !$("filters").contains(document.activeElement)) {
    renderChoices($("f-labels"), "label", [...state.labels, ...state.filter.labels], state.filter.labels);
  }
}

// ---------- detail ----------

function setUpDetail() {
  const dialog = $("detail");
  $("detail-prev").addEventListener("click", () => step(-1));
  $("detail-next").addEventListener("click", () => step(1));
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
  });
  dialog.addEventListener("close", () => {
    const id = state.detailId;
    state.detailId = null;
    history.replaceState(null, "", pageUrl(null));
    // Back where the reader was.
    state.shown.get(id)?.focus({ preventScroll: true });
  });
  addEventListener("hashchange", () => openPermalink());
}

function openFromItem(target) {
  const li = target.closest && target.closest("li.event");
  if (li && li.eventData) openDetail(li.eventData);
}

/** The event the URL's `#/events/{id}` names, opened; a note if there is none. */
async function openPermalink() {
  const match = /^#\/events\/([^/]+)$/.exec(location.hash);
  if (!match) return;
  const id = decodeURIComponent(match[1]);
  if (state.detailId === id) return;
  try {
    openDetail(state.shown.get(id)?.eventData ?? await getJson(`/api/events/${encodeURIComponent(id)}`));
  } catch {
    $("filter-note").hidden = false;
    $("filter-note").textContent = `The linked event ${id} is not stored (any more).`;
  }
}

/** The next (1, older) or previous (-1, newer) event in the list. */
async function step(direction) {
  const li = state.shown.get(state.detailId);
  if (!li) return;
  let next = direction < 0 ? li.previousElementSibling : li.nextElementSibling;
  if (!next && direction > 0 && !state.older.done) {
    await loadOlder();
    next = li.nextElementSibling;
  }
  if (next && next.eventData) {
    openDetail(next.eventData);
    next.scrollIntoView({ block: "nearest" });
  }
}

function openDetail(event) {
  const fresh = state.detailId !== event.event_id;
  state.detailId = event.event_id;
  const when = dateTime(event.timestamp);
  $("detail-title").textContent = `${event.camera_id} · ${when}`;
  const li = state.shown.get(event.event_id);
  $("detail-prev").disabled = !li || !li.previousElementSibling;
  $("detail-next").disabled = !li || (!li.nextElementSibling && state.older.done);
  $("detail-link").href = pageUrl(event.event_id);
  $("detail-link").title = "A link to this event (copy it to share)";
  history.replaceState(null, "", pageUrl(event.event_id));
  hidePreview();

  const lasted = el("span", "lasted");
  lasted.dataset.start = event.timestamp;
  if (event.state === "active") lasted.dataset.running = "";
  else lasted.dataset.end = event.end_time;
  lasted.textContent = duration(lasted) || "under a second";
  const times = [
    ["Start", `${when}`],
    ["End", event.state === "active" ? "in progress" : `${dateTime(event.end_time)}${event.metadata.end_reason ? ` (${event.metadata.end_reason})` : ""}`],
    ["Duration", lasted],
    ["Objects", event.detected_objects.length
      ? event.detected_objects.map((o) => `${o.label} ${Math.round(o.confidence * 100)}%`).join(", ")
      : "none"],
    ["Description", event.description],
  ];
  $("detail-times").replaceChildren(...times.flatMap(([k, v]) => [el("dt", "", k), typeof v === "string" ? el("dd", "", v) : wrap("dd", v)]));
  const rows = [
    ["Description", event.description],
    ["Camera", event.camera_id],
    ["Seen", `${when} (${event.timestamp})`],
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
  $("detail-fields").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  $("detail-json").textContent = JSON.stringify(event, null, 2);
  $("detail").dataset.eventId = event.event_id;
  if (fresh || $("detail-figure").dataset.seq !== String(event.seq)) renderFrame(event);
  loadEventHistory(event);
  if (!$("detail").open) $("detail").showModal();
}

function wrap(tag, child) {
  const node = el(tag);
  node.append(child);
  return node;
}

/** The event's changes, each with what it brought. */
async function loadEventHistory(event) {
  const list = $("detail-history");
  list.dataset.eventId = event.event_id;
  let changes;
  try {
    changes = (await getJson(`/api/events/${encodeURIComponent(event.event_id)}/changes`)).changes;
  } catch (e) {
    list.replaceChildren(el("li", "", `History unavailable: ${e.message}`));
    return;
  }
  if (list.dataset.eventId !== event.event_id) return;
  let before = null;
  list.replaceChildren(...changes.map(({ change, data }) => {
    const li = el("li", `history-${change}`);
    li.dataset.change = change;
    li.dataset.seq = String(data.seq);
    const at = el("time", "", clock(data.updated_at));
    at.dateTime = data.updated_at;
    li.append(el("strong", "", change), " · ", at, " — ", whatChanged(before, data, change));
    before = data;
    return li;
  }));
}

function whatChanged(before, after, change) {
  const labels = (e) => e.detected_objects.map((o) => o.label);
  if (change === "new" || !before) {
    return `${after.state === "active" ? "started" : "reported whole"}: ${labels(after).join(", ") || "motion"}`;
  }
  const parts = [];
  // Objects it saw since: "saw a dog", "saw another person".
  const count = (e, label) => labels(e).filter((l) => l === label).length;
  const seen = [...new Set(labels(after))].flatMap((label) => {
    const more = count(after, label) - count(before, label);
    if (more <= 0) return [];
    if (more > 1) return [`${more} more ${label}s`];
    return [count(before, label) ? `another ${label}` : `a ${label}`];
  });
  if (seen.length) parts.push(`saw ${seen.join(", ")}`);
  if (after.image_path !== before.image_path) parts.push("a better snapshot");
  if (change === "end") {
    const secs = Math.round((Date.parse(after.end_time) - Date.parse(after.timestamp)) / 1000);
    parts.push(`ended after ${secs} s${after.metadata.end_reason ? ` (${after.metadata.end_reason})` : ""}`);
  }
  if (!parts.length && after.description !== before.description) parts.push(after.description);
  return parts.join("; ") || "no visible change";
}

// Boxes over the snapshot when there is one; otherwise over a schematic
// frame sized to hold them, so their placement is still visible.
function renderFrame(event) {
  const figure = $("detail-figure");
  figure.dataset.seq = String(event.seq);
  figure.replaceChildren();
  const boxes = event.detected_objects;
  if (event.image_path) {
    const img = document.createElement("img");
    img.alt = `Snapshot: ${pictureWords(event)}`;
    img.src = imageUrl(event);
    img.addEventListener("load", () => figure.append(overlay(boxes, img.naturalWidth, img.naturalHeight, "overlay")));
    img.addEventListener("error", () => { img.remove(); schematic(figure, boxes, "snapshot unavailable"); });
    figure.append(img);
  } else {
    schematic(figure, boxes, "no snapshot: boxes on a schematic frame");
  }
}

function schematic(figure, boxes, caption) {
  const w = Math.max(640, ...boxes.map((b) => b.bbox.x + b.bbox.width));
  const h = Math.max(360, ...boxes.map((b) => b.bbox.y + b.bbox.height));
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

// ---------- browser notifications ----------

function loadNotifySettings() {
  const fallback = { enabled: false, cameras: [], labels: [], cooldown: 60, sound: false };
  try {
    return { ...fallback, ...JSON.parse(localStorage.getItem(NOTIFY_KEY) || "{}") };
  } catch {
    return fallback;
  }
}

function saveNotifySettings() {
  localStorage.setItem(NOTIFY_KEY, JSON.stringify(state.notify));
  showNotifyState();
}

function setUpNotifications() {
  const dialog = $("notify");
  $("notify-open").addEventListener("click", () => {
    renderChoices($("n-cameras"), "n-camera", [...state.cameras.keys(), ...state.notify.cameras], state.notify.cameras);
    renderChoices($("n-labels"), "n-label", [...state.labels, ...state.notify.labels], state.notify.labels);
    $("n-cooldown").value = String(state.notify.cooldown);
    $("n-sound").checked = state.notify.sound;
    showNotifyState();
    dialog.showModal();
  });
  $("notify-form").addEventListener("change", () => {
    const form = new FormData($("notify-form"));
    const cooldown = Number.parseFloat($("n-cooldown").value);
    Object.assign(state.notify, {
      cameras: form.getAll("n-camera").map(String),
      labels: form.getAll("n-label").map(String),
      cooldown: Number.isFinite(cooldown) ? Math.min(3600, Math.max(0, cooldown)) : 60,
      sound: $("n-sound").checked,
    });
    if (state.notify.sound) audio();
    saveNotifySettings();
  });
  // Permission is asked for only here, on a click, as browsers require.
  $("n-enable").addEventListener("click", async () => {
    if (!("Notification" in window)) {
      $("n-status").textContent = "This browser has no notifications.";
      return;
    }
    const permission = await Notification.requestPermission();
    state.notify.enabled = permission === "granted";
    if (state.notify.sound) audio();
    saveNotifySettings();
  });
  $("n-disable").addEventListener("click", () => {
    state.notify.enabled = false;
    saveNotifySettings();
  });
  showNotifyState();
}

function notificationsOn() {
  return state.notify.enabled && "Notification" in window && Notification.permission === "granted";
}

function showNotifyState() {
  const on = notificationsOn();
  const button = $("notify-open");
  button.textContent = `Notifications: ${on ? "on" : "off"}`;
  button.dataset.state = on ? "on" : "off";
  const denied = "Notification" in window && Notification.permission === "denied";
  $("n-status").textContent = on
    ? "On: new events that match are shown while this page is open."
    : denied ? "This browser blocks notifications from this page; allow them in its site settings."
      : "Off.";
}

/** A notification for a change a person asked to hear about, at most one per camera per cooldown. */
function notifyIfWanted(event, change) {
  const n = state.notify;
  if (change === "end" || !notificationsOn() || state.notified.has(event.event_id)) return;
  if (Date.now() - Date.parse(event.created_at) > NOTIFY_WITHIN_MS) return;
  if (n.cameras.length && !n.cameras.includes(event.camera_id)) return;
  const labels = [...new Set(event.detected_objects.map((o) => o.label))];
  const wanted = n.labels.length ? labels.filter((l) => n.labels.includes(l)) : labels;
  if (n.labels.length && !wanted.length) return;
  const last = state.lastNotified.get(event.camera_id);
  if (last !== undefined && Date.now() - last < n.cooldown * 1000) return;
  state.lastNotified.set(event.camera_id, Date.now());
  state.notified.add(event.event_id);
  if (state.notified.size > 1000) state.notified.delete(state.notified.values().next().value);
  const title = `${wanted.join(", ") || "Motion"} at ${event.camera_id}`;
  const options = { body: event.description, tag: event.event_id };
  if (event.image_path) options.icon = imageUrl(event);
  const note = new Notification(title, options);
  note.addEventListener("click", () => { window.focus(); openDetail(event); });
  if (n.sound) beep();
}

function audio() {
  if (!state.audio && "AudioContext" in window) state.audio = new AudioContext();
  return state.audio;
}

/** Two short tones, made on the spot: no sound file to fetch. */
function beep() {
  const ctx = audio();
  if (!ctx) return;
  for (const [at, hz] of [[0, 880], [0.18, 660]]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = hz;
    gain.gain.setValueAtTime(0.15, ctx.currentTime + at);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.15);
    osc.connect(gain).connect(ctx.destination);
    osc.start(ctx.currentTime + at);
    osc.stop(ctx.currentTime + at + 0.16);
  }
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
  // Camera sources as the detectors report them (state, last error, the
  // labels each wants); a camera with no event yet still gets its tile.
  state.sources.clear();
  for (const link of links) {
    for (const c of (link.stats && link.stats.cameras) || []) {
      if (c.removed) continue;
      state.sources.set(c.camera_id, { state: c.state, error: c.last_error, stages: c.stages || [] });
      camera(c.camera_id);
      for (const label of c.labels || []) state.labels.add(label);
    }
  }
  renderTiles();
  if (!$("filters").contains(document.activeElement)) {
    renderChoices($("f-labels"), "label", [...state.labels, ...state.filter.labels], state.filter.labels);
  }
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

// Formatters made once: `Date.toLocaleString` builds one per call, which
// for 200 list items was most of the time the list took to appear.
const CLOCK = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** "9:46:31 PM", in this browser's locale and time zone. */
function clock(iso) {
  return CLOCK.format(Date.parse(iso));
}

/** "Dec 7, 2026, 9:46:31 PM". */
function dateTime(iso) {
  return DATE_TIME.format(Date.parse(iso));
}

/** Today's start in this browser's time zone, as the API's UTC text. */
function localMidnight() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.toISOString();
}

/** An ISO time as a datetime-local input's value, in local time. */
function localInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
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

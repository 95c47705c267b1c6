// The dashboard, driven in real headless Chromium against the real
// webserver and detector. Run: node --test tests/browser/
// (after `cargo build --workspace --bins`; Chromium at /usr/bin/chromium or $CHROMIUM).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  feedSeqs, freePort, getJson, jsonlCount, launchBrowser, openDashboard, processes,
  screenshotPath, startDetector, startCameraDetector, startWebserver, tempDataDir,
} from "./harness.mjs";

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });
const { track, stopAll } = processes();

/** A webserver on a fresh data directory, and the dashboard open and connected to it. */
async function connectedDashboard() {
  const dir = tempDataDir();
  const server = track(await startWebserver(dir, await freePort()));
  const { page, errors } = await openDashboard(browser, server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  return { dir, server, page, errors };
}

test("events appear within 1 s of commit, with no console errors", async (t) => {
  t.after(stopAll);
  const { dir, server, page, errors } = await connectedDashboard();

  const detector = track(startDetector(dir, ["--count", "8", "--rate", "4", "--wait-subscribers", "1"]));
  await page.waitForSelector('#feed li[data-seq="8"]', { timeout: 30000 });
  assert.equal((await detector.exited).code, 0);

  const events = (await getJson(`${server.url}/api/events?limit=100`)).events;
  const arrivals = await page.evaluate(() => window.__arrivals);
  assert.equal(events.length, 8);
  for (const e of events) {
    const latency = arrivals[String(e.seq)] - Date.parse(e.created_at);
    assert.ok(latency < 1000, `event ${e.seq} took ${latency.toFixed(0)} ms from commit to screen`);
  }
  // Newest on top, each event once.
  assert.deepEqual(await feedSeqs(page), [8, 7, 6, 5, 4, 3, 2, 1]);
  const first = page.locator('#feed li[data-seq="8"]');
  assert.match(await first.locator(".camera").textContent(), /^[a-z_]+$/);
  assert.match(await first.locator(".ago").textContent(), /s ago$/);
  assert.deepEqual(errors, [], "no console errors");
});

test("a webserver restart shows reconnecting, then every event committed meanwhile, once", async (t) => {
  t.after(stopAll);
  const dir = tempDataDir();
  const port = await freePort();
  let server = track(await startWebserver(dir, port));
  const { page, errors } = await openDashboard(browser, server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  const detector = track(startDetector(dir, ["--rate", "10", "--wait-subscribers", "1"]));
  await page.waitForSelector('#feed li[data-seq="5"]', { timeout: 30000 });

  await server.stop("SIGKILL");
  await page.waitForSelector('#conn[data-state="reconnecting"], #conn[data-state="offline"]');
  assert.match(await page.locator("#conn-text").textContent(), /Reconnecting|Offline/);
  // Let the detector commit events while no webserver runs.
  const shown = (await feedSeqs(page))[0];
  while (jsonlCount(dir) < shown + 10) await new Promise((r) => setTimeout(r, 100));

  server = track(await startWebserver(dir, port));
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 30000 });
  await detector.stop("SIGTERM");
  assert.equal((await detector.exited).code, 0);

  const stored = (await getJson(`${server.url}/api/events?limit=1000`)).events.map((e) => e.seq);
  await page.waitForSelector(`#feed li[data-seq="${stored[0]}"]`, { timeout: 30000 });
  const feed = await feedSeqs(page);
  assert.deepEqual(feed, stored, "the feed holds every stored event exactly once, newest first");
  assert.deepEqual(errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)), [],
    "no console errors besides the expected connection failures while the server was down");
});

test("pause/resume, camera filter, detail view and health panel", async (t) => {
  t.after(stopAll);
  const { dir, server, page, errors } = await connectedDashboard();
  track(startDetector(dir, ["--rate", "8", "--camera", "door", "--camera", "yard", "--wait-subscribers", "1"]));
  await page.waitForSelector('#feed li[data-seq="4"]', { timeout: 30000 });

  // Pause: the feed holds still and counts what arrives; resume shows it.
  await page.click("#pause");
  assert.equal(await page.getAttribute("#pause", "aria-pressed"), "true");
  const frozen = await feedSeqs(page);
  await page.waitForFunction(() => /^[3-9]\d* new|^\d{2,} new/.test(document.getElementById("paused-badge").textContent)
    && !document.getElementById("paused-badge").hidden);
  assert.deepEqual(await feedSeqs(page), frozen, "nothing added while paused");
  await page.click("#pause");
  assert.equal(await page.getAttribute("#pause", "aria-pressed"), "false");
  assert.equal(await page.isHidden("#paused-badge"), true);
  const resumed = await feedSeqs(page);
  assert.ok(resumed.length >= frozen.length + 3, "held events shown on resume");
  assert.deepEqual(resumed, [...resumed].sort((a, b) => b - a), "still newest first");
  assert.equal(new Set(resumed).size, resumed.length, "no duplicates");

  // Camera filter: history from the API and live items, door only.
  await page.check('#f-cameras input[value="door"]');
  await page.click('#filters button[type="submit"]');
  await page.waitForSelector("#filter-note:not([hidden])");
  const newestBefore = Math.max(...(await feedSeqs(page)), 0);
  await page.waitForFunction((n) => [...document.querySelectorAll("#feed li.event")].some((li) => Number(li.dataset.seq) > n), newestBefore, { timeout: 30000 });
  const cameras = await page.$$eval("#feed li.event .camera", (els) => els.map((e) => e.textContent));
  assert.ok(cameras.length > 0);
  assert.deepEqual([...new Set(cameras)], ["door"]);
  await page.click("#f-clear");
  await page.waitForSelector("#filter-note[hidden]", { state: "attached" });

  // Detail view: every field, and the raw JSON is the API's event.
  // A locator is resolved again at each action: pin the item by its id, or
  // the live feed may put a newer one first between reading and clicking.
  const id = await page.locator("#feed li.event").first().getAttribute("data-event-id");
  await page.locator(`#feed li.event[data-event-id="${id}"]`).click();
  await page.waitForSelector("#detail[open]");
  const raw = JSON.parse(await page.locator("#detail-json").textContent());
  assert.deepEqual(raw, await getJson(`${server.url}/api/events/${id}`));
  const fields = await page.locator("#detail-fields").textContent();
  for (const expected of [id, raw.description, raw.camera_id, String(raw.seq)]) assert.ok(fields.includes(expected), expected);
  // Over its snapshot (dry-run events have pictures) once it loaded, or a schematic frame.
  await page.waitForSelector("#detail-figure svg");
  assert.equal(await page.locator("#detail-figure rect.box").count(), raw.detected_objects.length);
  await page.keyboard.press("Escape");
  await page.waitForSelector("#detail:not([open])", { state: "attached" });

  // Health panel: the numbers /api/metrics reports (after a refresh that
  // happened once this page's own WebSocket was counted).
  const since = Date.now();
  await page.waitForFunction((t) => Number(document.getElementById("health").dataset.updated) > t, since, { timeout: 15000 });
  const metrics = await getJson(`${server.url}/api/metrics`);
  const clients = await page.getAttribute('#health [data-metric="clients"] dd', "data-value");
  assert.equal(Number(clients), metrics.websocket.connections.current);
  const cpu = Number(await page.getAttribute('#health [data-metric="cpu"] dd', "data-value"));
  assert.ok(Number.isFinite(cpu) && cpu >= 0);
  await page.waitForFunction(() => Number(document.querySelector('#health [data-metric="inf50"] dd')?.dataset.value) > 0, null, { timeout: 15000 });
  await page.waitForFunction(() => Number(document.querySelector('#health [data-metric="commit99"] dd')?.dataset.value) > 0, null, { timeout: 15000 });
  const doorTile = page.locator('#tiles li[data-camera="door"] .cam-counts');
  assert.ok(Number(await doorTile.getAttribute("data-today")) > 0);

  await page.screenshot({ path: screenshotPath("dashboard.png") });
  await page.setViewportSize({ width: 360, height: 780 });
  await page.screenshot({ path: screenshotPath("dashboard-phone.png") });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, "no horizontal scrolling at phone width");
  assert.deepEqual(errors, [], "no console errors");
});

test("a camera event's snapshot shows in the detail view, with its boxes on it", async (t) => {
  t.after(stopAll);
  const { dir, server, page, errors } = await connectedDashboard();
  // A synthetic live camera: a white box crossing from t = 1 s.
  const graph = "lavfi:color=c=0x303030:s=640x360:r=25[bg];color=c=white:s=80x80:r=25[box];"
    + "[bg][box]overlay=x='(t-1)*150':y=120:enable='gte(t,1)'";
  // And a network camera that is not there, with a password in its URL.
  track(startCameraDetector(dir, ["--camera", `drive=${graph}`, "--camera", "road=rtsp://admin:SuperSecretPw@127.0.0.1:9/none",
    "--episode-max-secs", "1.5", "--heartbeat-secs", "0.5"]));
  // The missing camera is listed, marked failed, with ffmpeg's reason.
  const road = page.locator('#tiles li[data-camera="road"] .source--failed');
  await road.waitFor({ timeout: 30000 });
  assert.match(await road.getAttribute("title"), /ffmpeg exited/);
  // The tooltip shows the URL with its password masked, and nothing on the page has it.
  assert.match(await road.getAttribute("title"), /admin:\*\*\*@127\.0\.0\.1:9/);
  assert.ok(!(await page.content()).includes("SuperSecretPw"), "the camera password is not on the page");
  await page.waitForSelector("#feed li.event", { timeout: 30000 });
  const item = page.locator("#feed li.event").first();
  const id = await item.getAttribute("data-event-id");
  const event = await getJson(`${server.url}/api/events/${id}`);
  assert.ok(event.image_path, "a camera event has a snapshot");
  // Its thumbnail in the list is that snapshot.
  await page.waitForFunction((eventId) => {
    const img = document.querySelector(`#feed li[data-event-id="${eventId}"] .thumb img`);
    return img && img.complete && img.naturalWidth === 320;
  }, id, { timeout: 15000 });
  await item.click();
  await page.waitForSelector("#detail[open]");
  // The JPEG loaded at detection size, and the overlay is sized to it.
  await page.waitForFunction(() => document.querySelector("#detail-figure img")?.naturalWidth > 0, null, { timeout: 15000 });
  assert.equal(await page.locator("#detail-figure img").evaluate((img) => img.naturalWidth), 320);
  await page.waitForSelector("#detail-figure svg.overlay");
  assert.equal(await page.getAttribute("#detail-figure svg.overlay", "viewBox"), "0 0 320 180");
  assert.equal(await page.locator("#detail-figure svg.overlay rect.box").count(), event.detected_objects.length);
  assert.ok(event.detected_objects.length > 0 && event.detected_objects.every((o) => o.label === "motion"));
  await page.screenshot({ path: screenshotPath("dashboard-snapshot.png") });
  assert.deepEqual(errors, [], "no console errors");
});

test("an event that starts and ends shows in progress, then ends in place, once, also after a reload", async (t) => {
  t.after(stopAll);
  const { server, page, errors } = await connectedDashboard();
  const post = await fetch(`${server.url}/api/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ camera_id: "bell", description: "Doorbell pressed", state: "active" }),
  });
  assert.equal(post.status, 201);
  const { event_id: id } = await post.json();
  const item = `#feed li[data-event-id="${id}"]`;
  await page.waitForSelector(`${item}[data-state="active"]`, { timeout: 10000 });
  assert.equal(await page.locator(`${item} .badge-live`).textContent(), "in progress");
  assert.match(await page.locator(`${item} .lasted`).textContent(), /^\d+ s$/, "a running duration");

  const end = await fetch(`${server.url}/api/events/${id}/end`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ reason: "answered" }),
  });
  assert.equal(end.status, 200);
  await page.waitForSelector(`${item}[data-state="ended"]`, { timeout: 10000 });
  assert.equal(await page.locator(item).count(), 1, "one item for the event, replaced in place");
  assert.equal(await page.locator(`${item} .badge-live`).count(), 0);
  const stored = await getJson(`${server.url}/api/events/${id}`);
  assert.equal(await page.locator(item).getAttribute("data-seq"), String(stored.seq), "at its latest change");

  await page.reload();
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForSelector(`${item}[data-state="ended"]`);
  assert.equal(await page.locator(item).count(), 1, "after a reload too");
  assert.deepEqual(errors, [], "no console errors");
});

test("dry-run events that start, gain labels and end show once each, in their final state", async (t) => {
  t.after(stopAll);
  const { dir, server, page, errors } = await connectedDashboard();
  // Lives of about a second: new, maybe an update, then the end, for each.
  const detector = track(startCameraDetector(dir, [
    "--dry-run", "--event-secs", "1", "--count", "24", "--rate", "12", "--wait-subscribers", "1",
  ]));
  assert.equal((await detector.exited).code, 0);
  const events = (await getJson(`${server.url}/api/events?limit=100`)).events;
  assert.equal(events.length, 24);
  assert.ok(events.every((e) => e.state === "ended"), "the detector ended every event before it exited");
  const changes = (await getJson(`${server.url}/api/changes?limit=1000`)).changes;
  assert.ok(changes.length >= 48, `a new and an end per event at least: ${changes.length}`);
  // 40 % gain a label: some update (all 24 without one: 0.6^24, 1 in 200,000).
  assert.ok(changes.some((c) => c.change === "update"), "some events were updated");
  for (const e of events) {
    // In its final state, at its latest change: replaced in place each time.
    await page.waitForSelector(`#feed li[data-event-id="${e.event_id}"][data-seq="${e.seq}"][data-state="ended"]`);
    const chips = await page.locator(`#feed li[data-event-id="${e.event_id}"] .chip`).count();
    assert.equal(chips, e.detected_objects.length, `${e.event_id}: its labels, gained ones included`);
  }
  assert.equal(await page.locator("#feed li.event").count(), 24, "one item per event, however many changes");
  assert.deepEqual(errors, [], "no console errors");
});

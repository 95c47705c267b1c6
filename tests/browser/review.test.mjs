// The dashboard as a review tool (issue 20, SPEC §13), driven in real
// headless Chromium against the real webserver and detector: thumbnails,
// all of history, camera tiles, filters in the URL, permalinks, event
// history, notifications and accessibility.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  allEvents, childPids, feedSeqs, freePort, getJson, launchBrowser, openDashboard, processes, screenshotPath,
  startCameraDetector, startDetector, startWebserver, tempDataDir,
} from "./harness.mjs";

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });
const { track, stopAll } = processes();

/**
 * A webserver on a fresh data directory with `count` dry-run events already
 * stored: reported whole at 500/s unless `detectorArgs` say otherwise.
 */
async function storedEvents(count, detectorArgs = []) {
  const dir = tempDataDir();
  const server = track(await startWebserver(dir, await freePort()));
  const given = (flag) => detectorArgs.includes(flag);
  const detector = track(startCameraDetector(dir, [
    "--dry-run", "--count", String(count),
    ...(given("--rate") ? [] : ["--rate", "500"]),
    ...(given("--event-secs") ? [] : ["--event-secs", "0"]),
    ...detectorArgs,
  ]));
  assert.equal((await detector.exited).code, 0, "the detector stored its events");
  return { dir, server };
}

async function post(url, body) {
  const response = await fetch(`${url}/api/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 201, text);
  return JSON.parse(text);
}

/** Whether every <img> that finished loading decoded to a picture. */
async function brokenImages(page) {
  return page.$$eval("img", (imgs) => imgs.filter((i) => i.complete && i.getAttribute("src") && i.naturalWidth === 0)
    .map((i) => i.src));
}

test("thumbnails: a picture per item, fetched only near the screen, with alt text, none broken", async (t) => {
  t.after(stopAll);
  const { server } = await storedEvents(150);
  const requested = new Set();
  const { page, errors } = await openDashboard(browser, server.url);
  page.on("request", (r) => { if (r.url().includes("/image")) requested.add(new URL(r.url()).pathname); });
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForFunction(() => document.querySelectorAll("#feed li.event").length === 150);
  // The items in view get their pictures.
  await page.waitForFunction(() => {
    const first = document.querySelector("#feed li.event .thumb img");
    return first && first.complete && first.naturalWidth > 0;
  });
  assert.equal(await page.locator("#feed li.event .thumb img").count(), 150, "every dry-run event has a snapshot");
  const early = [...requested].filter((p) => p.startsWith("/api/events/")).length;
  assert.ok(early > 0 && early < 100, `only pictures near the screen are fetched at first: ${early} of 150`);

  // Scrolled to the bottom, the last ones load too.
  await page.locator("#feed li.event").last().scrollIntoViewIfNeeded();
  await page.waitForFunction(() => {
    const img = [...document.querySelectorAll("#feed li.event .thumb img")].at(-1);
    return img.complete && img.naturalWidth > 0;
  });
  assert.ok(requested.size > early, "more were fetched once scrolled");
  assert.deepEqual(await brokenImages(page), [], "no broken images");
  const alts = await page.$$eval("img", (imgs) => imgs.filter((i) => !i.closest("[hidden]")).map((i) => i.alt));
  assert.ok(alts.every((a) => a.trim().length > 0), "every image has alt text");
  assert.match(alts.find((a) => a.startsWith("Snapshot:")), /^Snapshot: .+ at [a-z_]+, /);

  // The picture is the event's: the snapshot the API serves, at the simulated frame size.
  const size = await page.locator("#feed li.event .thumb img").first().evaluate((i) => [i.naturalWidth, i.naturalHeight]);
  assert.deepEqual(size, [640, 360]);
  // Hovering a thumbnail shows it larger.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.locator("#feed li.event .thumb img").first().hover();
  await page.waitForSelector("#preview:not([hidden])");
  assert.ok((await page.locator("#preview").boundingBox()).width >= 300, "the preview is larger than the thumbnail");
  assert.deepEqual(errors, [], "no console errors");
});

test("scrolling back reaches the first event of a 2,000-event history, filtered, each once, as the API pages it", async (t) => {
  t.after(stopAll);
  const { server } = await storedEvents(2000, ["--no-snapshots", "--rate", "2000", "--camera", "door", "--camera", "yard"]);
  const expected = (await allEvents(server.url, "camera_id=door")).map((e) => e.seq);
  assert.ok(expected.length > 800, `about half are the door's: ${expected.length}`);
  // The filter comes from the URL.
  const { page, errors } = await openDashboard(browser, server.url, undefined, { path: "/?camera_id=door" });
  await page.waitForSelector('#conn[data-state="connected"]');
  assert.equal(await page.isChecked('#f-cameras input[value="door"]'), true, "the URL's filter is in the form");
  for (let rounds = 0; ; rounds++) {
    assert.ok(rounds < 100, "scrolling never reached the beginning");
    const shown = await page.locator("#feed li.event").count();
    if (await page.getAttribute("#feed-end", "data-state") === "done") break;
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.waitForFunction((n) => document.querySelectorAll("#feed li.event").length > n
      || document.getElementById("feed-end").dataset.state === "done", shown);
  }
  assert.equal(await page.textContent("#feed-end"), "The beginning of history.");
  const seqs = await feedSeqs(page);
  assert.equal(new Set(seqs).size, seqs.length, "no duplicates");
  assert.deepEqual(seqs, expected, "every one of the door's events, newest first, no gap");
  const cameras = await page.$$eval("#feed li.event .camera", (els) => [...new Set(els.map((e) => e.textContent))]);
  assert.deepEqual(cameras, ["door"]);
  assert.deepEqual(errors, [], "no console errors");
});

test("new events wait behind a chip while the reader is down the list, then go on top", async (t) => {
  t.after(stopAll);
  const { dir, server } = await storedEvents(120, ["--no-snapshots"]);
  const { page, errors } = await openDashboard(browser, server.url, { width: 1000, height: 700 });
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForFunction(() => document.querySelectorAll("#feed li.event").length === 120);
  // Read something far down: it must stay where it is.
  const reading = page.locator("#feed li.event").nth(60);
  await reading.scrollIntoViewIfNeeded();
  const y = (await reading.boundingBox()).y;
  const top = (await feedSeqs(page))[0];
  track(startDetector(dir, ["--count", "3", "--rate", "20", "--no-snapshots"]));
  await page.waitForSelector("#new-chip:not([hidden])");
  await page.waitForFunction(() => /^↑ 3 new$/.test(document.getElementById("new-chip").textContent));
  assert.equal((await feedSeqs(page))[0], top, "nothing was put on top");
  assert.equal((await reading.boundingBox()).y, y, "what the reader looks at did not move");
  await page.click("#new-chip");
  await page.waitForFunction((n) => Number(document.querySelector("#feed li.event").dataset.seq) > n, top);
  assert.equal(await page.isHidden("#new-chip"), true);
  const seqs = await feedSeqs(page);
  assert.deepEqual(seqs.slice(0, 4), [top + 3, top + 2, top + 1, top]);
  assert.deepEqual(errors, [], "no console errors");
});

test("filters survive a reload through the URL; a permalink opens its event, with its history", async (t) => {
  t.after(stopAll);
  const { server } = await storedEvents(40, ["--camera", "door", "--camera", "yard", "--event-secs", "0.3", "--rate", "40"]);
  const { page, errors } = await openDashboard(browser, server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForSelector('#f-cameras input[value="door"]');
  await page.waitForSelector('#f-labels input[value="person"]');
  await page.check('#f-cameras input[value="door"]');
  await page.check('#f-labels input[value="person"]');
  await page.check('#f-labels input[value="car"]');
  await page.fill("#f-min", "50");
  await page.click('#filters button[type="submit"]');
  await page.waitForFunction(() => location.search.includes("camera_id=door"));
  const query = new URL(page.url()).searchParams;
  assert.deepEqual([query.get("camera_id"), query.get("label"), query.get("min_confidence")], ["door", "car,person", "0.5"]);

  await page.reload();
  await page.waitForSelector('#conn[data-state="connected"]');
  assert.equal(await page.isChecked('#f-cameras input[value="door"]'), true);
  assert.equal(await page.isChecked('#f-labels input[value="person"]'), true);
  assert.equal(await page.isChecked('#f-labels input[value="car"]'), true);
  assert.equal(await page.inputValue("#f-min"), "50");
  const expected = (await allEvents(server.url, "camera_id=door&label=car,person&min_confidence=0.5")).map((e) => e.seq);
  await page.waitForFunction((n) => document.querySelectorAll("#feed li.event").length === n, expected.length);
  assert.deepEqual(await feedSeqs(page), expected, "the same events as the API's filter");
  for (const event of await allEvents(server.url, "camera_id=door&label=car,person&min_confidence=0.5")) {
    assert.ok(event.detected_objects.some((o) => ["car", "person"].includes(o.label) && o.confidence >= 0.5));
  }

  // The detail view: its URL opens it again, in another tab, with its history.
  const withUpdate = (await getJson(`${server.url}/api/changes?limit=1000`)).changes.find((c) => c.change === "update");
  assert.ok(withUpdate, "some dry-run event gained a label");
  const id = withUpdate.data.event_id;
  const { page: other, errors: otherErrors } = await openDashboard(browser, server.url, undefined, { path: `/#/events/${id}` });
  await other.waitForSelector("#detail[open]");
  assert.equal(JSON.parse(await other.textContent("#detail-json")).event_id, id);
  const history = (await getJson(`${server.url}/api/events/${id}/changes`)).changes;
  await other.waitForFunction((n) => document.querySelectorAll("#detail-history li").length === n, history.length);
  const kinds = await other.$$eval("#detail-history li", (items) => items.map((li) => li.dataset.change));
  assert.deepEqual(kinds, history.map((c) => c.change));
  assert.equal(kinds[0], "new");
  assert.equal(kinds.at(-1), "end");
  assert.match(await other.textContent("#detail-history li[data-change=\"update\"]"), /saw /, "an update says what it brought");
  assert.match(await other.textContent("#detail-times"), /Start.*End.*Duration/s);

  // Keyboard: → is the next (older) event in the list, ← back.
  const list = await other.$$eval("#feed li.event", (items) => items.map((li) => li.dataset.eventId));
  const at = list.indexOf(id);
  if (at >= 0 && at + 1 < list.length) {
    await other.keyboard.press("ArrowRight");
    await other.waitForFunction((next) => JSON.parse(document.getElementById("detail-json").textContent).event_id === next, list[at + 1]);
    assert.equal(await other.evaluate(() => location.hash), `#/events/${list[at + 1]}`, "the URL follows");
    await other.keyboard.press("ArrowLeft");
    await other.waitForFunction((back) => JSON.parse(document.getElementById("detail-json").textContent).event_id === back, id);
  }
  await other.keyboard.press("Escape");
  await other.waitForSelector("#detail:not([open])", { state: "attached" });
  // The dialog's close event comes a task after its `open` attribute goes.
  await other.waitForFunction(() => location.hash === "");
  assert.equal(new URL(await other.evaluate(() => location.href)).search, "", "no filter in this tab's URL either");
  assert.deepEqual([...errors, ...otherErrors], [], "no console errors");
});

test("a camera tile shows its latest picture and follows the camera going down and coming back", async (t) => {
  t.after(stopAll);
  const dir = tempDataDir();
  const server = track(await startWebserver(dir, await freePort()));
  const graph = "lavfi:color=c=0x303030:s=640x360:r=25[bg];color=c=white:s=80x80:r=25[box];"
    + "[bg][box]overlay=x='mod(t,3)*180':y=120:enable='lt(mod(t,3),1.5)'";
  const detector = track(startCameraDetector(dir, ["--camera", `porch=${graph}`, "--episode-end-secs", "0.5",
    "--heartbeat-secs", "0.5"]));
  const { page, errors } = await openDashboard(browser, server.url);
  const tile = '#tiles li[data-camera="porch"]';
  await page.waitForSelector(`${tile}[data-state="up"]`, { timeout: 30000 });
  await page.waitForFunction((sel) => {
    const img = document.querySelector(`${sel} .cam-picture img`);
    return img && img.complete && img.naturalWidth > 0;
  }, tile, { timeout: 30000 });
  await page.waitForFunction((sel) => Number(document.querySelector(`${sel} .cam-counts`).dataset.today) > 0, tile);

  // Its ffmpeg killed, and killed again whenever it comes back: the camera
  // is down (reconnecting after a run that had frames, failed after one
  // that had none).
  let killing = true;
  const killer = (async () => {
    while (killing) {
      for (const pid of childPids(detector.child.pid)) {
        try { process.kill(pid, "SIGKILL"); } catch { /* gone already */ }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await page.waitForSelector(`${tile}:is([data-state="reconnecting"], [data-state="failed"])`, { timeout: 30000 });
    assert.match(await page.getAttribute(`${tile} .source`, "title"), /ffmpeg|signal|exit|ended/i, "the error on hover");
    await page.screenshot({ path: screenshotPath("tile-down.png") });
  } finally {
    killing = false;
    await killer;
  }
  await page.waitForSelector(`${tile}[data-state="up"]`, { timeout: 60000 });
  // A click on the tile filters the list by it.
  await page.click(`${tile} button`);
  await page.waitForFunction(() => location.search.includes("camera_id=porch"));
  assert.equal(await page.getAttribute(`${tile} button`, "aria-pressed"), "true");
  assert.deepEqual(errors, [], "no console errors");
});

test("notifications: one for a matching event, none for another camera, none within the cooldown", async (t) => {
  t.after(stopAll);
  const dir = tempDataDir();
  const server = track(await startWebserver(dir, await freePort()));
  await post(server.url, { camera_id: "door", description: "Earlier at the door" });
  await post(server.url, { camera_id: "yard", description: "Earlier in the yard" });
  // Permission granted through the DevTools protocol, as a user's click on "Allow" would.
  const { page, errors } = await openDashboard(browser, server.url, undefined, { permissions: ["notifications"] });
  await page.evaluate(() => {
    // Record what the page shows, and still show it.
    const Real = window.Notification;
    window.__shown = [];
    window.Notification = class extends Real {
      constructor(title, options) { super(title, options); window.__shown.push({ title, ...options }); }
      static get permission() { return Real.permission; }
      static requestPermission() { return Real.requestPermission(); }
    };
  });
  await page.waitForSelector('#conn[data-state="connected"]');
  assert.equal(await page.textContent("#notify-open"), "Notifications: off", "off until asked for");
  await page.click("#notify-open");
  await page.waitForSelector("#notify[open]");
  await page.check('#n-cameras input[value="door"]');
  await page.fill("#n-cooldown", "3");
  await page.dispatchEvent("#n-cooldown", "change");
  await page.click("#n-enable");
  await page.waitForFunction(() => document.getElementById("notify-open").textContent === "Notifications: on");
  await page.keyboard.press("Escape");

  const seen = async (id) => page.waitForSelector(`#feed li[data-event-id="${id}"]`);
  const shown = () => page.evaluate(() => window.__shown);
  const first = await post(server.url, { camera_id: "door", description: "A person at the door",
    detected_objects: [{ label: "person", confidence: 0.9, bbox: { x: 1, y: 1, width: 10, height: 20 } }] });
  await seen(first.event_id);
  await page.waitForFunction(() => window.__shown.length === 1);
  assert.equal((await shown())[0].title, "person at door");
  assert.equal((await shown())[0].body, "A person at the door");
  const yard = await post(server.url, { camera_id: "yard", description: "A cat in the yard" });
  const soon = await post(server.url, { camera_id: "door", description: "Again at the door" });
  await seen(yard.event_id);
  await seen(soon.event_id);
  assert.equal((await shown()).length, 1, "none for another camera, none within the cooldown");
  // After the 3 s cooldown, the next door event is shown again.
  await new Promise((r) => setTimeout(r, 3100));
  const later = await post(server.url, { camera_id: "door", description: "Later at the door" });
  await seen(later.event_id);
  await page.waitForFunction(() => window.__shown.length === 2);
  assert.equal((await shown())[1].body, "Later at the door");
  // The settings stay for the next visit.
  await page.reload();
  await page.waitForSelector('#conn[data-state="connected"]');
  assert.equal(await page.textContent("#notify-open"), "Notifications: on");
  assert.deepEqual(errors, [], "no console errors");
});

test("every control is reachable by keyboard, images say what they show, 360 px needs no sideways scrolling", async (t) => {
  t.after(stopAll);
  const { server } = await storedEvents(6, ["--camera", "door", "--camera", "yard"]);
  const { page, errors } = await openDashboard(browser, server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForSelector('#tiles li[data-camera="yard"] img');
  await page.waitForFunction(() => document.querySelectorAll("#feed li.event").length === 6);
  // Every visible control, outside the closed dialogs.
  const controls = await page.$$eval("a[href], button, input, select, summary, [tabindex='0']", (els) => els
    .filter((e) => !e.closest("dialog:not([open])") && !e.hidden && e.getClientRects().length > 0 && !e.disabled)
    .map((e, i) => { e.dataset.a11y = String(i); return String(i); }));
  // Tab until every control was reached or focus came round to the first again.
  const reached = new Set();
  const order = [];
  for (let i = 0; i < 3 * controls.length && reached.size < controls.length; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => {
      const e = document.activeElement;
      return { id: e?.dataset.a11y, what: e ? `${e.tagName.toLowerCase()}#${e.id}.${e.className}` : "none" };
    });
    order.push(at.what);
    if (at.id !== undefined) reached.add(at.id);
  }
  const missed = controls.filter((c) => !reached.has(c));
  const names = await page.$$eval("[data-a11y]", (els, missing) => els.filter((e) => missing.includes(e.dataset.a11y))
    .map((e) => e.outerHTML.slice(0, 80)), missed);
  assert.deepEqual(names, [], `controls Tab never reached; the order was ${order.join(" → ")}`);
  const alts = await page.$$eval("img", (imgs) => imgs.filter((i) => !i.closest("[hidden]")).map((i) => i.alt));
  assert.ok(alts.length > 6 && alts.every((a) => a.trim()), `alt text on every image: ${JSON.stringify(alts)}`);

  await page.setViewportSize({ width: 360, height: 780 });
  await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.equal(overflow, 0, "no horizontal scrolling at 360 px");
  await page.screenshot({ path: screenshotPath("dashboard-360.png"), fullPage: true });
  assert.deepEqual(errors, [], "no console errors");
});

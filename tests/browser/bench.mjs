// The dashboard's numbers (issue 20), measured in real headless Chromium
// against the real binaries. Run by scripts/dashboard_bench.sh:
//
// 1. First paint with 200 items and thumbnails: 200 dry-run events with
//    pictures stored, the page opened fresh five times; from the trace
//    Chromium records (first contentful paint), and from the page (the list
//    of 200 shown; the last thumbnail in view received). Median of the runs.
// 2. Memory over an hour at 2 events/s, accelerated: 7,200 events with
//    lifecycles at 120 events/s for a minute; the page's JS heap (after a
//    garbage collection) and DOM nodes, from the DevTools protocol, every
//    ten seconds. Flat means the feed cap holds.
//
// Prints one JSON object; LOOKOUT_BIN_DIR picks the binaries (release for
// figures worth quoting).

import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, launchBrowser, startCameraDetector, startWebserver, tempDataDir } from "./harness.mjs";

const RUNS = 5;
const ITEMS = 200;
const HOUR_EVENTS = 7200;
const HOUR_RATE = 120;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function firstPaint(browser) {
  const dir = tempDataDir();
  const server = await startWebserver(dir, await freePort());
  try {
    const filler = startCameraDetector(dir, ["--dry-run", "--count", String(ITEMS), "--rate", "500", "--event-secs", "0"]);
    if ((await filler.exited).code !== 0) throw new Error("the detector failed");
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
      const trace = path.join(os.tmpdir(), `lookout-trace-${process.pid}-${i}.json`);
      await browser.startTracing(page, { path: trace, categories: ["devtools.timeline", "blink.user_timing", "loading"] });
      await page.goto(`${server.url}/`);
      await page.waitForFunction((n) => document.querySelectorAll("#feed li.event").length === n, ITEMS);
      await page.waitForFunction(() => [...document.querySelectorAll("#feed .thumb img")]
        .filter((img) => img.getBoundingClientRect().top < innerHeight)
        .every((img) => img.complete && img.naturalWidth > 0));
      const inPage = await page.evaluate(() => ({
        fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
        list: performance.getEntriesByName("lookout:history")[0]?.startTime ?? null,
        // When the last picture in view arrived (resource timing), not when the poll saw it.
        thumbnails: Math.max(...[...document.querySelectorAll("#feed .thumb img")]
          .filter((img) => img.getBoundingClientRect().top < innerHeight)
          .map((img) => performance.getEntriesByName(img.src)[0]?.responseEnd ?? performance.now())),
        fetched: performance.getEntriesByType("resource").filter((r) => r.name.includes("/image")).length,
      }));
      await browser.stopTracing();
      const events = JSON.parse(readFileSync(trace, "utf8")).traceEvents;
      rmSync(trace, { force: true });
      const start = events.find((e) => e.name === "navigationStart")?.ts;
      const fcp = events.find((e) => e.name === "firstContentfulPaint")?.ts;
      runs.push({ ...inPage, trace_fcp: start && fcp ? (fcp - start) / 1000 : null });
      await page.close();
    }
    const pick = (key) => median(runs.map((r) => r[key]).filter((v) => v !== null));
    return {
      items: ITEMS, runs,
      median_ms: { trace_fcp: pick("trace_fcp"), fcp: pick("fcp"), list: pick("list"), thumbnails: pick("thumbnails") },
    };
  } finally {
    await server.stop();
  }
}

async function hour(browser) {
  const dir = tempDataDir();
  const server = await startWebserver(dir, await freePort());
  const detector = startCameraDetector(dir, ["--dry-run", "--count", String(HOUR_EVENTS), "--rate", String(HOUR_RATE),
    "--event-secs", "2", "--wait-subscribers", "1"]);
  try {
    // A plain page: the test harness's own recorder of arrivals would grow with every event.
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors = [];
    page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#conn[data-state="connected"]');
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const samples = [];
    const started = Date.now();
    const sample = async () => {
      await cdp.send("HeapProfiler.collectGarbage");
      const { metrics } = await cdp.send("Performance.getMetrics");
      const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
      const items = await page.locator("#feed li.event").count();
      samples.push({ at_s: Math.round((Date.now() - started) / 1000), heap_mb: +(m.JSHeapUsedSize / 2 ** 20).toFixed(2),
        nodes: m.Nodes, listeners: m.JSEventListeners, items });
    };
    let done = false;
    detector.exited.then(() => { done = true; });
    while (!done) {
      await sample();
      await new Promise((r) => setTimeout(r, 10000));
    }
    await page.waitForFunction(() => document.querySelectorAll("#feed li.event").length > 0);
    await sample();
    const warm = samples.find((s) => s.at_s >= 10) ?? samples[0];
    const last = samples.at(-1);
    return {
      events: HOUR_EVENTS, rate: HOUR_RATE, samples,
      heap_mb: { after_10_s: warm.heap_mb, end: last.heap_mb, max: Math.max(...samples.map((s) => s.heap_mb)) },
      nodes: { after_10_s: warm.nodes, end: last.nodes },
      console_errors: errors,
    };
  } finally {
    await detector.stop();
    await server.stop();
  }
}

const browser = await launchBrowser();
try {
  const result = { date: new Date().toISOString(), first_paint: await firstPaint(browser), hour: await hour(browser) };
  console.log(JSON.stringify(result, null, 1));
} finally {
  await browser.close();
}

// Starts the real Lookout binaries and a real headless Chromium for the
// dashboard tests. Nothing here stands in for a component: it only starts,
// watches and stops them.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, existsSync, mkdirSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
const binDir = process.env.LOOKOUT_BIN_DIR || path.join(repo, "target", "debug");

export function bin(name) {
  const file = path.join(binDir, name);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`cargo build --workspace --bins\` first`);
  return file;
}

export function tempDataDir() {
  return mkdtempSync(path.join(os.tmpdir(), "lookout-browser-"));
}

/** A free TCP port on 127.0.0.1 (for a webserver that must come back on the same port). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A running binary whose stderr lines can be awaited. */
export class Proc {
  constructor(name, args) {
    this.name = name;
    this.lines = [];
    this.waiters = [];
    const env = { ...process.env };
    delete env.LOOKOUT_DATA_DIR; // every test passes --data-dir
    this.child = spawn(bin(name), args, { stdio: ["ignore", "pipe", "pipe"], env });
    let partial = "";
    this.child.stderr.on("data", (chunk) => {
      partial += chunk.toString();
      const parts = partial.split("\n");
      partial = parts.pop();
      for (const line of parts) {
        if (process.env.LOOKOUT_TEST_ECHO) console.error(`[${name}] ${line}`);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => !(line.includes(w.needle) && (w.resolve(line), true)));
      }
    });
    this.child.stdout.resume();
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
  }

  waitForLog(needle, timeoutMs = 30000) {
    const seen = this.lines.find((l) => l.includes(needle));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not log "${needle}" in ${timeoutMs} ms:\n${this.lines.join("\n")}`)),
        timeoutMs,
      );
      this.waiters.push({ needle, resolve: (line) => { clearTimeout(timer); resolve(line); } });
    });
  }

  async stop(signal = "SIGTERM") {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export async function startWebserver(dataDir, port, args = []) {
  const proc = new Proc("webserver", ["--bind", `127.0.0.1:${port}`, "--data-dir", dataDir, ...args]);
  await proc.waitForLog("webserver listening");
  proc.url = `http://127.0.0.1:${port}`;
  return proc;
}

/** A dry-run detector (simulated cameras), its events reported whole (one change each). */
export function startDetector(dataDir, args = []) {
  return startCameraDetector(dataDir, ["--dry-run", "--event-secs", "0", ...args]);
}

/** A detector watching the cameras given in `args` (`--camera ID=SOURCE`). */
export function startCameraDetector(dataDir, args) {
  // Their scenes are synthetic boxes, not objects: motion events only.
  return new Proc("detector", ["--data-dir", dataDir, "--no-objects", ...args]);
}

/** How many events the detector has written to events.jsonl so far. */
export function jsonlCount(dataDir) {
  const file = path.join(dataDir, "events.jsonl");
  if (!existsSync(file)) return 0;
  return readFileSync(file, "utf8").split("\n").filter(Boolean).length;
}

/** The binaries a test started (`track`), all killed at its end (`stopAll`, for `t.after`). */
export function processes() {
  const running = [];
  return {
    track(proc) { running.push(proc); return proc; },
    async stopAll() { await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL"))); },
  };
}

export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A page that records console errors and, for every feed item, the moment
 * it was added to the DOM (for the commit → screen latency check).
 */
export async function openDashboard(browser, url, viewport = { width: 1280, height: 860 }, { path: at = "/", permissions = [] } = {}) {
  const page = await browser.newPage({ viewport, permissions });
  const errors = [];
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.addInitScript(() => {
    window.__arrivals = {};
    new MutationObserver((records) => {
      const now = performance.timeOrigin + performance.now();
      for (const r of records) for (const n of r.addedNodes) {
        if (n.dataset && n.dataset.seq && !(n.dataset.seq in window.__arrivals)) window.__arrivals[n.dataset.seq] = now;
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(`${url}${at}`);
  return { page, errors };
}

/** The pids of `pid`'s child processes (all its threads' children), from /proc. */
export function childPids(pid) {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.flatMap((task) => {
    try {
      return readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/** Every event the API lists for `query` (e.g. "camera_id=door"), newest first, paging to the end. */
export async function allEvents(url, query = "") {
  const events = [];
  let before = null;
  for (;;) {
    const page = await getJson(`${url}/api/events?limit=1000${query ? `&${query}` : ""}${before === null ? "" : `&before_seq=${before}`}`);
    events.push(...page.events);
    if (page.next_before_seq === null) return events;
    before = page.next_before_seq;
  }
}

export async function feedSeqs(page) {
  return page.$$eval("#feed li.event", (items) => items.map((li) => Number(li.dataset.seq)));
}

export async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

export function screenshotPath(name) {
  const dir = path.join(repo, "target", "screenshots");
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}

// Makes docs/dashboard.png (a wide screen) and docs/dashboard-narrow.png
// (a phone) from a real run: the webserver and a dry-run detector on a
// fresh data directory, some history, some events in progress. Run by
// scripts/screenshots.sh, so the pictures in the README cannot go stale.

import path from "node:path";
import { freePort, launchBrowser, openDashboard, repo, startCameraDetector, startWebserver, tempDataDir } from "./harness.mjs";

const dir = tempDataDir();
const server = await startWebserver(dir, await freePort());
const procs = [server];
const browser = await launchBrowser();
try {
  // History: forty events of a few seconds each, gained labels and all.
  const history = startCameraDetector(dir, ["--dry-run", "--count", "40", "--rate", "10", "--event-secs", "1.5"]);
  procs.push(history);
  if ((await history.exited).code !== 0) throw new Error("the history detector failed");
  // Live: a calm stream with events in progress.
  procs.push(startCameraDetector(dir, ["--dry-run", "--rate", "1", "--event-secs", "8"]));

  for (const [name, viewport] of [["dashboard.png", { width: 1360, height: 900 }], ["dashboard-narrow.png", { width: 390, height: 844 }]]) {
    const { page, errors } = await openDashboard(browser, server.url, viewport);
    await page.waitForSelector('#conn[data-state="connected"]');
    await page.waitForSelector('#feed li.event[data-state="active"]', { timeout: 30000 });
    await page.waitForSelector('#detector.pill--ok');
    // Every picture in view loaded.
    await page.waitForFunction(() => [...document.querySelectorAll("img")]
      .filter((i) => !i.closest("[hidden]") && i.getBoundingClientRect().top < innerHeight)
      .every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 30000 });
    await page.waitForSelector('#health [data-metric="cpu"] dd');
    const file = path.join(repo, "docs", name);
    // Live events keep coming: take the picture when none is loading.
    const loaded = () => page.evaluate(() => [...document.querySelectorAll("img")]
      .filter((i) => !i.closest("[hidden]") && i.getBoundingClientRect().top < innerHeight)
      .every((i) => i.complete && i.naturalWidth > 0));
    for (let tries = 0; tries < 20; tries++) {
      await page.screenshot({ path: file });
      if (await loaded()) break;
      await page.waitForTimeout(250);
    }
    if (errors.length) throw new Error(`console errors: ${errors.join("; ")}`);
    console.log(`wrote ${path.relative(repo, file)} (${viewport.width}×${viewport.height})`);
    await page.close();
  }
} finally {
  await browser.close();
  await Promise.all(procs.map((p) => p.stop("SIGTERM")));
}

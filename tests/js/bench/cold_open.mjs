// Design §4, workload (g): the web app's cold open with thousands of records in Chromium at
// 4× CPU slowdown. Run by bench/src/cold_open.rs against a release relay:
//   node cold_open.mjs <relay http base> <username> <password> <runs>
// Prints one JSON line: {records, samples_ms, runs: [...], ...}.
//
// What "cold open" means here: the phone's browser is restarted, as when the system killed
// the app, with the same profile, so IndexedDB and the service worker's shell cache are
// kept and warm. The account stays unlocked for the browser session in the app's
// sessionStorage, which a restart empties; the script puts that one entry back before the
// page's scripts run, so the figure is the app's own work (shell from the service worker,
// wasm start, IndexedDB read, engine start, list render) and not the user typing a
// password. The CPU slowdown is set through the DevTools protocol before the navigation,
// and each sample is the time from navigation start to the `caresync:list-shown` mark the
// children list sets after the frame that painted its first rows. Those rows may be the
// saved first screen the app shows while its engine starts; `caresync:live-list-shown`
// marks the live list, and its times are printed too (`live_samples_ms`).
// With COLD_OPEN_PROFILE_DIR=<folder>, each run also saves the page's CPU profile
// (cold-open-<run>.cpuprofile, for Chrome's DevTools) and its resource timings there, and
// the first sync's profile goes to first-sync.cpuprofile.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, username, password, runsText] = process.argv.slice(2);
const runs = Number(runsText);
if (!base || !username || !password || !(runs >= 1)) {
  console.error('usage: node cold_open.mjs <relay http base> <username> <password> <runs>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
const viewport = { width: 360, height: 640 };
const CPU_SLOWDOWN = 4;
/** The first sync of thousands of records in a throttle-free browser takes a while. */
const SYNC_TIMEOUT_MS = 1_200_000;
const OPEN_TIMEOUT_MS = 60_000;
const MARK = 'caresync:list-shown';
/** The list as the running engine computed it; MARK may come earlier, from the saved first screen. */
const LIVE_MARK = 'caresync:live-list-shown';
const SESSION_KEY = 'caresync.session';
/** With COLD_OPEN_PROFILE_DIR set, each run's CPU profile and resource timings go there. */
const PROFILE_DIR = process.env.COLD_OPEN_PROFILE_DIR || null;

const log = (...parts) => console.error('[cold-open]', ...parts);

/** Rows of the account's IndexedDB `documents` store that have a summary, by kind. */
function storedSummaries(page) {
  return page.evaluate(
    (accountId) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(`caresync-${accountId}`);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const all = db.transaction('documents').objectStore('documents').getAll();
          all.onerror = () => reject(all.error);
          all.onsuccess = () => {
            const kinds = {};
            for (const row of all.result) {
              if (!row.summary || row.unavailable) continue;
              kinds[row.summary.kind] = (kinds[row.summary.kind] ?? 0) + 1;
            }
            db.close();
            resolve(kinds);
          };
        };
      }),
    globalThis.accountId,
  );
}

/** How many documents the running engine holds a summary of. */
function summariesInMemory(page) {
  return page.evaluate(() => {
    let count = 0;
    for (const info of globalThis.caresyncApp.engine.docs.values()) if (info.summary && !info.unavailable) count += 1;
    return count;
  });
}

const total = (kinds) => Object.values(kinds).reduce((a, b) => a + b, 0);

/** Time of a busy loop in the page, to see that the CPU slowdown took effect. */
function busyLoopMs(page) {
  return page.evaluate(() => {
    const started = performance.now();
    let x = 0;
    for (let i = 0; i < 20_000_000; i += 1) x = (x + i * 7) % 1_000_003;
    globalThis.__busySink = x;
    return performance.now() - started;
  });
}

const profile = mkdtempSync(join(tmpdir(), 'caresync-cold-open-'));
let exitCode = 0;
let context = null;
try {
  // ----- first use: log in and let the app sync every record into IndexedDB ----------
  context = await chromium.launchPersistentContext(profile, { executablePath, args, viewport });
  let page = context.pages()[0] || (await context.newPage());
  const syncStarted = Date.now();
  const syncCdp = PROFILE_DIR ? await context.newCDPSession(page) : null;
  if (syncCdp) {
    await syncCdp.send('Profiler.enable');
    await syncCdp.send('Profiler.setSamplingInterval', { interval: 1000 });
    await syncCdp.send('Profiler.start');
  }
  await page.goto(`${base}/`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  // The login screen has a header too; the sync status is only in the app's own.
  await page.getByTestId('sync-status').waitFor({ timeout: OPEN_TIMEOUT_MS });
  const session = await page.evaluate((key) => sessionStorage.getItem(key), SESSION_KEY);
  if (!session) throw new Error('the app kept no session entry after the login');
  globalThis.accountId = JSON.parse(session).accountId;
  // Waits for the synced state, checking every 250 ms and saying how far the sync got
  // every 15 s (the first-sync time printed below is only as fine as the check).
  let lastReport = 0;
  for (;;) {
    const progress = await page.evaluate(() => {
      const { engine, status } = globalThis.caresyncApp;
      return { state: status.state, documents: engine?.docs.size ?? 0, storageInFlight: engine?.storageInFlight ?? 0 };
    });
    if (progress.state === 'synced') break;
    if (Date.now() - syncStarted > SYNC_TIMEOUT_MS) throw new Error(`not synced after ${SYNC_TIMEOUT_MS} ms: ${JSON.stringify(progress)}`);
    if (Date.now() - lastReport >= 15_000) {
      log(`syncing: ${JSON.stringify(progress)}`);
      lastReport = Date.now();
    }
    await page.waitForTimeout(250);
  }
  // Summaries reach IndexedDB a little after the sync (relaxed, debounced writes): wait
  // until every summary the engine holds is stored, and the shell is in the worker's cache.
  let kinds = {};
  for (;;) {
    kinds = await storedSummaries(page);
    const inMemory = await summariesInMemory(page);
    const synced = await page.locator('[data-testid="sync-status"][data-state="synced"]').count();
    if (synced && inMemory > 0 && total(kinds) === inMemory) break;
    if (Date.now() - syncStarted > SYNC_TIMEOUT_MS) throw new Error(`summaries stored ${total(kinds)}, in memory ${inMemory}`);
    await page.waitForTimeout(500);
  }
  await page.evaluate(() => navigator.serviceWorker.ready);
  const firstSyncMs = Date.now() - syncStarted;
  if (syncCdp) {
    const { profile: cpu } = await syncCdp.send('Profiler.stop');
    writeFileSync(join(PROFILE_DIR, 'first-sync.cpuprofile'), JSON.stringify(cpu));
  }
  log(`first sync: ${total(kinds)} records (${JSON.stringify(kinds)}) in ${firstSyncMs} ms`);
  await context.close();

  // ----- cold opens ---------------------------------------------------------------------
  const samples = [];
  const liveSamples = [];
  const details = [];
  let throttledLoopMs = null;
  let unthrottledLoopMs = null;
  for (let run = 0; run < runs; run += 1) {
    context = await chromium.launchPersistentContext(profile, { executablePath, args, viewport });
    await context.addInitScript(
      ([key, value]) => {
        if (globalThis.sessionStorage && !sessionStorage.getItem(key)) sessionStorage.setItem(key, value);
      },
      [SESSION_KEY, session],
    );
    page = context.pages()[0] || (await context.newPage());
    // The same busy loop before the slowdown (on the blank page) and after the list is
    // shown tells whether the slowdown held across the navigation.
    if (run === 0) unthrottledLoopMs = await busyLoopMs(page);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: CPU_SLOWDOWN });
    if (PROFILE_DIR) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    await page.goto(`${base}/`, { timeout: OPEN_TIMEOUT_MS });
    // A performance observer waits without polling, so it does not add to the page's work.
    const timing = await page.evaluate(
      ([mark, liveMark, timeout]) =>
        new Promise((resolve, reject) => {
          const done = () => {
            const [entry] = performance.getEntriesByName(mark);
            const [live] = performance.getEntriesByName(liveMark);
            if (!entry || !live) return false;
            const [nav] = performance.getEntriesByType('navigation');
            resolve({
              listShownMs: entry.startTime,
              liveListShownMs: live.startTime,
              domContentLoadedMs: nav?.domContentLoadedEventEnd ?? null,
              loadMs: nav?.loadEventEnd ?? null,
              rows: document.querySelectorAll('[data-testid="child-row"]').length,
            });
            return true;
          };
          if (done()) return;
          new PerformanceObserver(() => done()).observe({ type: 'mark' });
          setTimeout(() => reject(new Error(`no ${mark} and ${liveMark} marks within ${timeout} ms`)), timeout);
        }),
      [MARK, LIVE_MARK, OPEN_TIMEOUT_MS],
    );
    if (PROFILE_DIR) {
      const { profile: cpu } = await cdp.send('Profiler.stop');
      writeFileSync(join(PROFILE_DIR, `cold-open-${run + 1}.cpuprofile`), JSON.stringify(cpu));
      const resources = await page.evaluate(() =>
        performance.getEntriesByType('resource').map((r) => `${r.startTime.toFixed(0)}-${r.responseEnd.toFixed(0)} ${r.name}`),
      );
      writeFileSync(join(PROFILE_DIR, `cold-open-${run + 1}.resources.txt`), resources.join('\n'));
    }
    if (run === 0) throttledLoopMs = await busyLoopMs(page);
    samples.push(Math.round(timing.listShownMs * 10) / 10);
    liveSamples.push(Math.round(timing.liveListShownMs * 10) / 10);
    details.push(timing);
    log(
      `run ${run + 1}: list shown at ${timing.listShownMs.toFixed(1)} ms, live list at ${timing.liveListShownMs.toFixed(1)} ms (${timing.rows} child rows in the page by then)`,
    );
    await context.close();
  }
  const medianOf = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  };
  console.log(
    JSON.stringify({
      records: total(kinds),
      kinds,
      cold_open: 'browser restart, same profile (IndexedDB and service worker cache kept), account unlocked',
      cpu_slowdown: CPU_SLOWDOWN,
      observed_slowdown: throttledLoopMs && unthrottledLoopMs ? Math.round((throttledLoopMs / unthrottledLoopMs) * 100) / 100 : null,
      first_sync_ms: firstSyncMs,
      samples_ms: samples,
      median_ms: medianOf(samples),
      live_samples_ms: liveSamples,
      live_median_ms: medianOf(liveSamples),
      runs: details,
    }),
  );
} catch (error) {
  console.error(error && error.stack ? error.stack : error);
  exitCode = 1;
} finally {
  // The browser writes its profile until it has closed.
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);

// The web app's end-to-end tests in Debian's headless Chromium, driven by playwright-core.
// Run by tests/tests/browser.rs against a real relay with demo data:
//   node app.test.mjs <relay base url> <screenshot folder>
// Each step prints `ok - <name>` or `not ok - <name>: <error>`; the exit code is the number
// of failed steps (0: all passed).

import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: node app.test.mjs <relay base url> <screenshot folder>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
const viewport = { width: 360, height: 640 };
const PASSWORD = 'demo-password';
const LONG = 60_000;
let failures = 0;

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
    return true;
  } catch (error) {
    failures += 1;
    console.log(`not ok - ${name}: ${error && error.stack ? error.stack : error}`);
    return false;
  }
}

const byId = (page, id) => page.getByTestId(id);
const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`) });

async function login(page, username) {
  await page.goto(`${base}/`);
  await byId(page, 'login-username').fill(username);
  await byId(page, 'login-password').fill(PASSWORD);
  await byId(page, 'login-submit').click();
  await byId(page, 'app-header').waitFor({ timeout: LONG });
}

async function syncState(page, state) {
  await page.waitForSelector(`[data-testid="sync-status"][data-state="${state}"]`, { timeout: LONG });
}

/** Records a visit with every checklist item ok; returns its document id (from the URL). */
async function recordVisit(page, needs, { final = true } = {}) {
  await byId(page, 'new-visit').click();
  await byId(page, 'visit-form').waitFor();
  for (const area of ['guardianship', 'schooling', 'health', 'safety', 'living']) {
    await byId(page, `check-${area}-ok`).click();
  }
  await byId(page, 'visit-needs').fill(needs);
  await byId(page, 'visit-next-suggest').click();
  await byId(page, final ? 'visit-save-final' : 'visit-save-draft').click();
  await byId(page, 'visit-title').waitFor({ timeout: LONG });
  const match = /#\/visit\/([1-9A-HJ-NP-Za-km-z]+)/.exec(page.url());
  if (!match) throw new Error(`no visit id in ${page.url()}`);
  return match[1];
}

async function recordState(page, state) {
  await page.waitForSelector(`[data-testid="record-state"][data-state="${state}"]`, { timeout: LONG });
}

async function openFirstChild(page) {
  await byId(page, 'child-row').first().waitFor({ timeout: LONG });
  const child = await byId(page, 'child-row').first().getAttribute('data-document');
  await byId(page, 'child-row').first().click();
  await byId(page, 'child-title').waitFor();
  return child;
}

const browser = await chromium.launch({ executablePath, args });
let visitId = null;
let childId = null;
const director = await browser.newContext({ viewport });
const field = await director.newPage();

await step('a village child director logs in and sees the children, overdue first', async () => {
  await login(field, 'demo-director');
  await syncState(field, 'synced');
  await byId(field, 'child-row').first().waitFor({ timeout: LONG });
  const dues = await byId(field, 'child-row').evaluateAll((rows) => rows.map((r) => r.dataset.due));
  if (dues.length < 3) throw new Error(`only ${dues.length} children listed`);
  const rank = { never: 0, overdue: 1, soon: 2, later: 3 };
  for (let i = 1; i < dues.length; i += 1) {
    if ((rank[dues[i]] ?? 9) < (rank[dues[i - 1]] ?? 9)) throw new Error(`not sorted by due: ${dues}`);
  }
  if (!dues.includes('overdue') && !dues.includes('never')) throw new Error(`no overdue child: ${dues}`);
  await shot(field, 'director-children');
});

await step('the app is in Chinese by default and switches to English and back', async () => {
  if ((await field.evaluate(() => document.documentElement.lang)) !== 'zh-CN') throw new Error('not zh-CN by default');
  const chinese = await byId(field, 'screen').innerText();
  await byId(field, 'lang-switch').click();
  await field.waitForFunction(() => document.documentElement.lang === 'en');
  const english = await byId(field, 'screen').innerText();
  // The list's title comes from the catalogue; children's names stay as they are.
  if (!chinese.includes('本村儿童') || english.includes('本村儿童') || !/children/i.test(english)) {
    throw new Error(`the screen did not switch to English: ${english.slice(0, 200)}`);
  }
  await shot(field, 'director-children-en');
  await byId(field, 'lang-switch').click();
  await field.waitForFunction(() => document.documentElement.lang === 'zh-CN');
});

await step('a restart shows the saved first screen at once, then the live list with the same rows', async () => {
  await field.reload();
  await field.waitForFunction(() => performance.getEntriesByName('caresync:live-list-shown').length > 0, null, { timeout: LONG });
  const seen = await field.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('caresync.first-screen.'));
    const saved = key ? JSON.parse(localStorage.getItem(key)) : null;
    const live = [...document.querySelectorAll('[data-testid="child-row"]')].map((row) => row.dataset.document);
    return {
      rendered: performance.getEntriesByName('caresync:saved-list-rendered').length,
      saved: saved ? saved.rows.map((row) => row.document) : [],
      live,
    };
  });
  if (seen.rendered !== 1) throw new Error('the saved first screen was not shown while the engine started');
  if (seen.saved.length < 3) throw new Error(`the saved first screen has ${seen.saved.length} rows`);
  const liveFirst = seen.live.slice(0, seen.saved.length);
  if (JSON.stringify(liveFirst) !== JSON.stringify(seen.saved)) {
    throw new Error(`the saved first screen differs from the live list: ${seen.saved} vs ${liveFirst}`);
  }
});

await step('the director records a visit and it syncs', async () => {
  childId = await openFirstChild(field);
  await shot(field, 'director-child');
  await byId(field, 'new-visit').waitFor();
  visitId = await recordVisit(field, '需要学习用品');
  await shot(field, 'director-visit');
  await recordState(field, 'synced');
});

await step('offline: a visit recorded offline survives a reload and syncs when back online', async () => {
  await director.setOffline(true);
  await syncState(field, 'offline');
  await field.goto(`${base}/#/child/${childId}`);
  await byId(field, 'child-title').waitFor();
  visitId = await recordVisit(field, '离线记录：需要冬衣');
  await recordState(field, 'saved');
  await field.reload();
  await byId(field, 'visit-title').waitFor({ timeout: LONG });
  const details = await byId(field, 'visit-details').innerText();
  if (!details.includes('离线记录：需要冬衣')) throw new Error(`the offline visit is gone after a reload: ${details}`);
  await shot(field, 'director-offline-visit');
  // The shell cache is named after the content hash the wasm build wrote, so a changed app
  // reaches phones without a hand-bumped version.
  const generated = readFileSync(new URL('../../../web-demo/pkg/shell-version.js', import.meta.url), 'utf8');
  const expected = /'(caresync-shell-[0-9a-f]+)'/.exec(generated)?.[1];
  const names = await field.evaluate(() => caches.keys());
  if (!expected || !names.includes(expected)) throw new Error(`shell cache ${names} is not ${expected}`);
  await director.setOffline(false);
  await recordState(field, 'synced');
});

await step('the township reviewer returns the visit with a comment and the director sees it', async () => {
  const desk = await (await browser.newContext({ viewport })).newPage();
  await login(desk, 'demo-reviewer');
  await byId(desk, 'review-queue').waitFor({ timeout: LONG });
  await shot(desk, 'reviewer-queue');
  const row = desk.locator(`[data-testid="review-row"][data-id="${visitId}"]`);
  await row.waitFor({ timeout: LONG });
  await row.click();
  await byId(desk, 'review-detail').waitFor();
  await byId(desk, 'return-comment').fill('请补充监护人联系电话');
  await byId(desk, 'return-submit').click();
  await desk.waitForSelector('[data-testid="review-result"][data-state="returned"]', { timeout: LONG });
  await shot(desk, 'reviewer-returned');
  await byId(desk, 'back').first().click();
  await byId(desk, 'tab-dashboard').click();
  for (const chart of ['chart-coverage', 'chart-overdue', 'chart-hours']) {
    await desk.locator(`[data-testid="${chart}"] svg`).first().waitFor({ timeout: LONG });
  }
  await shot(desk, 'reviewer-dashboard');
  const xlsx = await byId(desk, 'export-xlsx').getAttribute('href');
  if (!xlsx || !xlsx.includes('/api/v1/exports/month.xlsx')) throw new Error(`export link: ${xlsx}`);
  await field.goto(`${base}/#/visit/${visitId}`);
  await field.waitForFunction(
    () => (document.querySelector('[data-testid="visit-review-comment"]')?.textContent || '').includes('请补充监护人联系电话'),
    null,
    { timeout: LONG },
  );
  await recordState(field, 'returned');
  await shot(field, 'director-returned');
});

await step('offline: the township reviewer sees the queue from the phone and the last reports', async () => {
  const context = await browser.newContext({ viewport });
  try {
    const desk = await context.newPage();
    await login(desk, 'demo-reviewer');
    await syncState(desk, 'synced');
    await byId(desk, 'review-row').first().waitFor({ timeout: LONG });
    const onlineTotal = await byId(desk, 'review-total').innerText();
    await byId(desk, 'tab-dashboard').click();
    for (const chart of ['chart-coverage', 'chart-overdue', 'chart-hours']) {
      await desk.locator(`[data-testid="${chart}"] svg`).first().waitFor({ timeout: LONG });
    }
    // The reports are kept in the account's IndexedDB; the shell is cached by the worker.
    await desk.waitForFunction(
      () =>
        new Promise((resolve) => {
          const open = indexedDB.open(`caresync-${globalThis.caresyncApp.account.id}`);
          open.onerror = () => resolve(false);
          open.onsuccess = () => {
            const db = open.result;
            const get = db.transaction('kv').objectStore('kv').get('screen.reviewer.reports.v1');
            get.onsuccess = () => {
              const kept = get.result && get.result.value;
              db.close();
              resolve(Boolean(kept && kept.overdue && kept.months && Object.keys(kept.months).length));
            };
            get.onerror = () => resolve(false);
          };
        }),
      null,
      { timeout: LONG },
    );
    await desk.evaluate(() => navigator.serviceWorker.ready);
    await desk.waitForFunction(() => Boolean(navigator.serviceWorker.controller), null, { timeout: LONG });

    await context.setOffline(true);
    await desk.reload();
    await byId(desk, 'review-queue').waitFor({ timeout: LONG });
    await byId(desk, 'offline-note').waitFor({ timeout: LONG });
    await byId(desk, 'review-row').first().waitFor({ timeout: LONG });
    const rows = await byId(desk, 'review-row').count();
    if (rows < 1) throw new Error('no review rows offline');
    const offlineTotal = await byId(desk, 'review-total').innerText();
    if (offlineTotal !== onlineTotal) throw new Error(`offline queue ${offlineTotal}, online ${onlineTotal}`);
    await shot(desk, 'reviewer-offline-queue');
    await byId(desk, 'review-row').first().click();
    await byId(desk, 'review-detail').waitFor();
    await byId(desk, 'offline-note').waitFor();
    if (!(await byId(desk, 'approve').isDisabled())) throw new Error('approve is enabled offline');
    if (!(await byId(desk, 'return-submit').isDisabled())) throw new Error('return is enabled offline');
    await byId(desk, 'back').first().click();
    await byId(desk, 'tab-dashboard').click();
    await byId(desk, 'report-as-of').waitFor({ timeout: LONG });
    for (const chart of ['chart-coverage', 'chart-overdue', 'chart-hours']) {
      await desk.locator(`[data-testid="${chart}"] svg`).first().waitFor({ timeout: LONG });
    }
    await shot(desk, 'reviewer-offline-dashboard');
  } finally {
    await context.close();
  }
});

await step('a care worker checks in and out of a service and sees the hours', async () => {
  const phone = await (await browser.newContext({ viewport })).newPage();
  await login(phone, 'demo-worker');
  await syncState(phone, 'synced');
  await byId(phone, 'elder-row').first().waitFor({ timeout: LONG });
  await shot(phone, 'worker-elders');
  const before = Number(await byId(phone, 'hours-month').getAttribute('data-minutes'));
  if (!Number.isFinite(before)) throw new Error('no hours this month shown');
  await byId(phone, 'elder-row').first().click();
  await byId(phone, 'service-type-visiting').click();
  await byId(phone, 'check-in').click();
  await byId(phone, 'open-log').waitFor({ timeout: LONG });
  await shot(phone, 'worker-checked-in');
  // A service shorter than a minute needs its duration entered by hand (validation).
  await byId(phone, 'check-out').click();
  await byId(phone, 'override-minutes').waitFor({ timeout: LONG });
  await byId(phone, 'override-minutes').fill('45');
  await byId(phone, 'override-reason').fill('补录：测试');
  await byId(phone, 'check-out').click();
  await byId(phone, 'open-log').waitFor({ state: 'detached', timeout: LONG });
  await byId(phone, 'log-row').first().waitFor({ timeout: LONG });
  await shot(phone, 'worker-checked-out');
  await byId(phone, 'back').first().click();
  await byId(phone, 'hours-today').waitFor({ timeout: LONG });
  const month = Number(await byId(phone, 'hours-month').getAttribute('data-minutes'));
  if (!(month >= before + 45)) throw new Error(`hours this month went from ${before} to ${month} minutes`);
  await shot(phone, 'worker-hours');
});

await browser.close();

await step('an edit shown as saved survives a killed browser', async () => {
  const profile = mkdtempSync(join(tmpdir(), 'caresync-profile-'));
  try {
    let context = await chromium.launchPersistentContext(profile, { executablePath, args, viewport });
    let page = context.pages()[0] || (await context.newPage());
    await login(page, 'demo-director-2');
    await syncState(page, 'synced');
    await openFirstChild(page);
    // Offline, so the edit can only survive in this browser's own storage.
    await context.setOffline(true);
    const killed = await recordVisit(page, '杀进程测试', { final: false });
    await recordState(page, 'saved');
    // Browser.crash kills the whole browser at once, like a killed app on a phone: the call
    // itself fails because its target is gone, which is the point.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Browser.crash').catch(() => {});
    await context.close().catch(() => {});

    context = await chromium.launchPersistentContext(profile, { executablePath, args, viewport });
    await context.setOffline(true);
    page = context.pages()[0] || (await context.newPage());
    await page.goto(`${base}/`);
    // After a browser restart with no network the account unlocks offline on this device.
    await Promise.race([
      byId(page, 'login-form').waitFor({ timeout: LONG }),
      byId(page, 'app-header').waitFor({ timeout: LONG }),
    ]);
    if (await byId(page, 'login-form').isVisible()) {
      await byId(page, 'login-username').fill('demo-director-2');
      await byId(page, 'login-password').fill(PASSWORD);
      await byId(page, 'login-submit').click();
      await byId(page, 'app-header').waitFor({ timeout: LONG });
    }
    await page.goto(`${base}/#/visit/${killed}`);
    await byId(page, 'visit-details').waitFor({ timeout: LONG });
    const details = await byId(page, 'visit-details').innerText();
    if (!details.includes('杀进程测试')) throw new Error(`the saved edit is gone: ${details}`);
    await context.close();
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});

process.exit(failures);

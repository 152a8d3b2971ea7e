// The township reviewer's screen (roles `township-reviewer` and `bureau-admin`). Online:
// the review queue, review actions and reports come from the relay API (ctx.api); a
// record's full content comes from the device's own replica (ctx.engine) when it has
// synced there.
//
// Offline (no network, or the API answers `.offline`): the queue is built from the
// summaries on this phone (the device syncs every record of its scope), with the same
// filters and order as the API; approve/return are disabled (the relay writes reviews).
// The dashboard shows the last answers of the three report calls kept in the account's
// IndexedDB `kv` (localStorage if that fails), marked "as of <time>".

import { Store } from '../store.js';
import { barChart } from './charts.js';
import { bare, chinaDay, chinaTime, h, injectStyle, isNum, makeT, messageOf, serviceLabel, str } from './worker.js';

const KINDS = ['home-visit', 'service-log'];
const REVIEW_STATES = ['pending', 'returned', 'approved'];
const CHECKLIST = ['guardianship', 'schooling', 'health', 'safety', 'living'];
const RECORD_WAIT_MS = 2500;
const REVIEW_COMMENT_MAX = 1000;
const PAGE_SIZE = 50; // the API's default page size
const REPORTS_KEY = 'screen.reviewer.reports.v1';
const REPORT_MONTHS_KEPT = 6;

const STYLE_ID = 'cs-reviewer-style';
const STYLE = `
.cs-tabs{display:grid;grid-template-columns:1fr 1fr;gap:.4rem;margin-bottom:.75rem}
.cs-tab{min-height:48px;border-radius:10px;border:1px solid #bcccdc;background:#fff;font:inherit;font-weight:600;
  color:#323f4b;cursor:pointer}
.cs-tab[aria-selected="true"]{background:#1f6fd1;border-color:#1f6fd1;color:#fff}
.cs-filters{display:grid;grid-template-columns:1fr 1fr;gap:.5rem;margin-bottom:.6rem}
.cs-filters .cs-field{margin-top:0;min-width:0}
.cs-filters .cs-field-wide{grid-column:1 / -1}
.cs-pager{display:flex;align-items:center;justify-content:space-between;gap:.5rem;margin-top:.75rem}
.cs-pager-info{font-size:.9rem;color:#52606d;text-align:center}
.cs-total{font-size:.9rem;color:#52606d;margin:.25rem 0 .5rem}
.cs-badge-pending{background:#e4e7eb;color:#323f4b}
.cs-chart-card h3{margin:0 0 .15rem}
.cs-chart-sub{font-size:.85rem;color:#52606d;margin:0 0 .6rem}
.cs-dash-top{display:flex;flex-wrap:wrap;align-items:flex-end;gap:.6rem;margin-bottom:.75rem}
.cs-dash-top .cs-field{margin-top:0;flex:1 1 9rem}
.cs-dash-top .cs-btn{flex:1 1 12rem}
.cs-review-actions{display:grid;gap:.5rem}
.cs-list-plain{margin:.2rem 0 0;padding-left:1.2rem}
.cs-risk-red{color:#b42318;font-weight:700}
.cs-risk-yellow{color:#8a6100;font-weight:700}
.cs-risk-blue{color:#1f56b8;font-weight:700}
.cs-risk-green{color:#17663a;font-weight:700}
.cs-offline-note{margin:0 0 .6rem}
.cs-btn[aria-disabled="true"]{opacity:.55;pointer-events:none}
`;

function currentMonth() {
  return chinaDay(Date.now()).slice(0, 7);
}

function lastDayOf(month) {
  const [year, mon] = month.split('-').map(Number);
  return new Date(Date.UTC(year, mon, 0)).getUTCDate();
}

function withTimeout(promise, ms) {
  return Promise.race([Promise.resolve(promise), new Promise((resolve) => setTimeout(() => resolve(undefined), ms))]);
}

function browserOffline() {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

function isOfflineError(err) {
  return Boolean(err && err.offline) || browserOffline();
}

// ----- the kept report answers: the account's IndexedDB `kv`, else localStorage -----

function localKey(accountId) {
  return `caresync.${accountId}.${REPORTS_KEY}`;
}

async function readReportCache(accountId) {
  if (accountId == null) return null;
  try {
    const store = await Store.forAccount(accountId);
    try {
      const value = await store.kvGet(REPORTS_KEY);
      if (value) return value;
    } finally {
      store.close();
    }
  } catch {
    /* no IndexedDB: try localStorage */
  }
  try {
    const text = localStorage.getItem(localKey(accountId));
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

async function writeReportCache(accountId, value) {
  if (accountId == null) return;
  try {
    const store = await Store.forAccount(accountId);
    try {
      await store.kvSet(REPORTS_KEY, value, false);
      return;
    } finally {
      store.close();
    }
  } catch {
    /* no IndexedDB: try localStorage */
  }
  try {
    localStorage.setItem(localKey(accountId), JSON.stringify(value));
  } catch {
    /* full or unavailable: the dashboard just has nothing kept */
  }
}

/** A queue item (the API's `RecordItem` shape) from a summary on this phone. */
function itemOfSummary(row) {
  return {
    id: str(row.document),
    kind: str(row.kind),
    village: str(row.orgUnit),
    village_name: '',
    subject: row.subject ?? null,
    worker: row.worker ?? null,
    title: str(row.title),
    day: row.day ?? null,
    minutes: isNum(row.minutes) ? row.minutes : null,
    record_status: row.recordStatus ?? null,
    review_state: row.reviewState ?? null,
    review_comment: row.reviewComment ?? null,
    next_visit: row.nextVisit ?? null,
    risk: row.risk ?? null,
  };
}

/** The API's order: newest day first, records without a day last, then by document id. */
function byDayDesc(a, b) {
  const da = str(a.day);
  const db = str(b.day);
  if (!da !== !db) return da ? -1 : 1;
  if (da !== db) return da < db ? 1 : -1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function renderReviewer(ctx, root) {
  const t = makeT(ctx);
  const lang = ctx.lang === 'en' ? 'en' : 'zh';
  const engine = ctx.engine || null;
  injectStyle();
  if (!document.getElementById(STYLE_ID)) document.head.append(h('style', { id: STYLE_ID }, STYLE));

  const token = {};
  root.__csScreen = token;
  const wrap = h('section', { class: 'cs-screen cs-reviewer', 'data-testid': 'reviewer-screen' });
  if (root.dataset) root.dataset.screen = 'reviewer';
  root.replaceChildren(wrap);
  const alive = () => root.__csScreen === token && wrap.isConnected;

  const s = {
    tab: 'queue',
    filters: { village: '', kind: '', state: 'pending' },
    page: 1,
    list: null,
    listError: null,
    listLoading: false,
    villages: new Map(), // code -> name
    names: new Map(), // subject document id -> name
    detail: null, // the list item
    record: undefined, // undefined: loading; null: not on this device
    returnText: '',
    reviewError: null,
    reviewResult: null,
    busy: false,
    month: currentMonth(),
    reports: null, // {month, from, to, coverage, overdue, hours, errors, offline, asOf}
    reportsLoading: false,
    pending: false,
    offline: false, // the queue shown is this phone's own (no network)
  };
  const accountId = ctx.account && ctx.account.id != null ? ctx.account.id : null;
  let reportCache = null; // Promise of the kept report answers (read once per render)
  const keptReports = () => {
    reportCache ??= readReportCache(accountId).then((value) => (value && typeof value === 'object' ? value : {}));
    return reportCache;
  };

  /** The API's messages are "中文 / English": show the half in the UI language. */
  function apiMessage(err) {
    const text = messageOf(err);
    const parts = text.split(' / ');
    if (parts.length >= 2) return lang === 'en' ? parts.slice(1).join(' / ') : parts[0];
    return text || str(err && err.status);
  }

  function villageName(code, fallback) {
    return s.villages.get(str(code)) || str(fallback) || str(code);
  }

  function subjectName(item) {
    if (item.title) return str(item.title);
    return s.names.get(bare(item.subject)) || '';
  }

  // ------------------------------------------------------------------ data

  async function loadNames() {
    if (!engine || typeof engine.summaries !== 'function') return;
    for (const kind of ['child', 'elder']) {
      try {
        const rows = (await engine.summaries(kind)) || [];
        for (const row of rows) if (row.title) s.names.set(bare(row.document), str(row.title));
      } catch {
        /* names are a nicety */
      }
    }
  }

  function namesFromCoverage(report) {
    for (const v of (report && report.villages) || []) {
      if (v.village_name || !s.villages.has(str(v.village))) s.villages.set(str(v.village), str(v.village_name));
    }
  }

  async function loadVillages() {
    try {
      if (browserOffline()) throw Object.assign(new Error('offline'), { offline: true });
      namesFromCoverage(await ctx.api('reports/coverage'));
    } catch {
      // The list items name their villages too; offline, the kept coverage answer does.
      const kept = await keptReports();
      for (const entry of Object.values(kept.months || {})) {
        if (entry && entry.coverage) namesFromCoverage(entry.coverage.value);
      }
    }
  }

  /** The queue from the summaries on this phone, filtered and ordered as the API does. */
  async function offlinePage() {
    const kinds = s.filters.kind ? [s.filters.kind] : KINDS;
    const rows = [];
    if (engine && typeof engine.summaries === 'function') {
      for (const kind of kinds) rows.push(...((await engine.summaries(kind)) || []));
    }
    const items = rows
      .filter((row) => row && !row.refusedOnly && KINDS.includes(str(row.kind)))
      .filter((row) => !s.filters.village || str(row.orgUnit) === s.filters.village)
      .filter((row) => !s.filters.state || str(row.reviewState) === s.filters.state)
      .map(itemOfSummary)
      .sort(byDayDesc);
    for (const item of items) {
      if (item.village && !s.villages.has(item.village)) s.villages.set(item.village, '');
    }
    const pages = Math.max(1, Math.ceil(items.length / PAGE_SIZE));
    if (s.page > pages) s.page = pages;
    const start = (s.page - 1) * PAGE_SIZE;
    return { total: items.length, page: s.page, page_size: PAGE_SIZE, items: items.slice(start, start + PAGE_SIZE), offline: true };
  }

  async function showOfflineList() {
    try {
      s.list = await offlinePage();
      s.offline = true;
      s.listError = null;
    } catch (err) {
      s.listError = apiMessage(err);
    }
  }

  async function loadList() {
    s.listLoading = true;
    s.listError = null;
    render();
    const params = new URLSearchParams();
    if (s.filters.kind) params.set('kind', s.filters.kind);
    if (s.filters.village) params.set('village', s.filters.village);
    if (s.filters.state) params.set('review_state', s.filters.state);
    params.set('page', String(s.page));
    if (browserOffline()) {
      await showOfflineList();
    } else {
      try {
        const page = await ctx.api(`records?${params}`);
        s.list = page;
        s.offline = false;
        for (const item of page.items || []) {
          if (item.village && !s.villages.has(item.village)) s.villages.set(item.village, str(item.village_name));
        }
      } catch (err) {
        if (isOfflineError(err)) await showOfflineList();
        else s.listError = apiMessage(err);
      }
    }
    s.listLoading = false;
    render();
  }

  async function loadRecord(item) {
    if (!engine || typeof engine.record !== 'function') {
      s.record = null;
      return;
    }
    let rec = null;
    try {
      rec = await withTimeout(engine.record(item.id), RECORD_WAIT_MS);
    } catch {
      rec = null;
    }
    if (s.detail === item) s.record = rec || null;
  }

  let keeping = Promise.resolve(); // one read-modify-write of the kept answers at a time

  /** Keeps the answers that came from the relay, for the dashboard offline. */
  async function keepReports(month, from, to, answers) {
    const at = Date.now();
    const kept = await keptReports();
    const months = { ...(kept.months || {}) };
    const entry = { ...(months[month] || {}) };
    if (answers.coverage) entry.coverage = { value: answers.coverage, from, to, at };
    if (answers.hours) entry.hours = { value: answers.hours, at };
    if (answers.coverage || answers.hours) {
      delete months[month];
      months[month] = entry; // newest last
      for (const old of Object.keys(months).slice(0, -REPORT_MONTHS_KEPT)) delete months[old];
    }
    const next = {
      ...kept,
      months,
      lastMonth: answers.coverage || answers.hours ? month : kept.lastMonth,
      overdue: answers.overdue ? { value: answers.overdue, at } : kept.overdue,
    };
    reportCache = Promise.resolve(next);
    await writeReportCache(accountId, next);
  }

  async function loadReports({ picked = false } = {}) {
    const asked = s.month;
    let month = asked;
    s.reportsLoading = true;
    render();
    const today = chinaDay(Date.now());
    let from = `${month}-01`;
    const last = `${month}-${String(lastDayOf(month)).padStart(2, '0')}`;
    let to = today < last && today >= from ? today : last;
    const errors = {};
    const offline = {};
    const get = (key, path) => {
      if (browserOffline()) {
        offline[key] = true;
        return Promise.resolve(null);
      }
      return ctx.api(path).catch((err) => {
        if (isOfflineError(err)) offline[key] = true;
        else errors[key] = apiMessage(err);
        return null;
      });
    };
    let [coverage, overdue, hours] = await Promise.all([
      get('coverage', `reports/coverage?from=${from}&to=${to}`),
      get('overdue', 'reports/overdue'),
      get('hours', `reports/hours?month=${month}`),
    ]);
    namesFromCoverage(coverage);
    if (coverage || overdue || hours) {
      const answers = { coverage, overdue, hours };
      keeping = keeping
        .then(() => keepReports(month, from, to, answers))
        .catch((err) => console.warn('caresync: reports not kept', err));
    }
    if (s.month !== asked) return; // a newer month was asked for meanwhile
    let asOf = null;
    const offlineNow = Object.keys(offline).length > 0;
    if (offlineNow) {
      const kept = await keptReports();
      const months = kept.months || {};
      // Opened offline in a month with nothing kept (e.g. the month turned): show the
      // last month kept. A month the user picked stays, with nothing to show.
      if (!months[month] && !picked && kept.lastMonth && months[kept.lastMonth] && offline.coverage && offline.hours) {
        month = kept.lastMonth;
      }
      const entry = months[month] || {};
      const stamps = [];
      const use = (key, saved) => {
        if (!offline[key]) return null;
        if (!saved) {
          errors[key] = t('scr.dash.nothingKept');
          return null;
        }
        stamps.push(saved.at);
        return saved.value;
      };
      if (offline.coverage) {
        coverage = use('coverage', entry.coverage);
        if (entry.coverage) ({ from, to } = entry.coverage);
        else from = to = '';
      }
      if (offline.overdue) overdue = use('overdue', kept.overdue);
      if (offline.hours) hours = use('hours', entry.hours);
      namesFromCoverage(coverage);
      const numbers = stamps.filter(isNum);
      asOf = numbers.length ? Math.min(...numbers) : null;
      if (s.month !== asked) return;
      s.month = month;
    }
    s.reports = { month, from, to, coverage, overdue, hours, errors, offline: offlineNow, asOf };
    s.reportsLoading = false;
    render();
  }

  // ------------------------------------------------------------------ refresh

  function typing() {
    const active = document.activeElement;
    return !!active && wrap.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  let refreshTimer = null;
  function onEngineChanged() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      if (!alive()) return;
      if (!s.detail) {
        // The offline queue is this phone's summaries: show what changed in them.
        if (s.offline && s.list && s.list.offline && !s.listLoading && !typing()) {
          await showOfflineList();
          if (alive() && !s.detail) render();
        }
        return;
      }
      if (typing() || s.busy) {
        s.pending = true;
        return;
      }
      await loadRecord(s.detail);
      if (alive()) render();
    }, 200);
  }
  wrap.addEventListener('focusout', () => {
    setTimeout(() => {
      if (s.pending && alive() && !typing()) {
        s.pending = false;
        onEngineChanged();
      }
    }, 0);
  });
  if (engine && typeof engine.on === 'function') {
    let off = null;
    try {
      off = engine.on('changed', () => {
        if (!alive()) {
          if (typeof off === 'function') off();
          return;
        }
        onEngineChanged();
      });
    } catch {
      /* no events: the detail shows what was there when opened */
    }
  }

  // The network came back: the queue and reports shown from this phone come from the relay again.
  if (typeof window !== 'undefined' && window.addEventListener) {
    const onOnline = () => {
      if (!alive()) {
        window.removeEventListener('online', onOnline);
        window.removeEventListener('offline', onOffline);
        return;
      }
      if (s.offline && !s.listLoading) loadList();
      else render();
      if (s.reports && s.reports.offline && !s.reportsLoading) loadReports({ picked: true });
    };
    const onOffline = () => {
      if (!alive()) {
        window.removeEventListener('online', onOnline);
        window.removeEventListener('offline', onOffline);
        return;
      }
      render(); // review actions need the network
    };
    window.addEventListener('online', onOnline);
    window.addEventListener('offline', onOffline);
  }

  // ------------------------------------------------------------------ actions

  function setFilter(name, value) {
    s.filters[name] = value;
    s.page = 1;
    loadList();
  }

  function openDetail(item) {
    s.detail = item;
    s.record = undefined;
    s.returnText = '';
    s.reviewError = null;
    s.reviewResult = null;
    render();
    if (typeof window !== 'undefined' && window.scrollTo) window.scrollTo(0, 0);
    loadRecord(item).then(() => {
      if (alive()) render();
    });
  }

  function closeDetail() {
    const changed = s.reviewResult != null;
    s.detail = null;
    s.record = undefined;
    if (changed) loadList();
    else render();
  }

  /** Reviews are written by the relay: none without a network. */
  function reviewsOffline() {
    return s.offline || browserOffline();
  }

  async function review(action) {
    if (s.busy || !s.detail || reviewsOffline()) return;
    const comment = s.returnText.trim();
    s.reviewError = null;
    if (action === 'return' && !comment) {
      s.reviewError = t('scr.reviewer.commentRequired');
      render();
      return;
    }
    const item = s.detail;
    s.busy = true;
    render();
    try {
      const body = action === 'return' ? { action, comment } : { action };
      const answer = await ctx.api(`records/${encodeURIComponent(item.id)}/review`, { method: 'POST', body });
      const state = str((answer && answer.review_state) || (action === 'approve' ? 'approved' : 'returned'));
      s.reviewResult = state;
      item.review_state = state;
      if (action === 'return') item.review_comment = comment;
      s.returnText = '';
    } catch (err) {
      s.reviewError = t('scr.reviewer.apiError', { message: apiMessage(err) });
    }
    s.busy = false;
    render();
  }

  function setTab(tab) {
    s.tab = tab;
    render();
    if (tab === 'dashboard' && (!s.reports || s.reports.month !== s.month) && !s.reportsLoading) loadReports();
    if (tab === 'queue' && !s.list && !s.listLoading) loadList();
  }

  // ------------------------------------------------------------------ pieces

  function reviewBadge(state) {
    const value = str(state) || 'pending';
    return h(
      'span',
      { class: `cs-badge cs-badge-${value}`, 'data-testid': 'review-state', 'data-state': value },
      t(`scr.review.${value}`),
    );
  }

  function select(testid, label, value, options, onchange, wide) {
    return h(
      'label',
      { class: `cs-field${wide ? ' cs-field-wide' : ''}` },
      h('span', { class: 'cs-label' }, label),
      h(
        'select',
        { class: 'cs-select', 'data-testid': testid, onchange: (e) => onchange(e.target.value) },
        options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
      ),
    );
  }

  function filters() {
    const villages = [...s.villages.entries()].map(([code, name]) => [code, name || code]).sort((a, b) => a[0].localeCompare(b[0]));
    return h(
      'div',
      { class: 'cs-filters' },
      select(
        'filter-village',
        t('scr.reviewer.village'),
        s.filters.village,
        [['', t('scr.reviewer.allVillages')], ...villages],
        (v) => setFilter('village', v),
        true,
      ),
      select(
        'filter-kind',
        t('scr.reviewer.kind'),
        s.filters.kind,
        [['', t('scr.reviewer.allKinds')], ...KINDS.map((k) => [k, t(`scr.kind.${k}`)])],
        (v) => setFilter('kind', v),
      ),
      select(
        'filter-state',
        t('scr.reviewer.state'),
        s.filters.state,
        [['', t('scr.reviewer.allStates')], ...REVIEW_STATES.map((k) => [k, t(`scr.review.${k}`)])],
        (v) => setFilter('state', v),
      ),
    );
  }

  function itemRow(item) {
    const sub = [t(`scr.kind.${str(item.kind)}`)];
    const name = subjectName(item);
    if (name) sub.push(name);
    if (item.day) sub.push(str(item.day));
    if (isNum(item.minutes)) sub.push(t('scr.minutes', { n: item.minutes }));
    return h(
      'button',
      { type: 'button', class: 'cs-row', 'data-testid': 'review-row', 'data-id': item.id, onclick: () => openDetail(item) },
      h(
        'span',
        { class: 'cs-row-top' },
        h('span', { class: 'cs-row-title' }, villageName(item.village, item.village_name)),
        reviewBadge(item.review_state),
      ),
      h('span', { class: 'cs-row-sub' }, sub.join(' · ')),
      item.review_state === 'returned' && item.review_comment
        ? h(
            'span',
            { class: 'cs-row-note cs-note-returned' },
            t('scr.reviewer.reviewComment', { comment: str(item.review_comment) }),
          )
        : null,
    );
  }

  function queueView() {
    const list = s.list;
    const pageSize = (list && list.page_size) || 50;
    const pages = list ? Math.max(1, Math.ceil((list.total || 0) / pageSize)) : 1;
    const items = (list && list.items) || [];
    return h(
      'div',
      { 'data-testid': 'review-queue' },
      list && list.offline
        ? h('div', { class: 'cs-warn cs-offline-note', role: 'status', 'data-testid': 'offline-note' }, t('scr.reviewer.offlineQueue'))
        : null,
      filters(),
      s.listError ? h('div', { class: 'cs-err', role: 'alert' }, t('scr.reviewer.apiError', { message: s.listError })) : null,
      !list && s.listLoading ? h('p', { class: 'cs-hint' }, t('scr.loading')) : null,
      list ? h('div', { class: 'cs-total', 'data-testid': 'review-total' }, t('scr.reviewer.total', { n: list.total || 0 })) : null,
      list && !items.length ? h('p', { class: 'cs-hint', 'data-testid': 'review-empty' }, t('scr.reviewer.empty')) : null,
      list ? h('div', { class: 'cs-list' }, items.map(itemRow)) : null,
      list && pages > 1
        ? h(
            'div',
            { class: 'cs-pager' },
            h(
              'button',
              {
                type: 'button',
                class: 'cs-btn',
                'data-testid': 'page-prev',
                disabled: s.page <= 1 || s.listLoading,
                onclick: () => {
                  s.page -= 1;
                  loadList();
                },
              },
              `‹ ${t('scr.reviewer.prev')}`,
            ),
            h('span', { class: 'cs-pager-info' }, t('scr.reviewer.page', { page: s.page, pages })),
            h(
              'button',
              {
                type: 'button',
                class: 'cs-btn',
                'data-testid': 'page-next',
                disabled: s.page >= pages || s.listLoading,
                onclick: () => {
                  s.page += 1;
                  loadList();
                },
              },
              `${t('scr.reviewer.next')} ›`,
            ),
          )
        : null,
    );
  }

  function when(ms) {
    return isNum(ms) ? `${chinaDay(ms)} ${chinaTime(ms)}` : null;
  }

  function kvList(pairs) {
    return h(
      'dl',
      { class: 'cs-kv' },
      pairs
        .filter(Boolean)
        .map(([label, value]) => [h('dt', {}, label), h('dd', {}, value == null || value === '' ? t('scr.none') : value)]),
    );
  }

  function textList(values) {
    const list = Array.isArray(values) ? values.map(str).filter(Boolean) : [];
    if (!list.length) return null;
    return h('ul', { class: 'cs-list-plain' }, list.map((v) => h('li', {}, v)));
  }

  function visitBody(rec) {
    const checklist = rec.checklist || {};
    const referrals = Array.isArray(rec.referrals) ? rec.referrals : [];
    const needs = textList(rec.needs);
    const actions = textList(rec.actions);
    return [
      kvList([
        [t('scr.reviewer.startedAt'), when(rec.startedAt)],
        [t('scr.reviewer.endedAt'), when(rec.endedAt)],
        [t('scr.reviewer.recordStatus'), rec.status ? t(`scr.status.${str(rec.status)}`) : null],
        [t('scr.reviewer.nextVisit'), str(rec.nextVisitDate)],
      ]),
      h('h3', {}, t('scr.reviewer.checklist')),
      kvList(
        CHECKLIST.map((area) => {
          const entry = checklist[area];
          if (!entry) return [t(`scr.check.${area}`), null];
          const status = str(entry.status);
          return [
            t(`scr.check.${area}`),
            h(
              'span',
              {},
              h('strong', { class: status === 'ok' ? '' : status === 'serious' ? 'cs-risk-red' : 'cs-risk-yellow' }, t(`scr.check.${status}`)),
              entry.note ? ` ${str(entry.note)}` : '',
            ),
          ];
        }),
      ),
      needs ? [h('h3', {}, t('scr.reviewer.needs')), needs] : null,
      actions ? [h('h3', {}, t('scr.reviewer.actions')), actions] : null,
      referrals.length
        ? [
            h('h3', {}, t('scr.reviewer.referrals')),
            textList(referrals.map((r) => (r.reason ? `${str(r.to)}：${str(r.reason)}` : str(r.to)))),
          ]
        : null,
    ];
  }

  function logBody(rec, item) {
    const conf = rec.confirmation;
    let minutes = item.minutes;
    if (rec.durationOverride && isNum(rec.durationOverride.minutes)) minutes = rec.durationOverride.minutes;
    else if (isNum(rec.checkIn) && isNum(rec.checkOut)) minutes = Math.floor((rec.checkOut - rec.checkIn) / 60_000);
    return [
      kvList([
        [t('scr.worker.checkInAt'), when(rec.checkIn)],
        [t('scr.worker.checkOutAt'), when(rec.checkOut) || t('scr.worker.notCheckedOut')],
        [t('scr.reviewer.minutes'), isNum(minutes) ? t('scr.minutes', { n: minutes }) : null],
        [t('scr.worker.services'), (rec.services || []).map((x) => serviceLabel(t, x)).join('、')],
        [
          t('scr.worker.confirmation'),
          conf
            ? t(conf.confirmed === false ? 'scr.worker.declinedBy' : 'scr.worker.confirmed', {
                method: t(`scr.method.${str(conf.method)}`),
              })
            : null,
        ],
        [t('scr.worker.note'), str(rec.note)],
      ]),
      rec.durationOverride
        ? h('div', { class: 'cs-warn' }, t('scr.reviewer.overrideReason', { reason: str(rec.durationOverride.reason) }))
        : null,
    ];
  }

  function summaryBody(item) {
    return [
      h('div', { class: 'cs-hint', 'data-testid': 'summary-only', style: 'margin-bottom:.5rem' }, t('scr.reviewer.summaryOnly')),
      kvList([
        [t('scr.reviewer.day'), str(item.day)],
        isNum(item.minutes) ? [t('scr.reviewer.minutes'), t('scr.minutes', { n: item.minutes })] : null,
        item.record_status ? [t('scr.reviewer.recordStatus'), t(`scr.status.${str(item.record_status)}`)] : null,
        item.next_visit ? [t('scr.reviewer.nextVisit'), str(item.next_visit)] : null,
      ]),
    ];
  }

  function detailView() {
    const item = s.detail;
    const rec = s.record;
    const name = subjectName(item);
    let body;
    if (rec === undefined) body = h('p', { class: 'cs-hint' }, t('scr.loading'));
    else if (rec === null) body = summaryBody(item);
    else if (str(rec.kind) === 'service-log') body = logBody(rec, item);
    else body = visitBody(rec);
    const reviewState = s.reviewResult || str(item.review_state) || 'pending';
    const reviewComment = item.review_comment || (rec && rec.review && rec.review.comment);
    const comments = rec && Array.isArray(rec.comments) ? rec.comments : [];
    const noNetwork = reviewsOffline();
    return h(
      'div',
      { 'data-testid': 'review-detail', 'data-id': item.id },
      h(
        'button',
        { type: 'button', class: 'cs-btn cs-back', 'data-testid': 'back', onclick: closeDetail },
        `‹ ${t('scr.reviewer.backToList')}`,
      ),
      h(
        'div',
        { class: 'cs-card' },
        h('div', { class: 'cs-row-top' }, h('h2', { style: 'margin:0' }, name || t(`scr.kind.${str(item.kind)}`)), reviewBadge(reviewState)),
        h(
          'div',
          { class: 'cs-hint' },
          [villageName(item.village, item.village_name), t(`scr.kind.${str(item.kind)}`), str(item.day)].filter(Boolean).join(' · '),
        ),
        item.risk
          ? h(
              'div',
              { class: 'cs-hint' },
              `${t('scr.reviewer.risk')}：`,
              h('span', { class: `cs-risk-${str(item.risk)}` }, t(`scr.risk.${str(item.risk)}`)),
            )
          : null,
        h('div', { style: 'margin-top:.6rem' }, body),
        comments.length
          ? [
              h('h3', {}, t('scr.comments')),
              comments.map((c) =>
                h(
                  'div',
                  { class: 'cs-comment' },
                  h('div', { class: 'cs-comment-meta' }, `${str(c.author)} · ${when(c.at) || ''}`),
                  h('div', {}, str(c.text)),
                ),
              ),
            ]
          : null,
      ),
      h(
        'div',
        { class: 'cs-card', 'data-testid': 'review-panel' },
        h('div', { class: 'cs-label' }, t('scr.reviewer.currentReview')),
        h('div', {}, reviewBadge(reviewState)),
        reviewComment
          ? h('div', { class: 'cs-row-note cs-note-returned' }, t('scr.reviewer.reviewComment', { comment: str(reviewComment) }))
          : null,
        s.reviewResult
          ? h(
              'div',
              { class: 'cs-ok', 'data-testid': 'review-result', 'data-state': s.reviewResult, role: 'status' },
              t('scr.reviewer.result', { state: t(`scr.review.${s.reviewResult}`) }),
            )
          : null,
        noNetwork
          ? h('div', { class: 'cs-warn', role: 'status', 'data-testid': 'offline-note' }, t('scr.reviewer.offlineReview'))
          : null,
        h(
          'div',
          { class: 'cs-review-actions', style: 'margin-top:.75rem' },
          h(
            'button',
            {
              type: 'button',
              class: 'cs-btn cs-btn-primary',
              'data-testid': 'approve',
              disabled: s.busy || noNetwork,
              onclick: () => review('approve'),
            },
            t('scr.reviewer.approve'),
          ),
          h(
            'label',
            { class: 'cs-field' },
            h('span', { class: 'cs-label' }, t('scr.reviewer.returnLabel')),
            h('textarea', {
              class: 'cs-textarea',
              'data-testid': 'return-comment',
              maxlength: REVIEW_COMMENT_MAX,
              placeholder: t('scr.reviewer.returnPlaceholder'),
              value: s.returnText,
              disabled: noNetwork,
              oninput: (e) => {
                s.returnText = e.target.value;
              },
            }),
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'cs-btn cs-btn-danger',
              'data-testid': 'return-submit',
              disabled: s.busy || noNetwork,
              onclick: () => review('return'),
            },
            t('scr.reviewer.returnSubmit'),
          ),
          s.reviewError ? h('div', { class: 'cs-err', role: 'alert', 'data-testid': 'review-error' }, s.reviewError) : null,
        ),
      ),
    );
  }

  function chartCard(testid, title, sub, error, items, options) {
    let content;
    if (error) content = h('div', { class: 'cs-err', role: 'alert' }, t('scr.reviewer.apiError', { message: error }));
    else if (items) content = barChart(items, { title, empty: t('scr.noData'), ...options });
    else content = h('p', { class: 'cs-hint' }, t('scr.loading'));
    return h(
      'div',
      { class: 'cs-card cs-chart-card', 'data-testid': testid },
      h('h3', {}, title),
      sub ? h('p', { class: 'cs-chart-sub' }, sub) : null,
      content,
    );
  }

  function dashboardView() {
    const r = s.reports && s.reports.month === s.month ? s.reports : null;
    const errors = (r && r.errors) || {};
    let coverageItems = null;
    let overdueItems = null;
    let hoursItems = null;
    if (r) {
      const villages = (r.coverage && r.coverage.villages) || [];
      coverageItems = villages.map((v) => ({
        label: `${str(v.village_name) || str(v.village)} (${v.visited ?? 0}/${v.children ?? 0})`,
        value: Number(v.share) || 0,
        display: `${Math.round((Number(v.share) || 0) * 100)}%`,
      }));
      const counts = new Map(villages.map((v) => [str(v.village), 0]));
      for (const o of r.overdue || []) {
        if (o.village_name && !s.villages.has(str(o.village))) s.villages.set(str(o.village), str(o.village_name));
        counts.set(str(o.village), (counts.get(str(o.village)) || 0) + 1);
      }
      overdueItems = [...counts.entries()]
        .map(([code, n]) => ({ label: villageName(code), value: n, display: t('scr.dash.people', { n }) }))
        .sort((a, b) => b.value - a.value || a.label.localeCompare(b.label, 'zh-CN'));
      hoursItems = ((r.hours && r.hours.workers) || [])
        .map((w) => {
          const hours = isNum(w.hours) ? w.hours : (Number(w.minutes) || 0) / 60;
          return { label: str(w.username) || str(w.worker), value: hours, display: t('scr.hours', { h: hours.toFixed(1) }) };
        })
        .sort((a, b) => b.value - a.value);
    }
    const month = s.month;
    const offline = browserOffline() || Boolean(r && r.offline);
    return h(
      'div',
      { 'data-testid': 'dashboard' },
      h(
        'div',
        { class: 'cs-dash-top' },
        h(
          'label',
          { class: 'cs-field' },
          h('span', { class: 'cs-label' }, t('scr.dash.month')),
          h('input', {
            class: 'cs-input',
            type: 'month',
            'data-testid': 'report-month',
            value: month,
            max: currentMonth(),
            onchange: (e) => {
              const value = str(e.target.value);
              if (/^\d{4}-\d{2}$/.test(value) && value !== s.month) {
                s.month = value;
                loadReports({ picked: true });
              }
            },
          }),
        ),
        h(
          'a',
          {
            class: 'cs-btn cs-btn-primary',
            'data-testid': 'export-xlsx',
            href: offline ? null : `/api/v1/exports/month.xlsx?month=${encodeURIComponent(month)}`,
            download: offline ? null : `caresync-${month}.xlsx`,
            'aria-disabled': offline ? 'true' : null,
            title: offline ? t('scr.dash.exportOffline') : t('scr.dash.exportHint'),
          },
          t('scr.dash.export', { month }),
        ),
      ),
      r && r.offline
        ? h(
            'div',
            { class: 'cs-warn cs-offline-note', role: 'status', 'data-testid': 'report-as-of', 'data-at': isNum(r.asOf) ? String(r.asOf) : null },
            isNum(r.asOf) ? t('scr.dash.asOf', { time: when(r.asOf) }) : t('scr.dash.nothingKeptAll'),
          )
        : null,
      chartCard(
        'chart-coverage',
        t('scr.dash.coverage'),
        r && r.from ? t('scr.dash.coverageSub', { from: r.from, to: r.to }) : '',
        errors.coverage,
        coverageItems,
        { max: 1, color: '#1f6fd1' },
      ),
      chartCard('chart-overdue', t('scr.dash.overdue'), t('scr.dash.overdueSub'), errors.overdue, overdueItems, { color: '#c2410c' }),
      chartCard('chart-hours', t('scr.dash.hours'), t('scr.dash.hoursSub', { month }), errors.hours, hoursItems, { color: '#17803d' }),
    );
  }

  function render() {
    if (!alive()) return;
    const tab = (name, label) =>
      h(
        'button',
        {
          type: 'button',
          class: 'cs-tab',
          role: 'tab',
          'data-testid': `tab-${name}`,
          'aria-selected': s.tab === name ? 'true' : 'false',
          onclick: () => setTab(name),
        },
        label,
      );
    const tabs = h(
      'div',
      { class: 'cs-tabs', role: 'tablist' },
      tab('queue', t('scr.reviewer.tabQueue')),
      tab('dashboard', t('scr.reviewer.tabDashboard')),
    );
    let body;
    if (s.tab === 'dashboard') body = dashboardView();
    else if (s.detail) body = detailView();
    else body = queueView();
    wrap.replaceChildren(tabs, body);
  }

  render();
  loadList();
  loadVillages().then(() => {
    if (alive()) render();
  });
  loadNames().then(() => {
    if (alive()) render();
  });
}

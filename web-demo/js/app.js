// caresync web app: boot, login, the header (sync status, language switch), the router by
// location.hash, and the `ctx` handed to each role's screens.
//
// ## ctx — what a screen module gets (`renderDirector|renderWorker|renderReviewer(ctx, root)`)
//
// The app clears `root` and calls the role's render function on every route change and on a
// language switch, with a fresh ctx. Subscriptions made through `ctx.engine.on` are removed
// automatically at the next render.
//
//   ctx.t(key, vars)          the label `key` in the current language; `{name}` in the text
//                             is replaced by `vars.name` (js/i18n.js holds every label)
//   ctx.lang                  'zh-CN' | 'en'
//   ctx.account               {id, username, role, org_units:[code], assigned_elders:[doc]}
//   ctx.route                 {hash, path:'/child/abc', parts:['child','abc'], query:{k:v}}
//   ctx.engine.summaries(kind)  -> Promise<[summary]>  documents of that kind on this phone
//                             (all kinds if omitted); a summary is `phone.summary()` plus
//                             `document` and `syncState`; unavailable documents are left out
//   ctx.engine.summary(doc)   -> summary | null (sync)
//   ctx.engine.record(doc)    -> Promise<record|null>  loads it first if needed
//   ctx.engine.create(record) -> Promise<doc>     resolves once durable on this phone;
//                             rejects with {errors:[{field, code, zh, en}]} if invalid
//   ctx.engine.update(doc, record) -> Promise<void>  same; pass the whole record as read
//                             with your fields changed, so review/comments/unknown keys stay
//   ctx.engine.validate(record) -> [{field, code, zh, en}]  (sync, no save)
//   ctx.engine.visitsDue(children, visits) -> [{child, lastVisit, lastVisitDay, due}]
//                             core's visit schedule for child summary rows (sync)
//   ctx.engine.suggestedNextVisit(risk, day) -> 'YYYY-MM-DD'  core's default next visit
//   ctx.engine.state(doc)     -> 'saved' | 'synced' | 'returned' | 'refused'
//   ctx.engine.refused(doc?)  -> [{id, document, code, message, refusedRecord, at, dismissed}]
//   ctx.engine.dismissRefused(copy) -> Promise<void>  the copy stays stored
//   ctx.engine.unsynced()     -> [doc]  records waiting to reach the relay
//   ctx.engine.on(event, cb)  -> unsubscribe; events: 'changed' (debounced: summaries,
//                             states or refused copies changed), 'saved' {document},
//                             'refused' {document, code, message}, 'storage-failed',
//                             'sync-status' {state, pending}
//   ctx.api(path, {method, body, raw})  -> Promise<json>  fetch with the session cookie;
//                             `path` is '/api/v1/...' or relative to it ('records?...');
//                             failures throw Error with .status, .code (and .offline when
//                             there is no network); `raw: true` resolves with the Response
//   ctx.navigate(hash)        go to '#/...'
//   ctx.el(tag, attrs, ...children)  DOM helper of js/ui.js (attrs: class, text, testid,
//                             on<event>, dataset, properties, attributes)
//   ctx.ui                    the other helpers of js/ui.js (stateBadge, riskDot, errorSlot,
//                             showErrors, toast, chinaDate, chinaToday, daysBetween, ...)
//
// Labels: every label is in js/i18n.js; the worker and reviewer screens keep theirs in
// js/i18n-screens.js (merged into the catalogues), so `ctx.t('scr....')` finds them.
//
// ## data-testid list (stable; a Playwright test drives the app with these)
//
// app shell:   app-header, sync-status (data-state = offline|syncing|synced|signed-out),
//              sync-pending (number waiting), lang-switch, nav-account, nav-home,
//              banner-signed-out, relogin, screen (main, data-screen = screen name), toast,
//              boot-error
// login:       login-form, login-username, login-password, login-submit, login-error,
//              login-offline-note
// account:     account-name, account-role, account-sync-state, unsynced-list, unsynced-row,
//              refused-list, refused-row, logout
// children:    child-search, register-child, child-list, child-row (data-document,
//              data-due = never|overdue|soon|later), child-name, child-due, risk (data-risk),
//              children-empty
// child page:  child-title, child-details, new-visit, visit-list, visit-row (data-document),
//              visit-day, visit-status, record-state (data-state), visit-review-comment,
//              visits-empty, back
// visit page:  visit-title, state-explain, visit-edit, visit-details, record-state,
//              visit-review-comment, refused-panel, refused-reason (data-code),
//              refused-detail, refused-copy, refused-edit, refused-dismiss
// visit form:  visit-form, visit-started, visit-ended, check-<area>-<ok|concern|serious>,
//              check-<area>-note (area: guardianship schooling health safety living),
//              visit-needs, visit-actions, visit-referral-to, visit-referral-reason,
//              visit-referral-add, visit-referral-remove, visit-next-date,
//              visit-next-suggest, visit-save-draft, visit-save-final,
//              error-<field> (e.g. error-checklist.schooling.note, error-form)
// register:    child-search-name, child-search-submit, child-match, child-register-new,
//              child-form, child-name-input, child-birth, child-gender-<female|male>,
//              child-category-<category>, child-risk-<none|red|yellow|blue|green>,
//              child-risk-reason, child-guardian-name, child-guardian-relation,
//              child-guardian-phone, child-save, error-<field>

import { t as translate, getLang, setLang } from './i18n.js';
import * as ui from './ui.js';
import { el, clear, toast } from './ui.js';
import * as auth from './auth.js';
import { Store } from './store.js';
import { Engine, initWasm } from './engine.js';
import { SyncClient } from './sync.js';
import { renderDirector, refusedReason, savedFirstScreen, renderSavedChildrenList, forgetFirstScreen } from './screens/director.js';
import { renderWorker } from './screens/worker.js';
import { renderReviewer } from './screens/reviewer.js';

const ROLE_SCREENS = {
  'village-child-director': renderDirector,
  'care-worker': renderWorker,
  'township-reviewer': renderReviewer,
  'bureau-admin': renderReviewer,
};

const app = {
  wasm: null,
  account: null,
  store: null,
  engine: null,
  sync: null,
  status: { state: 'offline', pending: 0 },
  dispose: [],
  root: null,
  header: null,
  main: null,
  lockRelease: null,
};

const t = (key, vars) => translate(key, vars);

// ----- boot --------------------------------------------------------------------------

export async function boot({ wasm } = {}) {
  app.root = document.getElementById('app');
  document.documentElement.lang = getLang();
  registerServiceWorker();
  try {
    app.wasm = wasm ?? (await import('../pkg/caresync_wasm.js'));
  } catch (error) {
    console.error(error);
    clear(app.root).appendChild(el('p', { class: 'boot-error', testid: 'boot-error', text: t('boot.wasmMissing') }));
    return;
  }
  // Compiling the wasm is the longest step of a start: let it run while the account and
  // its database are opened. The engine awaits the same promise; a failure shows there.
  initWasm(app.wasm).catch(() => {});
  window.addEventListener('hashchange', () => route());
  const account = await auth.currentAccount();
  if (account) await startSession(account);
  else showLogin();
}

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('./sw.js').catch((error) => console.warn('caresync: no service worker', error));
}

// ----- login -------------------------------------------------------------------------

function showLogin(message) {
  disposeScreen();
  document.title = t('app.title');
  const error = el('p', { class: 'form-error', testid: 'login-error', role: 'alert', hidden: !message, text: message ?? '' });
  const username = el('input', {
    id: 'login-username',
    testid: 'login-username',
    name: 'username',
    autocomplete: 'username',
    autocapitalize: 'off',
    spellcheck: 'false',
    required: true,
    value: auth.lastUsername(),
  });
  const password = el('input', {
    id: 'login-password',
    testid: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const submit = el('button', { class: 'btn primary block', type: 'submit', testid: 'login-submit', text: t('login.submit') });
  const form = el(
    'form',
    {
      class: 'card login',
      testid: 'login-form',
      onsubmit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        submit.textContent = t('login.working');
        try {
          const { account, offline } = await auth.login(username.value, password.value);
          if (offline) toast(t('login.unlockedOffline'));
          await startSession(account);
        } catch (failure) {
          error.textContent = t(`login.error.${failure instanceof auth.AuthError ? failure.code : 'server'}`);
          if (!(failure instanceof auth.AuthError)) console.error(failure);
          error.hidden = false;
          submit.disabled = false;
          submit.textContent = t('login.submit');
        }
      },
    },
    el('label', { for: 'login-username', text: t('login.username') }),
    username,
    el('label', { for: 'login-password', text: t('login.password') }),
    password,
    error,
    submit,
    el('p', { class: 'hint', testid: 'login-offline-note', text: t('login.offlineNote') }),
  );
  clear(app.root).append(
    el(
      'header',
      { class: 'app-header', testid: 'app-header' },
      el('h1', { class: 'brand', text: t('app.title') }),
      langSwitch(() => showLogin()),
    ),
    el('main', { class: 'screen', testid: 'screen', dataset: { screen: 'login' } }, el('h2', { text: t('login.title') }), form),
  );
  (username.value ? password : username).focus();
}

function langSwitch(rerender) {
  return el('button', {
    class: 'btn ghost small',
    type: 'button',
    testid: 'lang-switch',
    lang: getLang() === 'en' ? 'zh-CN' : 'en',
    'aria-label': t('lang.switchLabel'),
    text: t('lang.other'),
    onclick: () => {
      setLang(getLang() === 'en' ? 'zh-CN' : 'en');
      document.documentElement.lang = getLang();
      rerender();
    },
  });
}

// ----- session -----------------------------------------------------------------------

async function startSession(account) {
  if (app.account && app.account.id === account.id && app.engine) {
    // Logged in again (session expired): the same engine keeps running.
    app.account = account;
    app.sync?.resume();
    renderShell();
    return;
  }
  await stopSession();
  app.account = account;
  if (!(await holdLock(account.id))) {
    clear(app.root).appendChild(el('p', { class: 'boot-error', testid: 'boot-error', text: t('boot.otherTab') }));
    return;
  }
  showSavedFirstScreen(account);
  try {
    app.store = await Store.forAccount(account.id);
    app.engine = new Engine({ wasm: app.wasm, store: app.store, account });
    await app.engine.start();
  } catch (error) {
    console.error(error);
    clear(app.root).appendChild(el('p', { class: 'boot-error', testid: 'boot-error', text: `${t('boot.failed')} ${error?.message ?? error}` }));
    return;
  }
  app.engine.on('sync-status', (status) => {
    app.status = status;
    updateStatus();
  });
  app.engine.on('refused', () => toast(t('toast.refused'), 'error'));
  app.engine.on('storage-failed', ({ reason }) => toast(`${t('toast.storageFailed')} ${reason ?? ''}`, 'error'));
  app.sync = new SyncClient(app.engine);
  app.sync.start();
  app.status = app.sync.status();
  renderShell();
}

/**
 * A director opening the children list sees its saved first screen while the engine
 * starts (screens/director.js says why); `renderShell` replaces it once the engine runs.
 */
function showSavedFirstScreen(account) {
  const parts = parseRoute().parts;
  const childrenList = parts.length === 0 || (parts.length === 1 && parts[0] === 'children');
  if (account.role !== 'village-child-director' || !childrenList) return;
  const saved = savedFirstScreen(account.id);
  if (!saved) return;
  const header = el(
    'header',
    { class: 'app-header', testid: 'app-header' },
    el('a', { class: 'brand', href: '#/', text: t('app.short') }),
  );
  const main = el('main', { class: 'screen' });
  clear(app.root).append(header, main);
  renderSavedChildrenList(t, main, saved);
}

/** One tab per account drives the engine: two would write the same database at once. */
async function holdLock(accountId) {
  if (!navigator.locks?.request) return true;
  return new Promise((resolve) => {
    navigator.locks
      .request(`caresync-engine-${accountId}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        return new Promise((release) => {
          app.lockRelease = release;
        });
      })
      .catch(() => resolve(true));
  });
}

async function stopSession() {
  disposeScreen();
  app.sync?.stop();
  app.engine?.stop();
  app.store?.close();
  app.lockRelease?.();
  app.sync = app.engine = app.store = app.lockRelease = null;
  app.account = null;
}

async function doLogout() {
  const pending = app.engine?.unsyncedDocuments().length ?? 0;
  if (pending > 0 && !confirm(t('logout.confirmPending', { count: pending }))) return;
  const accountId = app.account?.id;
  await auth.logout();
  await stopSession();
  // The saved first screen names children: it goes with the account's session.
  if (accountId) forgetFirstScreen(accountId);
  showLogin();
}

// ----- shell: header and main --------------------------------------------------------

function renderShell() {
  document.title = t('app.title');
  const status = el('button', {
    class: 'status',
    type: 'button',
    testid: 'sync-status',
    onclick: () => navigate('#/account'),
  });
  app.header = el(
    'header',
    { class: 'app-header', testid: 'app-header' },
    el('a', { class: 'brand', href: '#/', testid: 'nav-home', text: t('app.short') }),
    status,
    langSwitch(() => renderShell()),
    el('a', { class: 'btn ghost small', href: '#/account', testid: 'nav-account', 'aria-label': t('nav.account'), text: '☰' }),
  );
  app.banner = el('div', { class: 'banner-slot' });
  app.main = el('main', { class: 'screen', testid: 'screen' });
  clear(app.root).append(app.header, app.banner, app.main);
  updateStatus();
  route();
}

function updateStatus() {
  const button = app.header?.querySelector('[data-testid="sync-status"]');
  if (!button) return;
  const { state, pending } = app.status;
  button.dataset.state = state;
  clear(button).append(
    el('span', { class: 'status-dot', 'aria-hidden': 'true' }),
    el('span', { class: 'status-text', text: t(`sync.${state}`) }),
    el('span', {
      class: 'status-count',
      testid: 'sync-pending',
      hidden: pending === 0,
      'aria-label': t('sync.pendingLabel', { count: pending }),
      text: String(pending),
    }),
  );
  button.setAttribute('aria-label', `${t(`sync.${state}`)}, ${t('sync.pendingLabel', { count: pending })}`);
  clear(app.banner);
  if (state === 'signed-out') {
    app.banner.appendChild(
      el(
        'div',
        { class: 'banner warn', testid: 'banner-signed-out', role: 'status' },
        el('span', { text: t('sync.signedOutBanner') }),
        el('button', { class: 'btn small', type: 'button', testid: 'relogin', text: t('sync.relogin'), onclick: () => showLogin() }),
      ),
    );
  }
  const accountSync = app.main?.querySelector('[data-testid="account-sync-state"]');
  if (accountSync) accountSync.textContent = statusSentence();
}

function statusSentence() {
  const { state, pending } = app.status;
  return `${t(`sync.${state}`)} · ${t('sync.pendingLabel', { count: pending })}`;
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parseRoute() {
  const hash = location.hash || '#/';
  const [path, queryText = ''] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = Object.fromEntries(new URLSearchParams(queryText));
  return { hash, path: `/${parts.join('/')}`, parts, query };
}

function disposeScreen() {
  for (const off of app.dispose) off();
  app.dispose = [];
}

function route() {
  if (!app.engine || !app.main) return;
  disposeScreen();
  const ctx = makeCtx();
  clear(app.main);
  app.main.dataset.screen = '';
  window.scrollTo(0, 0);
  if (ctx.route.parts[0] === 'account') {
    renderAccount(ctx, app.main);
    return;
  }
  const render = ROLE_SCREENS[app.account.role];
  if (!render) {
    app.main.appendChild(el('p', { text: t('role.unknown', { role: app.account.role }) }));
    return;
  }
  try {
    const result = render(ctx, app.main);
    if (result?.catch) result.catch((error) => screenFailed(error));
  } catch (error) {
    screenFailed(error);
  }
}

function screenFailed(error) {
  console.error(error);
  app.main.appendChild(el('p', { class: 'form-error', role: 'alert', text: `${t('screen.failed')} ${error?.message ?? error}` }));
}

function makeCtx() {
  const engine = app.engine;
  const on = (event, callback) => {
    const off = engine.on(event, callback);
    app.dispose.push(off);
    return off;
  };
  return {
    t,
    lang: getLang(),
    account: app.account,
    route: parseRoute(),
    engine: {
      summaries: async (kind) => engine.summaries(kind),
      summary: (document) => engine.summary(document),
      record: (document) => engine.record(document),
      create: (record) => engine.create(record),
      update: (document, record) => engine.update(document, record),
      validate: (record) => engine.validate(record),
      visitsDue: (children, visits) => engine.visitsDue(children, visits),
      suggestedNextVisit: (risk, day) => engine.suggestedNextVisit(risk, day),
      state: (document) => engine.state(document),
      refused: (document) => engine.refused(document),
      dismissRefused: (copy) => engine.dismissRefused(copy),
      unsynced: () => engine.unsyncedDocuments(),
      on,
    },
    api,
    navigate,
    el,
    ui,
  };
}

/** fetch of the relay's JSON API with the session cookie. */
export async function api(path, { method = 'GET', body, raw = false } = {}) {
  const url = path.startsWith('/') ? path : `/api/v1/${path}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (cause) {
    const error = new Error(t('api.offline'));
    error.status = 0;
    error.offline = true;
    error.cause = cause;
    throw error;
  }
  if (!response.ok) {
    let detail = {};
    try {
      detail = await response.json();
    } catch {
      // not JSON
    }
    const error = new Error(detail.message ?? `HTTP ${response.status}`);
    error.status = response.status;
    error.code = detail.error;
    if (response.status === 401 && app.sync) {
      app.sync.signedOut = true;
      app.sync.publish();
    }
    throw error;
  }
  if (raw) return response;
  const type = response.headers.get('content-type') ?? '';
  return type.includes('json') ? response.json() : response.text();
}

// ----- account and sync page -----------------------------------------------------------

function renderAccount(ctx, root) {
  root.dataset.screen = 'account';
  const { account, engine } = ctx;
  const nameOf = (document) => {
    const summary = engine.summary(document);
    if (!summary) return document;
    return summary.title || `${t(`kind.${summary.kind}`)} ${summary.day ?? ''}`;
  };
  const linkOf = (document) => {
    const summary = engine.summary(document);
    if (summary?.kind === 'child') return `#/child/${encodeURIComponent(document)}`;
    if (summary?.kind === 'home-visit') return `#/visit/${encodeURIComponent(document)}`;
    return null;
  };
  const unsynced = engine.unsynced();
  const refused = engine.refused();
  root.append(
    el('h2', { text: t('account.title') }),
    el(
      'section',
      { class: 'card' },
      el('p', { class: 'big', testid: 'account-name', text: account.username }),
      el('p', { testid: 'account-role', text: t(`role.${account.role}`) }),
      el('p', { class: 'muted', text: `${t('account.orgUnits')}: ${(account.org_units ?? []).join(', ') || '—'}` }),
    ),
    el(
      'section',
      { class: 'card' },
      el('h3', { text: t('account.sync') }),
      el('p', { testid: 'account-sync-state', text: statusSentence() }),
      unsynced.length === 0
        ? el('p', { class: 'muted', text: t('account.nothingWaiting') })
        : el(
            'ul',
            { class: 'plain', testid: 'unsynced-list' },
            unsynced.map((document) => {
              const href = linkOf(document);
              return el('li', { testid: 'unsynced-row', dataset: { document } }, href ? el('a', { href, text: nameOf(document) }) : nameOf(document));
            }),
          ),
    ),
    el(
      'section',
      { class: 'card' },
      el('h3', { text: t('account.refused') }),
      refused.length === 0
        ? el('p', { class: 'muted', text: t('account.noRefused') })
        : el(
            'ul',
            { class: 'plain', testid: 'refused-list' },
            refused.map((copy) => {
              const href = linkOf(copy.document) ?? (copy.refusedRecord?.kind === 'home-visit' ? `#/visit/${encodeURIComponent(copy.document)}` : null);
              const title = copy.refusedRecord?.name ?? nameOf(copy.document);
              return el(
                'li',
                { testid: 'refused-row', dataset: { document: copy.document }, class: copy.dismissed ? 'muted' : '' },
                href ? el('a', { href, text: title }) : title,
                el('div', { class: 'refused-reason', text: `${ui.formatDateTime(copy.at)} · ${refusedReason(t, copy)}` }),
              );
            }),
          ),
    ),
    el('button', { class: 'btn danger block', type: 'button', testid: 'logout', text: t('account.logout'), onclick: doLogout }),
  );
  on(ctx, 'changed', () => {
    if (location.hash.startsWith('#/account')) route();
  });
}

function on(ctx, event, callback) {
  ctx.engine.on(event, callback);
}

// For tests and debugging in the console: the running session (read-only).
Object.defineProperty(globalThis, 'caresyncApp', {
  configurable: true,
  get: () => ({ account: app.account, engine: app.engine, sync: app.sync, status: app.status }),
});

if (!globalThis.CARESYNC_NO_AUTOBOOT) boot();

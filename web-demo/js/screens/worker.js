// The care worker's screen (role `care-worker`). Works offline: every read and write goes
// through ctx.engine, never the network API.
//
// Views: home (hours, services in progress, assigned elders, this month's logs), one elder
// (check in / the open service), one service log (details, corrections, reply to the
// reviewer).

import { zh as ZH, en as EN } from '../i18n-screens.js';

export const SERVICE_TYPES = ['visiting', 'daily-care', 'counselling', 'emotional-comfort', 'laundry'];
export const CONFIRM_METHODS = ['verbal', 'signature', 'thumbprint', 'family-member'];

const CHINA_OFFSET_MS = 8 * 3600_000;

// ---------------------------------------------------------------------------------------
// Small helpers (reviewer.js uses them too)

/** The China date (UTC+8) `YYYY-MM-DD` of an instant in ms. */
export function chinaDay(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 10);
}

export function chinaTime(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(11, 16);
}

export function bare(id) {
  return String(id ?? '').replace(/^automerge:/, '');
}

export function str(value) {
  return value == null ? '' : String(value);
}

export function isNum(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

/** ctx.t with this module's catalogue as the fallback for keys the shell does not know. */
export function makeT(ctx) {
  const fallback = ctx.lang === 'en' ? EN : ZH;
  return (key, vars) => {
    let text;
    try {
      text = typeof ctx.t === 'function' ? ctx.t(key, vars) : undefined;
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string' || text === '' || text === key) text = fallback[key] ?? ZH[key] ?? key;
    if (vars) text = text.replace(/\{(\w+)\}/g, (all, name) => (name in vars ? String(vars[name]) : all));
    return text;
  };
}

const PROPS = new Set(['value', 'checked', 'disabled', 'selected']);

/** Builds an element: `class`, `on<event>`, DOM properties and plain attributes. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (PROPS.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  const add = (child) => {
    if (child == null || child === false) return;
    if (Array.isArray(child)) child.forEach(add);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  };
  children.forEach(add);
  return node;
}

export function messageOf(err) {
  if (!err) return '';
  if (typeof err === 'string') return err;
  return str(err.message || err.error || err);
}

export function serviceLabel(t, service) {
  const text = str(service);
  if (text.startsWith('other:')) return t('scr.svc.other', { name: text.slice(6) });
  return t(`scr.svc.${text}`);
}

function hoursText(t, minutes) {
  const tenths = Math.round((minutes / 60) * 10) / 10;
  return t('scr.hours', { h: tenths.toFixed(1) });
}

function elapsedText(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return `${hours}:${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

function ageOf(birthYearMonth) {
  const match = /^(\d{4})-(\d{2})$/.exec(str(birthYearMonth));
  if (!match) return null;
  const today = chinaDay(Date.now());
  const year = Number(today.slice(0, 4));
  const month = Number(today.slice(5, 7));
  let age = year - Number(match[1]);
  if (month < Number(match[2])) age -= 1;
  return age >= 0 ? age : null;
}

/** Validation or other errors of create/update as [{field, code, text}] in the UI language. */
function errorsOf(err, t, lang) {
  if (err && Array.isArray(err.errors) && err.errors.length) {
    return err.errors.map((e) => ({
      field: str(e.field),
      code: str(e.code),
      text: str((lang === 'en' ? e.en : e.zh) || e.zh || e.en || e.message || e.code),
    }));
  }
  return [{ field: '', code: 'error', text: t('scr.worker.saveError', { message: messageOf(err) }) }];
}

function fieldMatches(errorField, field) {
  return errorField === field || errorField.startsWith(`${field}.`) || errorField.startsWith(`${field}[`);
}

/**
 * Places errors next to the fields of a form (`data-testid="error-<field>"`, as the shell's
 * own forms do); errors of no declared field go to `error-form`. Call `at` in display order:
 * an error shows once, at the first slot that matches it.
 */
function errorSlots(errors, declared) {
  const list = errors || [];
  const claimed = new Set();
  const at = (...fields) => {
    const mine = list.filter((e) => !claimed.has(e) && e.field && fields.some((f) => fieldMatches(e.field, f)));
    mine.forEach((e) => claimed.add(e));
    if (!mine.length) return null;
    return h(
      'div',
      { class: 'cs-err', 'data-testid': `error-${fields[0]}`, 'data-field': fields[0], role: 'alert' },
      mine.map((e) => h('div', {}, e.text)),
    );
  };
  const rest = () => {
    const left = list.filter((e) => !claimed.has(e) && !(e.field && declared.some((f) => fieldMatches(e.field, f))));
    if (!left.length) return null;
    return h(
      'div',
      { class: 'cs-err', 'data-testid': 'error-form', 'data-field': 'form', role: 'alert' },
      left.map((e) => h('div', {}, e.text)),
    );
  };
  return { at, rest };
}

const STYLE_ID = 'cs-worker-style';
const STYLE = `
.cs-screen{max-width:40rem;margin:0 auto;padding:.75rem .75rem 2rem;box-sizing:border-box;color:#1f2933;
  font-size:16px;line-height:1.45}
.cs-screen *{box-sizing:border-box}
.cs-screen h2{font-size:1.25rem;margin:.25rem 0 .75rem}
.cs-screen h3{font-size:1.05rem;margin:1.25rem 0 .5rem;color:#323f4b}
.cs-card{background:#fff;border:1px solid #d9e2ec;border-radius:12px;padding:.85rem;margin:0 0 .75rem}
.cs-stats{display:grid;grid-template-columns:1fr 1fr;gap:.6rem;margin-bottom:.75rem}
.cs-stat{background:#fff;border:1px solid #d9e2ec;border-radius:12px;padding:.7rem .8rem}
.cs-stat-label{font-size:.85rem;color:#52606d}
.cs-stat-value{font-size:1.5rem;font-weight:700;line-height:1.2}
.cs-stat-sub{font-size:.8rem;color:#7b8794}
.cs-list{display:flex;flex-direction:column;gap:.5rem}
.cs-row{display:block;width:100%;min-height:56px;text-align:left;background:#fff;border:1px solid #d9e2ec;
  border-radius:12px;padding:.7rem .85rem;font:inherit;color:inherit;cursor:pointer}
.cs-row:active{background:#eef4fb}
.cs-row-top{display:flex;justify-content:space-between;align-items:center;gap:.5rem}
.cs-row-title{font-size:1.1rem;font-weight:600;flex:1 1 auto;min-width:0}
.cs-row-sub{display:block;font-size:.9rem;color:#52606d;margin-top:.15rem}
.cs-row-note{display:block;font-size:.9rem;margin-top:.35rem;padding:.35rem .5rem;border-radius:8px}
.cs-note-returned{background:#fff4e5;color:#8a4b00}
.cs-note-refused{background:#fde8e8;color:#9b1c1c}
.cs-badge{display:inline-block;white-space:nowrap;font-size:.8rem;font-weight:600;padding:.15rem .5rem;
  border-radius:999px;background:#e4e7eb;color:#323f4b}
.cs-badge-saved{background:#e4e7eb;color:#323f4b}
.cs-badge-synced{background:#e3f8e9;color:#17663a}
.cs-badge-approved{background:#d1f2dc;color:#0e5a2e}
.cs-badge-returned{background:#fff1d6;color:#8a4b00}
.cs-badge-refused{background:#fde0e0;color:#9b1c1c}
.cs-badge-live{background:#dcebff;color:#0b4ea2}
.cs-btn{display:inline-flex;align-items:center;justify-content:center;min-height:48px;min-width:48px;
  padding:.6rem 1rem;border-radius:10px;border:1px solid #bcccdc;background:#fff;color:#1f2933;
  font:inherit;font-weight:600;cursor:pointer;text-decoration:none}
.cs-btn[disabled]{opacity:.55;cursor:default}
.cs-btn-primary{background:#1f6fd1;border-color:#1f6fd1;color:#fff}
.cs-btn-danger{background:#c2410c;border-color:#c2410c;color:#fff}
.cs-btn-block{display:flex;width:100%;margin-top:.75rem;font-size:1.1rem;min-height:52px}
.cs-back{margin-bottom:.5rem}
.cs-chips{display:flex;flex-wrap:wrap;gap:.5rem}
.cs-chip{min-height:44px;padding:.45rem .85rem;border-radius:999px;border:1px solid #bcccdc;background:#fff;
  font:inherit;color:#1f2933;cursor:pointer}
.cs-chip[aria-pressed="true"]{background:#1f6fd1;border-color:#1f6fd1;color:#fff}
.cs-field{display:block;margin-top:.85rem}
.cs-label{display:block;font-size:.9rem;font-weight:600;color:#323f4b;margin-bottom:.3rem}
.cs-input,.cs-select,.cs-textarea{display:block;width:100%;min-height:44px;font:inherit;padding:.5rem .6rem;
  border:1px solid #bcccdc;border-radius:8px;background:#fff;color:inherit}
.cs-textarea{min-height:5rem;resize:vertical}
.cs-check{display:flex;align-items:center;gap:.6rem;min-height:44px;margin-top:.5rem;cursor:pointer}
.cs-check input{width:22px;height:22px;flex:none}
.cs-err{color:#b42318;font-size:.9rem;margin-top:.3rem}
.cs-hint{color:#52606d;font-size:.9rem;margin:.3rem 0 0}
.cs-warn{background:#fff4e5;color:#8a4b00;border-radius:8px;padding:.5rem .65rem;margin-top:.6rem;font-size:.95rem}
.cs-ok{background:#e3f8e9;color:#17663a;border-radius:8px;padding:.5rem .65rem;margin-top:.6rem}
.cs-open{border:2px solid #1f6fd1}
.cs-timer{font-size:2.2rem;font-weight:700;font-variant-numeric:tabular-nums;letter-spacing:.02em}
.cs-kv{display:grid;grid-template-columns:auto 1fr;gap:.3rem .75rem;margin:0}
.cs-kv dt{color:#52606d;font-size:.9rem}
.cs-kv dd{margin:0;min-width:0;overflow-wrap:anywhere}
.cs-muted{color:#7b8794}
.cs-nw{white-space:nowrap}
.cs-comment{border-top:1px solid #e4e7eb;padding:.45rem 0}
.cs-comment-meta{font-size:.8rem;color:#7b8794}
`;

export function injectStyle() {
  if (typeof document === 'undefined' || document.getElementById(STYLE_ID)) return;
  document.head.append(h('style', { id: STYLE_ID }, STYLE));
}

// ---------------------------------------------------------------------------------------

export function renderWorker(ctx, root) {
  const t = makeT(ctx);
  const lang = ctx.lang === 'en' ? 'en' : 'zh';
  const engine = ctx.engine;
  const me = str(ctx.account && ctx.account.id);
  injectStyle();

  const token = {};
  root.__csScreen = token;
  const wrap = h('section', { class: 'cs-screen cs-worker', 'data-testid': 'worker-screen' });
  if (root.dataset) root.dataset.screen = 'worker';
  root.replaceChildren(wrap);
  const alive = () => root.__csScreen === token && wrap.isConnected;

  const s = {
    view: { name: 'home' }, // {name: 'elder', id} | {name: 'log', id}
    picked: new Set(), // services chosen before check-in
    forms: new Map(), // log document -> form state
    errors: new Map(), // form key -> [{field, code, text}]
    notices: new Map(), // form key -> text
    busy: false,
    loaded: false,
    loadError: null,
    elders: [],
    elderRecords: new Map(),
    logs: [],
    states: new Map(),
    records: new Map(),
    refusals: new Map(),
    pending: false,
  };

  // ------------------------------------------------------------------ data

  async function load() {
    try {
      const [elders, logs] = await Promise.all([engine.summaries('elder'), engine.summaries('service-log')]);
      const active = (elders || []).filter((e) => e.active !== false);
      const assignedList = ctx.account && Array.isArray(ctx.account.assigned_elders) ? ctx.account.assigned_elders : [];
      const assigned = new Set(assignedList.map(bare));
      const mine = assigned.size ? active.filter((e) => assigned.has(bare(e.document))) : active;
      s.elders = (mine.length ? mine : active).slice().sort((a, b) => str(a.title).localeCompare(str(b.title), 'zh-CN'));
      s.logs = (logs || [])
        .filter((l) => !l.worker || !me || str(l.worker) === me)
        .sort((a, b) => (b.startedAt || 0) - (a.startedAt || 0));

      const states = new Map();
      await Promise.all(
        s.logs.map(async (l) => {
          try {
            states.set(l.document, (await engine.state(l.document)) || l.syncState || 'saved');
          } catch {
            states.set(l.document, l.syncState || 'saved');
          }
        }),
      );
      s.states = states;

      const wanted = new Set(s.logs.filter(isOpen).map((l) => l.document));
      if (s.view.name === 'log') wanted.add(s.view.id);
      const records = new Map();
      await Promise.all([
        ...[...wanted].map(async (doc) => {
          try {
            const rec = await engine.record(doc);
            if (rec) records.set(doc, rec);
          } catch {
            /* shown from the summary */
          }
        }),
        ...s.elders.map(async (e) => {
          try {
            const rec = await engine.record(e.document);
            if (rec) s.elderRecords.set(e.document, rec);
          } catch {
            /* name from the summary */
          }
        }),
      ]);
      s.records = records;
      s.loadError = null;
    } catch (err) {
      s.loadError = messageOf(err);
    }
    s.loaded = true;
  }

  function isOpen(log) {
    return !log.refusedOnly && log.endedAt == null && str(log.recordStatus) !== 'final';
  }

  /** The relay's reason for refusing the newest change of a log, in the UI language. */
  function refusalOf(log) {
    let reason = '';
    try {
      const copies = typeof engine.refused === 'function' ? engine.refused(log.document) || [] : [];
      const copy = copies.find((c) => !c.dismissed) || copies[0];
      if (copy) reason = str(copy.message || copy.code);
    } catch {
      /* fall back to the last 'refused' event */
    }
    reason = reason || s.refusals.get(bare(log.document)) || '';
    const parts = reason.split(' / ');
    if (parts.length === 2) reason = lang === 'en' ? parts[1] : parts[0];
    return reason;
  }

  function elderOf(id) {
    const key = bare(id);
    return s.elders.find((e) => bare(e.document) === key) || null;
  }

  function elderName(id) {
    const elder = elderOf(id);
    return elder ? str(elder.title) : t('scr.worker.unknownElder');
  }

  function logsOf(elderDoc) {
    const key = bare(elderDoc);
    return s.logs.filter((l) => bare(l.subject) === key);
  }

  /** The edit state of a log, started from its record; null until the record is loaded. */
  function formFor(doc) {
    let form = s.forms.get(doc);
    if (!form) {
      const rec = s.records.get(doc);
      if (!rec) return null;
      const conf = rec.confirmation || null;
      const override = rec.durationOverride || null;
      form = {
        services: new Set((rec.services || []).map(str)),
        method: conf ? str(conf.method) : 'verbal',
        declined: conf ? conf.confirmed === false : false,
        note: str(rec.note),
        override: !!override,
        minutes: override && override.minutes != null ? String(override.minutes) : '',
        reason: override ? str(override.reason) : '',
        comment: '',
      };
      s.forms.set(doc, form);
    }
    return form;
  }

  // ------------------------------------------------------------------ refresh

  let timer = null;
  function typing() {
    const active = document.activeElement;
    return !!active && wrap.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!alive()) return;
      if (typing() || s.busy) {
        s.pending = true;
        return;
      }
      await load();
      if (alive()) render();
    }, 120);
  }
  wrap.addEventListener('focusout', () => {
    setTimeout(() => {
      if (s.pending && alive() && !typing()) {
        s.pending = false;
        schedule();
      }
    }, 0);
  });

  const unsubscribe = [];
  const listen = (event, cb) => {
    try {
      const off =
        engine.on &&
        engine.on(event, (...args) => {
          if (!alive()) {
            unsubscribe.forEach((fn) => fn());
            return;
          }
          cb(...args);
        });
      if (typeof off === 'function') unsubscribe.push(off);
    } catch {
      /* an engine without events: the screen refreshes after its own writes */
    }
  };
  listen('changed', () => schedule());
  listen('refused', (event) => {
    if (event && event.document && event.message) s.refusals.set(bare(event.document), str(event.message));
    schedule();
  });

  const tick = setInterval(() => {
    if (!alive()) {
      clearInterval(tick);
      return;
    }
    const now = Date.now();
    for (const node of wrap.querySelectorAll('[data-timer-start]')) {
      node.textContent = elapsedText(now - Number(node.getAttribute('data-timer-start')));
    }
  }, 500);

  // ------------------------------------------------------------------ actions

  function go(view) {
    s.view = view;
    s.errors.clear();
    s.notices.clear();
    if (view.name === 'log' && !s.records.has(view.id)) {
      Promise.resolve(engine.record(view.id))
        .then((rec) => {
          if (rec) s.records.set(view.id, rec);
          if (alive()) render();
        })
        .catch(() => {});
    }
    render();
    if (typeof window !== 'undefined' && window.scrollTo) window.scrollTo(0, 0);
  }

  async function guarded(key, action) {
    if (s.busy) return;
    s.busy = true;
    s.errors.delete(key);
    s.notices.delete(key);
    render();
    try {
      await action();
    } catch (err) {
      s.errors.set(key, errorsOf(err, t, lang));
      if (s.errors.get(key).some((e) => e.code === 'duration-zero' || e.code === 'duration-too-long')) {
        const form = s.forms.get(key);
        if (form) form.override = true;
      }
    }
    s.busy = false;
    await load();
    if (alive()) render();
  }

  function checkIn(elder) {
    return guarded('check-in', async () => {
      // service-log fields of docs/schema.md; a service log has no `status` field: it is
      // final once it has a checkOut.
      const record = {
        kind: 'service-log',
        schemaVersion: 1,
        orgUnit: str(elder.orgUnit),
        worker: me,
        elderId: bare(elder.document),
        services: SERVICE_TYPES.filter((x) => s.picked.has(x)),
        checkIn: Date.now(),
        review: { state: 'pending' },
        comments: [],
      };
      await engine.create(record);
      s.picked.clear();
    });
  }

  /** The override as the record holds it; only whole minutes are checked here, the range and the reason are core's rules. */
  function overrideFromForm(form, key) {
    const minutes = Number(form.minutes);
    if (String(form.minutes).trim() === '' || !Number.isInteger(minutes)) {
      s.errors.set(key, [{ field: 'durationOverride.minutes', code: 'not-a-number', text: t('scr.worker.overrideWhole') }]);
      return null;
    }
    return { minutes, reason: form.reason.trim() };
  }

  function orderedServices(form) {
    const standard = SERVICE_TYPES.filter((x) => form.services.has(x));
    const other = [...form.services].filter((x) => !SERVICE_TYPES.includes(x));
    return [...standard, ...other];
  }

  async function checkOut(log) {
    const doc = log.document;
    const form = formFor(doc);
    if (!form) return;
    const now = Date.now();
    // Whether the measured duration needs one entered by hand is core's rule: its
    // `duration-zero` / `duration-too-long` errors open the override fields (`guarded`).
    let override = null;
    if (form.override) {
      override = overrideFromForm(form, doc);
      if (!override) {
        render();
        return;
      }
    }
    await guarded(doc, async () => {
      const rec = await engine.record(doc);
      if (!rec) throw new Error(t('scr.worker.recordMissing'));
      const next = {
        ...rec,
        services: orderedServices(form),
        checkOut: now,
        confirmation: { confirmed: !form.declined, at: now, method: form.method },
      };
      if (form.note.trim()) next.note = form.note.trim();
      else delete next.note;
      if (override) next.durationOverride = override;
      else delete next.durationOverride;
      await engine.update(doc, next);
      s.forms.delete(doc);
    });
  }

  async function saveLog(log) {
    const doc = log.document;
    const form = formFor(doc);
    if (!form) return;
    let override = null;
    if (form.override) {
      override = overrideFromForm(form, doc);
      if (!override) {
        render();
        return;
      }
    }
    await guarded(doc, async () => {
      const rec = await engine.record(doc);
      if (!rec) throw new Error(t('scr.worker.recordMissing'));
      const next = { ...rec, services: orderedServices(form) };
      if (form.note.trim()) next.note = form.note.trim();
      else delete next.note;
      if (override) next.durationOverride = override;
      else delete next.durationOverride;
      if (rec.confirmation) {
        next.confirmation = { ...rec.confirmation, method: form.method, confirmed: !form.declined };
      }
      await engine.update(doc, next);
      s.notices.set(doc, t('scr.worker.saved'));
    });
  }

  async function addComment(log) {
    const doc = log.document;
    const form = formFor(doc);
    if (!form) return;
    const text = form.comment.trim();
    if (!text) return;
    const key = `${doc}:comment`;
    await guarded(key, async () => {
      const rec = await engine.record(doc);
      if (!rec) throw new Error(t('scr.worker.recordMissing'));
      const at = Date.now();
      const comments = Array.isArray(rec.comments) ? rec.comments.slice() : [];
      comments.push({ id: `${me}-${at}`, author: me, at, text });
      await engine.update(doc, { ...rec, comments });
      form.comment = '';
    });
  }

  // ------------------------------------------------------------------ pieces

  function stateBadge(log) {
    const state = s.states.get(log.document) || 'saved';
    const approved = state === 'synced' && str(log.reviewState) === 'approved';
    return h(
      'span',
      {
        class: `cs-badge cs-badge-${approved ? 'approved' : state}`,
        'data-testid': 'record-state',
        'data-state': state,
      },
      t(approved ? 'scr.state.approved' : `scr.state.${state}`),
    );
  }

  function stateNote(log) {
    const state = s.states.get(log.document) || 'saved';
    if (state === 'refused') {
      const reason = refusalOf(log);
      return h(
        'span',
        { class: 'cs-row-note cs-note-refused', 'data-testid': 'refusal-reason' },
        reason ? t('scr.worker.refusedReason', { reason }) : t('scr.worker.refusedGeneric'),
      );
    }
    if (state === 'returned' || (str(log.reviewState) === 'returned' && log.reviewComment)) {
      return h(
        'span',
        { class: 'cs-row-note cs-note-returned', 'data-testid': 'review-comment' },
        t('scr.worker.returnedComment', { comment: str(log.reviewComment) || t('scr.none') }),
      );
    }
    return null;
  }

  /** The grey second line of a row; its parts wrap between, not inside, themselves. */
  function subLine(parts) {
    const shown = parts.filter(Boolean);
    return h(
      'span',
      { class: 'cs-row-sub' },
      shown.map((part, i) => [i ? ' · ' : null, h('span', { class: 'cs-nw' }, part)]),
    );
  }

  function timeRange(log, withDay) {
    const parts = [];
    if (withDay && log.day) parts.push(str(log.day));
    if (isNum(log.startedAt)) {
      parts.push(`${chinaTime(log.startedAt)}–${isNum(log.endedAt) ? chinaTime(log.endedAt) : ''}`);
    }
    return parts.join(' ');
  }

  function logRow(log, withName) {
    const open = isOpen(log);
    const sub = [timeRange(log, withName)];
    if (isNum(log.minutes)) sub.push(t('scr.minutes', { n: log.minutes }));
    return h(
      'button',
      {
        type: 'button',
        class: 'cs-row',
        'data-testid': 'log-row',
        'data-document': log.document,
        onclick: () => go({ name: 'log', id: log.document }),
      },
      h(
        'span',
        { class: 'cs-row-top' },
        h('span', { class: 'cs-row-title' }, withName ? elderName(log.subject) : str(log.day)),
        open ? h('span', { class: 'cs-badge cs-badge-live' }, t('scr.worker.inProgress')) : null,
        stateBadge(log),
      ),
      subLine(sub),
      stateNote(log),
    );
  }

  function chips(selected, onToggle) {
    return h(
      'div',
      { class: 'cs-chips', role: 'group' },
      SERVICE_TYPES.map((type) =>
        h(
          'button',
          {
            type: 'button',
            class: 'cs-chip',
            'data-testid': `service-type-${type}`,
            'aria-pressed': selected.has(type) ? 'true' : 'false',
            onclick: () => {
              onToggle(type);
              render();
            },
          },
          t(`scr.svc.${type}`),
        ),
      ),
      [...selected]
        .filter((x) => !SERVICE_TYPES.includes(x))
        .map((x) => h('span', { class: 'cs-chip', 'aria-pressed': 'true' }, serviceLabel(t, x))),
    );
  }

  function toggle(set, value) {
    if (set.has(value)) set.delete(value);
    else set.add(value);
  }

  /** Confirmation, note and duration fields shared by check-out and corrections. */
  function detailFields(form, slots, withConfirmation) {
    return [
      withConfirmation
        ? h(
            'label',
            { class: 'cs-field' },
            h('span', { class: 'cs-label' }, t('scr.worker.confirmBy')),
            h(
              'select',
              {
                class: 'cs-select',
                'data-testid': 'confirm-method',
                onchange: (e) => {
                  form.method = e.target.value;
                },
              },
              CONFIRM_METHODS.map((m) => h('option', { value: m, selected: m === form.method }, t(`scr.method.${m}`))),
            ),
          )
        : null,
      withConfirmation
        ? h(
            'label',
            { class: 'cs-check' },
            h('input', {
              type: 'checkbox',
              'data-testid': 'confirm-declined',
              checked: form.declined,
              onchange: (e) => {
                form.declined = e.target.checked;
              },
            }),
            h('span', {}, t('scr.worker.declined')),
          )
        : null,
      withConfirmation ? slots.at('confirmation') : null,
      h(
        'label',
        { class: 'cs-field' },
        h('span', { class: 'cs-label' }, t('scr.worker.note')),
        h('textarea', {
          class: 'cs-textarea',
          'data-testid': 'log-note',
          maxlength: 1000,
          placeholder: t('scr.worker.notePlaceholder'),
          value: form.note,
          oninput: (e) => {
            form.note = e.target.value;
          },
        }),
      ),
      slots.at('note'),
      h(
        'label',
        { class: 'cs-check' },
        h('input', {
          type: 'checkbox',
          'data-testid': 'duration-override',
          checked: form.override,
          onchange: (e) => {
            form.override = e.target.checked;
            render();
          },
        }),
        h('span', {}, t('scr.worker.override')),
      ),
      form.override
        ? h(
            'div',
            {},
            h(
              'label',
              { class: 'cs-field' },
              h('span', { class: 'cs-label' }, t('scr.worker.overrideMinutes')),
              h('input', {
                class: 'cs-input',
                type: 'number',
                inputmode: 'numeric',
                min: 1,
                'data-testid': 'override-minutes',
                value: form.minutes,
                oninput: (e) => {
                  form.minutes = e.target.value;
                },
              }),
            ),
            slots.at('durationOverride.minutes'),
            h(
              'label',
              { class: 'cs-field' },
              h('span', { class: 'cs-label' }, t('scr.worker.overrideReason')),
              h('input', {
                class: 'cs-input',
                type: 'text',
                maxlength: 500,
                'data-testid': 'override-reason',
                value: form.reason,
                oninput: (e) => {
                  form.reason = e.target.value;
                },
              }),
            ),
            slots.at('durationOverride.reason'),
          )
        : null,
      slots.at('durationOverride'),
    ];
  }

  const LOG_FIELDS = ['services', 'confirmation', 'note', 'durationOverride', 'checkOut'];

  function openPanel(log) {
    const doc = log.document;
    const form = formFor(doc);
    if (!form) {
      return h(
        'div',
        { class: 'cs-card cs-open', 'data-testid': 'open-log', 'data-document': doc },
        h('span', { class: 'cs-row-title' }, elderName(log.subject)),
        h('p', { class: 'cs-hint' }, t('scr.loading')),
      );
    }
    const slots = errorSlots(s.errors.get(doc), LOG_FIELDS);
    // Slots are claimed in display order so that each error shows once, next to its field.
    const servicesErr = slots.at('services');
    const fields = detailFields(form, slots, true);
    const checkOutErr = slots.at('checkOut');
    return h(
      'div',
      { class: 'cs-card cs-open', 'data-testid': 'open-log', 'data-document': doc },
      h(
        'div',
        { class: 'cs-row-top' },
        h('span', { class: 'cs-row-title' }, elderName(log.subject)),
        h('span', { class: 'cs-badge cs-badge-live' }, t('scr.worker.inProgress')),
        stateBadge(log),
      ),
      h(
        'div',
        { class: 'cs-timer', 'data-testid': 'timer', 'data-timer-start': log.startedAt || Date.now() },
        elapsedText(Date.now() - (log.startedAt || Date.now())),
      ),
      h('div', { class: 'cs-hint' }, isNum(log.startedAt) ? t('scr.worker.since', { time: chinaTime(log.startedAt) }) : ''),
      h(
        'div',
        { class: 'cs-field' },
        h('span', { class: 'cs-label' }, t('scr.worker.services')),
        chips(form.services, (type) => toggle(form.services, type)),
        servicesErr,
      ),
      fields,
      checkOutErr,
      slots.rest(),
      h(
        'button',
        {
          type: 'button',
          class: 'cs-btn cs-btn-danger cs-btn-block',
          'data-testid': 'check-out',
          disabled: s.busy,
          onclick: () => checkOut(log),
        },
        t('scr.worker.checkOut'),
      ),
    );
  }

  function checkInPanel(elder) {
    const slots = errorSlots(s.errors.get('check-in'), ['services', 'checkIn']);
    const otherOpen = s.logs.find((l) => isOpen(l) && bare(l.subject) !== bare(elder.document));
    return h(
      'div',
      { class: 'cs-card', 'data-testid': 'check-in-panel' },
      h('span', { class: 'cs-label' }, t('scr.worker.pickServices')),
      chips(s.picked, (type) => toggle(s.picked, type)),
      slots.at('services'),
      slots.at('checkIn'),
      slots.rest(),
      otherOpen ? h('div', { class: 'cs-warn' }, t('scr.worker.otherOpen', { name: elderName(otherOpen.subject) })) : null,
      h(
        'button',
        {
          type: 'button',
          class: 'cs-btn cs-btn-primary cs-btn-block',
          'data-testid': 'check-in',
          disabled: s.busy,
          onclick: () => checkIn(elder),
        },
        t('scr.worker.checkIn'),
      ),
    );
  }

  function hoursCards() {
    const today = chinaDay(Date.now());
    const month = today.slice(0, 7);
    let todayMinutes = 0;
    let todayCount = 0;
    let monthMinutes = 0;
    let monthCount = 0;
    for (const log of s.logs) {
      if (log.refusedOnly) continue;
      const day = str(log.day);
      const minutes = isNum(log.minutes) ? log.minutes : 0;
      if (day.startsWith(month)) {
        monthMinutes += minutes;
        monthCount += 1;
      }
      if (day === today) {
        todayMinutes += minutes;
        todayCount += 1;
      }
    }
    const card = (label, minutes, count, testid) =>
      h(
        'div',
        { class: 'cs-stat' },
        h('div', { class: 'cs-stat-label' }, label),
        h('div', { class: 'cs-stat-value', 'data-testid': testid, 'data-minutes': minutes }, hoursText(t, minutes)),
        h('div', { class: 'cs-stat-sub' }, t('scr.worker.logsCount', { n: count })),
      );
    return h(
      'div',
      { class: 'cs-stats' },
      card(t('scr.worker.hoursToday'), todayMinutes, todayCount, 'hours-today'),
      card(t('scr.worker.hoursMonth'), monthMinutes, monthCount, 'hours-month'),
    );
  }

  function elderRow(elder) {
    const rec = s.elderRecords.get(elder.document) || {};
    const logs = logsOf(elder.document);
    const open = logs.find(isOpen);
    const last = logs.find((l) => !isOpen(l) && !l.refusedOnly);
    const sub = [];
    if (rec.careNeeds) sub.push(t(`scr.care.${str(rec.careNeeds)}`));
    const age = ageOf(rec.birthYearMonth);
    if (age != null) sub.push(t('scr.age', { n: age }));
    sub.push(last && last.day ? t('scr.worker.lastService', { day: str(last.day) }) : t('scr.worker.never'));
    return h(
      'button',
      {
        type: 'button',
        class: 'cs-row',
        'data-testid': 'elder-row',
        'data-document': elder.document,
        onclick: () => go({ name: 'elder', id: elder.document }),
      },
      h(
        'span',
        { class: 'cs-row-top' },
        h('span', { class: 'cs-row-title' }, str(elder.title) || t('scr.worker.unknownElder')),
        open ? h('span', { class: 'cs-badge cs-badge-live' }, t('scr.worker.inProgress')) : null,
      ),
      subLine(sub),
    );
  }

  function backButton(label, view) {
    return h('button', { type: 'button', class: 'cs-btn cs-back', 'data-testid': 'back', onclick: () => go(view) }, `‹ ${label}`);
  }

  // ------------------------------------------------------------------ views

  function homeView() {
    const month = chinaDay(Date.now()).slice(0, 7);
    const open = s.logs.filter(isOpen);
    const recent = s.logs.filter((l) => str(l.day).startsWith(month) && !isOpen(l));
    return [
      h('h2', {}, t('scr.worker.title')),
      hoursCards(),
      open.map(openPanel),
      h('h3', {}, t('scr.worker.elders')),
      s.elders.length
        ? h('div', { class: 'cs-list', 'data-testid': 'elder-list' }, s.elders.map(elderRow))
        : h('p', { class: 'cs-hint', 'data-testid': 'no-elders' }, t('scr.worker.noElders')),
      h('h3', {}, t('scr.worker.recent')),
      recent.length
        ? h('div', { class: 'cs-list', 'data-testid': 'log-list' }, recent.map((l) => logRow(l, true)))
        : h('p', { class: 'cs-hint' }, t('scr.worker.noLogs')),
    ];
  }

  function elderView(id) {
    const elder = elderOf(id);
    if (!elder) return [backButton(t('scr.back'), { name: 'home' }), h('p', { class: 'cs-hint' }, t('scr.worker.unknownElder'))];
    const rec = s.elderRecords.get(elder.document) || {};
    const logs = logsOf(elder.document);
    const open = logs.find(isOpen);
    const done = logs.filter((l) => !isOpen(l));
    const facts = [];
    if (rec.gender) facts.push(t(`scr.gender.${str(rec.gender)}`));
    const age = ageOf(rec.birthYearMonth);
    if (age != null) facts.push(t('scr.age', { n: age }));
    if (rec.careNeeds) facts.push(`${t('scr.worker.careNeeds')}：${t(`scr.care.${str(rec.careNeeds)}`)}`);
    return [
      backButton(t('scr.back'), { name: 'home' }),
      h(
        'div',
        { class: 'cs-card', 'data-testid': 'elder-detail' },
        h('h2', { style: 'margin:0' }, str(elder.title)),
        facts.length ? h('div', { class: 'cs-hint' }, facts.join(' · ')) : null,
      ),
      open ? openPanel(open) : checkInPanel(elder),
      h('h3', {}, t('scr.worker.elderLogs')),
      done.length
        ? h('div', { class: 'cs-list', 'data-testid': 'log-list' }, done.map((l) => logRow(l, false)))
        : h('p', { class: 'cs-hint' }, t('scr.worker.noLogs')),
    ];
  }

  function logView(id) {
    const log = s.logs.find((l) => l.document === id);
    const elder = log ? elderOf(log.subject) : null;
    const back = backButton(t('scr.back'), elder ? { name: 'elder', id: elder.document } : { name: 'home' });
    if (!log) return [back, h('p', { class: 'cs-hint' }, t('scr.loading'))];
    if (isOpen(log)) return [back, openPanel(log)];
    const loadedRecord = s.records.get(id);
    const rec = loadedRecord || {};
    const services = Array.isArray(rec.services) ? rec.services : [];
    const conf = rec.confirmation;
    const kv = (label, value) => [h('dt', {}, label), h('dd', {}, value == null || value === '' ? t('scr.none') : value)];
    const reviewState = str((rec.review && rec.review.state) || log.reviewState || 'pending');
    const approved = reviewState === 'approved';
    const form = formFor(id);
    const editable = !approved && !log.refusedOnly && !!form;
    const slots = errorSlots(s.errors.get(id), LOG_FIELDS);
    const commentSlots = errorSlots(s.errors.get(`${id}:comment`), ['comments']);
    const comments = Array.isArray(rec.comments) ? rec.comments : [];
    const editServicesErr = editable ? slots.at('services') : null;
    const editFields = editable ? detailFields(form, slots, !!conf) : null;

    const detail = h(
      'div',
      { class: 'cs-card', 'data-testid': 'log-detail' },
      h('div', { class: 'cs-row-top' }, h('h2', { style: 'margin:0' }, elderName(log.subject)), stateBadge(log)),
      stateNote(log),
      h(
        'dl',
        { class: 'cs-kv', style: 'margin-top:.6rem' },
        kv(t('scr.worker.checkInAt'), isNum(log.startedAt) ? `${str(log.day)} ${chinaTime(log.startedAt)}` : null),
        kv(
          t('scr.worker.checkOutAt'),
          isNum(log.endedAt) ? `${chinaDay(log.endedAt)} ${chinaTime(log.endedAt)}` : t('scr.worker.notCheckedOut'),
        ),
        kv(t('scr.worker.duration'), isNum(log.minutes) ? t('scr.minutes', { n: log.minutes }) : null),
        kv(t('scr.worker.services'), services.map((x) => serviceLabel(t, x)).join('、')),
        kv(
          t('scr.worker.confirmation'),
          conf
            ? t(conf.confirmed === false ? 'scr.worker.declinedBy' : 'scr.worker.confirmed', {
                method: t(`scr.method.${str(conf.method)}`),
              })
            : null,
        ),
        kv(t('scr.worker.note'), str(rec.note)),
        kv(t('scr.worker.reviewState'), t(`scr.review.${reviewState}`)),
      ),
    );

    const edit = editable
      ? h(
          'div',
          { class: 'cs-card', 'data-testid': 'log-edit' },
          h('h3', { style: 'margin-top:0' }, t('scr.worker.edit')),
          h('span', { class: 'cs-label' }, t('scr.worker.services')),
          chips(form.services, (type) => toggle(form.services, type)),
          editServicesErr,
          editFields,
          slots.at('checkOut'),
          slots.rest(),
          s.notices.get(id) ? h('div', { class: 'cs-ok', 'data-testid': 'save-notice' }, s.notices.get(id)) : null,
          h(
            'button',
            {
              type: 'button',
              class: 'cs-btn cs-btn-primary cs-btn-block',
              'data-testid': 'save-log',
              disabled: s.busy,
              onclick: () => saveLog(log),
            },
            t('scr.worker.save'),
          ),
        )
      : null;

    const discussion = log.refusedOnly || !form
      ? null
      : h(
          'div',
          { class: 'cs-card', 'data-testid': 'log-comments' },
          h('h3', { style: 'margin-top:0' }, t('scr.comments')),
          comments.map((c) =>
            h(
              'div',
              { class: 'cs-comment' },
              h(
                'div',
                { class: 'cs-comment-meta' },
                `${str(c.author) === me ? str(ctx.account.username) || me : str(c.author)} · ${
                  isNum(c.at) ? `${chinaDay(c.at)} ${chinaTime(c.at)}` : ''
                }`,
              ),
              h('div', {}, str(c.text)),
            ),
          ),
          h(
            'label',
            { class: 'cs-field' },
            h('span', { class: 'cs-label' }, t('scr.worker.reply')),
            h('textarea', {
              class: 'cs-textarea',
              'data-testid': 'comment-text',
              maxlength: 1000,
              value: form.comment,
              oninput: (e) => {
                form.comment = e.target.value;
              },
            }),
          ),
          commentSlots.at('comments'),
          commentSlots.rest(),
          h(
            'button',
            {
              type: 'button',
              class: 'cs-btn cs-btn-block',
              'data-testid': 'comment-submit',
              disabled: s.busy,
              onclick: () => addComment(log),
            },
            t('scr.worker.send'),
          ),
        );

    return [
      back,
      detail,
      approved ? h('p', { class: 'cs-hint' }, t('scr.worker.approvedLocked')) : null,
      !loadedRecord && !log.refusedOnly ? h('p', { class: 'cs-hint' }, t('scr.loading')) : null,
      edit,
      discussion,
    ];
  }

  function render() {
    if (!alive()) return;
    let body;
    if (!s.loaded) body = [h('p', { class: 'cs-hint', 'data-testid': 'loading' }, t('scr.loading'))];
    else if (s.view.name === 'elder') body = elderView(s.view.id);
    else if (s.view.name === 'log') body = logView(s.view.id);
    else body = homeView();
    wrap.replaceChildren(
      ...(s.loadError ? [h('div', { class: 'cs-err', role: 'alert' }, t('scr.loadError', { message: s.loadError }))] : []),
      ...body.flat(Infinity).filter(Boolean),
    );
  }

  render();
  load().then(() => {
    if (alive()) render();
  });
}

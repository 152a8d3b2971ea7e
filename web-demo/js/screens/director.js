// Screens of the village child director (role `village-child-director`):
//   #/  #/children            the village's children, overdue and due-soon first
//   #/children/new            register a child (search by name first)
//   #/child/<doc>             a child with the visit history
//   #/child/<doc>/visit/new   new home visit
//   #/visit/<doc>             one visit: state, review comment, refused copy
//   #/visit/<doc>/edit        edit a visit (`?refused=<id>` starts from a refused copy)

import { el, clear, stateBadge, riskDot, errorSlot, showErrors, toast, chinaDate, chinaToday, daysBetween, toLocalInput, fromLocalInput, formatDateTime, lines } from '../ui.js';

const AREAS = ['guardianship', 'schooling', 'health', 'safety', 'living'];
const FINDINGS = ['ok', 'concern', 'serious'];
const CATEGORIES = ['orphan', 'de-facto-unattended', 'poor-family', 'severely-disabled', 'left-behind'];
const RISKS = ['red', 'yellow', 'blue', 'green'];
const RELATIONS = ['father', 'mother', 'grandparent', 'sibling', 'other-relative', 'foster', 'institution', 'other'];
const DUE_SOON_DAYS = 7;

export function renderDirector(ctx, root) {
  const [first, id, third, fourth] = ctx.route.parts;
  if (!first || (first === 'children' && !id)) return childrenList(ctx, root);
  if (first === 'children' && id === 'new') return registerChild(ctx, root);
  if (first === 'child' && id && third === 'visit' && fourth === 'new') return visitForm(ctx, root, { childId: id });
  if (first === 'child' && id) return childPage(ctx, root, id);
  if (first === 'visit' && id && third === 'edit') return visitForm(ctx, root, { visitId: id });
  if (first === 'visit' && id) return visitPage(ctx, root, id);
  ctx.navigate('#/children');
  return undefined;
}

// ----- due dates ---------------------------------------------------------------------
// Which visit is a child's latest and when the next one is due are core's rule (the one
// the relay's overdue report uses), asked through the engine. This screen only says how
// far away that date is.

/** `[{child, due}]` for child summary rows; `due` is {kind: 'never'|'overdue'|'soon'|'later', due, days (due - today)}. */
function withDue(ctx, children, visits, today) {
  const schedule = ctx.engine.visitsDue(children, visits);
  return children.map((child, index) => ({ child, due: dueFromSchedule(schedule[index], today) }));
}

function dueFromSchedule(entry, today) {
  if (!entry?.lastVisit || !entry.due) return { kind: 'never', due: null, days: null };
  const days = daysBetween(today, entry.due);
  const kind = days < 0 ? 'overdue' : days <= DUE_SOON_DAYS ? 'soon' : 'later';
  return { kind, due: entry.due, days };
}

/** Newest visit first, for the history list. */
function newestFirst(a, b) {
  if (a.day !== b.day) return a.day < b.day ? 1 : -1;
  return (b.startedAt ?? 0) - (a.startedAt ?? 0);
}

function dueText(t, due) {
  switch (due.kind) {
    case 'never':
      return t('due.never');
    case 'overdue':
      return t('due.overdue', { days: -due.days, date: due.due });
    case 'soon':
      return due.days === 0 ? t('due.today') : t('due.soon', { days: due.days, date: due.due });
    default:
      return t('due.later', { date: due.due });
  }
}

const DUE_ORDER = { never: 0, overdue: 1, soon: 2, later: 3 };
/** One collator for every comparison: `localeCompare` with a locale builds one per call. */
const byName = new Intl.Collator('zh-CN').compare;

function sortByDue(a, b) {
  if (DUE_ORDER[a.due.kind] !== DUE_ORDER[b.due.kind]) return DUE_ORDER[a.due.kind] - DUE_ORDER[b.due.kind];
  if (a.due.due !== b.due.due) return a.due.due < b.due.due ? -1 : 1;
  return byName(String(a.child.title), String(b.child.title));
}

// ----- children list -------------------------------------------------------------------

/** The children list is on the screen with rows, saved or live (cold-open benchmark). */
const LIST_SHOWN_MARK = 'caresync:list-shown';
/** The list is on the screen as the running engine computed it. */
const LIVE_LIST_SHOWN_MARK = 'caresync:live-list-shown';
/** Rows built before the list is first painted: more than a phone screen shows. */
const FIRST_ROWS = 40;
/** Rows built per task after that, so that the page stays responsive meanwhile. */
const MORE_ROWS = 200;

/**
 * Marks the first time this page shows the children list with rows, for the cold-open
 * benchmark (tests/js/bench/cold_open.mjs). A timer started inside an animation frame
 * runs after that frame is painted, so the mark includes the layout and paint of the rows.
 */
function markShown(mark) {
  if (performance.getEntriesByName(mark).length > 0) return;
  requestAnimationFrame(() =>
    setTimeout(() => {
      if (performance.getEntriesByName(mark).length === 0) performance.mark(mark);
    }),
  );
}

// ----- the saved first screen ----------------------------------------------------------
// Starting the engine on a phone with thousands of records takes longer than a second (the
// wasm, the IndexedDB rows, the schedule). The list's first screenful, as last shown, is
// kept in localStorage, so the app can show it at once on the next start and replace it
// with the live list when the engine is ready. It holds what the screen showed, not a rule:
// each row's due date as core's schedule gave it; only the distance to today is new.

const firstScreenKey = (accountId) => `caresync.first-screen.${accountId}`;

function saveFirstScreen(accountId, rows) {
  const saved = JSON.stringify({
    total: rows.length,
    rows: rows.slice(0, FIRST_ROWS).map(({ child, due }) => ({
      document: child.document,
      title: child.title,
      risk: child.risk ?? null,
      syncState: child.syncState,
      due: due.due,
    })),
  });
  try {
    if (localStorage.getItem(firstScreenKey(accountId)) !== saved) localStorage.setItem(firstScreenKey(accountId), saved);
  } catch {
    // A full or disabled localStorage only costs the faster start.
  }
}

/** The saved first screen of an account, or null. */
export function savedFirstScreen(accountId) {
  try {
    const saved = JSON.parse(localStorage.getItem(firstScreenKey(accountId)) ?? 'null');
    return saved && Array.isArray(saved.rows) && saved.rows.length > 0 ? saved : null;
  } catch {
    return null;
  }
}

export function forgetFirstScreen(accountId) {
  try {
    localStorage.removeItem(firstScreenKey(accountId));
  } catch {
    // Nothing to forget.
  }
}

function savedRows(t, saved) {
  const today = chinaToday();
  return saved.rows.map((row) =>
    childRow(t, {
      child: row,
      due: dueFromSchedule({ lastVisit: row.due != null, due: row.due }, today),
    }),
  );
}

/**
 * The children list from the saved first screen, before the engine runs (the app calls
 * this while it starts). The search and the register button wait for the live list.
 */
export function renderSavedChildrenList(t, root, saved) {
  root.dataset.screen = 'children';
  root.append(
    el('div', { class: 'title-row' }, el('h2', {}, t('children.title'), ' ', el('span', { class: 'muted', text: t('children.count', { count: saved.total }) }))),
    el('div', { class: 'toolbar' }, el('input', { type: 'search', class: 'search', placeholder: t('children.search'), 'aria-label': t('children.search'), disabled: true })),
    el('ul', { class: 'rows', testid: 'child-list-saved' }, ...savedRows(t, saved)),
  );
  // Tells the browser test that this start showed the saved screen.
  performance.mark('caresync:saved-list-rendered');
  markShown(LIST_SHOWN_MARK);
}

function childRow(t, { child, due }) {
  return el(
    'li',
    {},
    el(
      'a',
      {
        class: `row due-${due.kind} risk-edge-${child.risk || 'none'}`,
        href: `#/child/${encodeURIComponent(child.document)}`,
        testid: 'child-row',
        dataset: { document: child.document, due: due.kind },
      },
      riskDot(t, child.risk),
      el(
        'span',
        { class: 'row-main' },
        el('span', { class: 'row-title', testid: 'child-name', text: child.title }),
        el('span', { class: `row-sub due-text-${due.kind}`, testid: 'child-due', text: dueText(t, due) }),
      ),
      child.syncState !== 'synced' ? stateBadge(t, child.syncState) : null,
      el('span', { class: 'chevron', 'aria-hidden': 'true', text: '›' }),
    ),
  );
}

function childrenList(ctx, root) {
  const { t } = ctx;
  root.dataset.screen = 'children';
  const search = el('input', {
    type: 'search',
    class: 'search',
    testid: 'child-search',
    placeholder: t('children.search'),
    'aria-label': t('children.search'),
    oninput: () => fill(),
  });
  const count = el('span', { class: 'muted' });
  const list = el('ul', { class: 'rows', testid: 'child-list' });
  // Until the first fill, the saved first screen keeps the list from flashing empty.
  const saved = savedFirstScreen(ctx.account.id);
  if (saved) {
    count.textContent = t('children.count', { count: saved.total });
    list.append(...savedRows(t, saved));
  }
  // Each fill counts up, so that rows still being added for an older fill stop.
  let generation = 0;
  root.append(
    el('div', { class: 'title-row' }, el('h2', {}, t('children.title'), ' ', count)),
    el('div', { class: 'toolbar' }, search, el('a', { class: 'btn primary', href: '#/children/new', testid: 'register-child', text: t('children.register') })),
    list,
  );

  async function fill() {
    const [children, visits] = await Promise.all([ctx.engine.summaries('child'), ctx.engine.summaries('home-visit')]);
    const today = chinaToday();
    const query = search.value.trim();
    const shown = children.filter((child) => child.active !== false).filter((child) => !query || String(child.title).includes(query));
    const rows = withDue(ctx, shown, visits, today).sort(sortByDue);
    if (!query) saveFirstScreen(ctx.account.id, rows);
    count.textContent = t('children.count', { count: rows.length });
    clear(list);
    generation += 1;
    if (rows.length === 0) {
      list.appendChild(el('li', { class: 'empty', testid: 'children-empty', text: query ? t('children.noMatch') : t('children.empty') }));
      return;
    }
    // A village with thousands of records has over a thousand children: building every
    // row before the first paint kept the list blank for seconds on a slow phone. The
    // first screenful goes in now, the rest in later tasks, in the same order.
    list.append(...rows.slice(0, FIRST_ROWS).map((row) => childRow(t, row)));
    markShown(LIST_SHOWN_MARK);
    markShown(LIVE_LIST_SHOWN_MARK);
    const mine = generation;
    const addMore = (from) => {
      if (mine !== generation || !list.isConnected || from >= rows.length) return;
      list.append(...rows.slice(from, from + MORE_ROWS).map((row) => childRow(t, row)));
      setTimeout(() => addMore(from + MORE_ROWS));
    };
    // After the frame that shows the first rows: a timer set now could run before it.
    requestAnimationFrame(() => setTimeout(() => addMore(FIRST_ROWS)));
  }

  ctx.engine.on('changed', fill);
  return fill();
}

// ----- child page ----------------------------------------------------------------------

async function childPage(ctx, root, childId) {
  const { t } = ctx;
  root.dataset.screen = 'child';
  const head = el('section', { class: 'card', testid: 'child-details' });
  const visitsBox = el('ul', { class: 'rows', testid: 'visit-list' });
  const refusedBox = el('div');
  root.append(
    el('a', { class: 'back', href: '#/children', testid: 'back', text: `‹ ${t('nav.children')}` }),
    head,
    refusedBox,
    el('a', { class: 'btn primary block', href: `#/child/${encodeURIComponent(childId)}/visit/new`, testid: 'new-visit', text: t('child.newVisit') }),
    el('h3', { text: t('child.visits') }),
    visitsBox,
  );
  let record = null;

  async function fill() {
    if (!head.isConnected) return;
    const summary = ctx.engine.summary(childId);
    const visits = (await ctx.engine.summaries('home-visit')).filter((visit) => visit.subject === childId);
    visits.sort(newestFirst);
    const today = chinaToday();
    const due = summary ? withDue(ctx, [summary], visits, today)[0].due : null;
    const name = summary?.title ?? record?.name ?? t('child.unknown');
    document.title = `${name} · ${t('app.short')}`;
    clear(head).append(
      el('div', { class: 'title-row' }, riskDot(t, summary?.risk ?? record?.risk?.level), el('h2', { testid: 'child-title', text: name }), summary ? stateBadge(t, ctx.engine.state(childId)) : null),
      due ? el('p', { class: `due-text-${due.kind}`, testid: 'child-due', text: dueText(t, due) }) : null,
      record ? childFacts(t, record) : el('p', { class: 'muted', text: t('child.notOnPhone') }),
    );
    clear(refusedBox);
    for (const copy of ctx.engine.refused(childId).filter((c) => !c.dismissed)) refusedBox.appendChild(refusedPanel(ctx, copy, null));
    clear(visitsBox);
    if (visits.length === 0) {
      visitsBox.appendChild(el('li', { class: 'empty', testid: 'visits-empty', text: t('child.noVisits') }));
      return;
    }
    for (const visit of visits) visitsBox.appendChild(visitRow(ctx, visit));
  }

  ctx.engine.on('changed', fill);
  await fill();
  record = await ctx.engine.record(childId);
  return fill();
}

function childFacts(t, record) {
  const facts = [
    [t('child.birth'), record.birthYearMonth],
    [t('child.gender'), record.gender ? t(`gender.${record.gender}`) : ''],
    [t('child.categories'), (record.categories ?? []).map((c) => t(`category.${c}`)).join('、')],
    [t('child.risk'), record.risk ? `${t(`risk.${record.risk.level}`)} (${record.risk.date})${record.risk.reason ? `：${record.risk.reason}` : ''}` : t('risk.none')],
    [t('child.status'), record.status ? t(`childStatus.${record.status}`) : ''],
  ];
  for (const guardian of record.guardians ?? []) {
    facts.push([t('child.guardian'), `${guardian.name}（${t(`relation.${guardian.relation}`)}）${guardian.phone ? ` ${guardian.phone}` : ''}`]);
  }
  return el(
    'dl',
    { class: 'facts' },
    facts.filter(([, value]) => value).map(([label, value]) => [el('dt', { text: label }), el('dd', { text: value })]),
  );
}

function visitRow(ctx, visit) {
  const { t } = ctx;
  return el(
    'li',
    {},
    el(
      'a',
      { class: 'row', href: `#/visit/${encodeURIComponent(visit.document)}`, testid: 'visit-row', dataset: { document: visit.document } },
      el(
        'span',
        { class: 'row-main' },
        el('span', { class: 'row-title', testid: 'visit-day', text: visit.day ?? '—' }),
        el(
          'span',
          { class: 'row-sub' },
          el('span', { testid: 'visit-status', text: t(`visitStatus.${visit.recordStatus ?? 'draft'}`) }),
          visit.reviewState && visit.reviewState !== 'returned' ? ` · ${t(`review.${visit.reviewState}`)}` : '',
        ),
        visit.syncState === 'returned' || visit.reviewState === 'returned'
          ? el('span', { class: 'review-comment', testid: 'visit-review-comment', text: `${t('review.returnedWith')}${visit.reviewComment ?? ''}` })
          : null,
      ),
      stateBadge(t, visit.syncState),
      el('span', { class: 'chevron', 'aria-hidden': 'true', text: '›' }),
    ),
  );
}

// ----- a refused copy ------------------------------------------------------------------

function refusedPanel(ctx, copy, editHref) {
  const { t } = ctx;
  const record = copy.refusedRecord;
  return el(
    'section',
    { class: 'card refused', testid: 'refused-panel', role: 'alert' },
    el('h3', { text: t('refused.title') }),
    el('p', { testid: 'refused-reason', dataset: { code: copy.code ?? '' } }, el('strong', { text: t('refused.reason') }), refusedReason(t, copy)),
    copy.message ? el('p', { class: 'muted small', testid: 'refused-detail', text: copy.message }) : null,
    el('p', { class: 'muted', text: t('refused.explain', { at: formatDateTime(copy.at) }) }),
    record
      ? el('details', { testid: 'refused-copy', open: true }, el('summary', { text: t('refused.copy') }), recordDetails(ctx, record))
      : el('p', { class: 'muted', text: t('refused.noCopy') }),
    el(
      'div',
      { class: 'actions' },
      editHref && record ? el('a', { class: 'btn', href: editHref, testid: 'refused-edit', text: t('refused.edit') }) : null,
      el('button', {
        class: 'btn ghost',
        type: 'button',
        testid: 'refused-dismiss',
        text: t('refused.dismiss'),
        onclick: () => ctx.engine.dismissRefused(copy),
      }),
    ),
  );
}

/** The reason of a refusal in the user's language, from its code. */
export function refusedReason(t, copy) {
  const key = `refusedCode.${copy.code}`;
  const text = t(key);
  return text === key ? copy.message || copy.code : text;
}

/** A record readable by people: a home visit as a checklist, other kinds as their fields. */
function recordDetails(ctx, record) {
  const { t } = ctx;
  if (record.kind === 'child') return childFacts(t, record);
  if (record.kind !== 'home-visit') {
    return el('pre', { class: 'raw', text: JSON.stringify(record, null, 2) });
  }
  const rows = [
    [t('visit.started'), formatDateTime(record.startedAt)],
    [t('visit.ended'), formatDateTime(record.endedAt)],
    [t('visit.status'), t(`visitStatus.${record.status ?? 'draft'}`)],
  ];
  for (const area of AREAS) {
    const item = record.checklist?.[area];
    rows.push([t(`area.${area}`), item ? `${t(`finding.${item.status}`)}${item.note ? `：${item.note}` : ''}` : '—']);
  }
  rows.push([t('visit.needs'), (record.needs ?? []).join('；')]);
  rows.push([t('visit.actions'), (record.actions ?? []).join('；')]);
  rows.push([t('visit.referrals'), (record.referrals ?? []).map((r) => (r.reason ? `${r.to}（${r.reason}）` : r.to)).join('；')]);
  rows.push([t('visit.nextDate'), record.nextVisitDate ?? '']);
  return el(
    'dl',
    { class: 'facts', testid: 'visit-details' },
    rows.filter(([, value]) => value).map(([label, value]) => [el('dt', { text: label }), el('dd', { text: value })]),
  );
}

// ----- visit page ----------------------------------------------------------------------

async function visitPage(ctx, root, visitId) {
  const { t } = ctx;
  root.dataset.screen = 'visit';
  const body = el('div');
  const back = el('a', { class: 'back', href: '#/children', testid: 'back', text: `‹ ${t('nav.children')}` });
  root.append(back, body);

  async function fill() {
    const record = await ctx.engine.record(visitId);
    if (!body.isConnected) return;
    const summary = ctx.engine.summary(visitId);
    const copies = ctx.engine.refused(visitId).filter((copy) => !copy.dismissed);
    const shown = record && record.kind ? record : copies[0]?.refusedRecord;
    const childId = shown?.childId ?? summary?.subject;
    if (childId) {
      back.href = `#/child/${encodeURIComponent(childId)}`;
      back.textContent = `‹ ${ctx.engine.summary(childId)?.title ?? t('nav.child')}`;
    }
    const state = ctx.engine.state(visitId);
    clear(body);
    body.append(
      el(
        'div',
        { class: 'title-row' },
        el('h2', { testid: 'visit-title', text: t('visit.title', { day: summary?.day ?? (shown ? chinaDate(shown.startedAt) : '') }) }),
        stateBadge(t, state),
      ),
      el('p', { class: 'muted', testid: 'state-explain', text: t(`stateExplain.${state}`) }),
    );
    if (summary?.reviewState === 'returned' || record?.review?.state === 'returned') {
      body.appendChild(
        el(
          'section',
          { class: 'card returned', role: 'status' },
          el('h3', { text: t('review.returnedTitle') }),
          el('p', { testid: 'visit-review-comment', text: record?.review?.comment ?? summary?.reviewComment ?? '' }),
        ),
      );
    } else if (summary?.reviewState === 'approved') {
      body.appendChild(el('p', { class: 'approved', text: t('review.approved') }));
    }
    for (const copy of copies) {
      body.appendChild(refusedPanel(ctx, copy, `#/visit/${encodeURIComponent(visitId)}/edit?refused=${copy.id ?? ''}`));
    }
    if (record && record.kind) {
      body.append(
        el('section', { class: 'card' }, recordDetails(ctx, record)),
        el('a', { class: 'btn primary block', href: `#/visit/${encodeURIComponent(visitId)}/edit`, testid: 'visit-edit', text: t('visit.edit') }),
      );
    } else if (!copies.length) {
      body.appendChild(el('p', { class: 'muted', text: t('visit.notOnPhone') }));
    }
  }

  ctx.engine.on('changed', fill);
  return fill();
}

// ----- visit form ----------------------------------------------------------------------

async function visitForm(ctx, root, { childId, visitId }) {
  const { t, account } = ctx;
  root.dataset.screen = 'visit-form';
  const openedAt = Date.now();
  let base = null;
  if (visitId) {
    base = await ctx.engine.record(visitId);
    const refusedId = ctx.route.query.refused;
    if (refusedId) {
      const copy = ctx.engine.refused(visitId).find((c) => String(c.id) === refusedId);
      if (copy?.refusedRecord) {
        // Start from the refused version, keeping what only the reviewer may write as it is now.
        const current = base ?? {};
        base = { ...copy.refusedRecord, review: current.review, comments: current.comments };
        if (!base.review) delete base.review;
        if (!base.comments) delete base.comments;
      }
    }
    if (!base) {
      root.appendChild(el('p', { class: 'muted', text: t('visit.notOnPhone') }));
      return;
    }
    childId = base.childId;
  }
  const child = ctx.engine.summary(childId);
  const childRecord = child ? null : await ctx.engine.record(childId);
  const childName = child?.title ?? childRecord?.name ?? '';

  const startedInput = el('input', { type: 'datetime-local', id: 'visit-started', testid: 'visit-started', value: toLocalInput(base?.startedAt ?? openedAt) });
  const endedInput = el('input', { type: 'datetime-local', id: 'visit-ended', testid: 'visit-ended', value: toLocalInput(base?.endedAt) });
  const findings = {};
  const notes = {};
  const areaBlocks = AREAS.map((area) => {
    const current = base?.checklist?.[area];
    notes[area] = el('textarea', {
      id: `check-${area}-note`,
      testid: `check-${area}-note`,
      rows: 2,
      placeholder: t('visit.notePlaceholder'),
      'aria-label': `${t(`area.${area}`)} ${t('visit.note')}`,
      value: current?.note ?? '',
    });
    const choices = FINDINGS.map((finding) => {
      const input = el('input', { type: 'radio', name: `check-${area}`, value: finding, checked: current?.status === finding });
      findings[`${area}/${finding}`] = input;
      return el('label', { class: `choice finding-${finding}`, testid: `check-${area}-${finding}` }, input, el('span', { text: t(`finding.${finding}`) }));
    });
    return el(
      'fieldset',
      { class: 'area', dataset: { area } },
      el('legend', { text: t(`area.${area}`) }),
      el('p', { class: 'hint', text: t(`areaHint.${area}`) }),
      el('div', { class: 'choices' }, choices),
      errorSlot(`checklist.${area}`),
      notes[area],
      errorSlot(`checklist.${area}.note`),
    );
  });
  const needs = el('textarea', { id: 'visit-needs', testid: 'visit-needs', rows: 3, value: (base?.needs ?? []).join('\n'), placeholder: t('visit.onePerLine') });
  const actions = el('textarea', { id: 'visit-actions', testid: 'visit-actions', rows: 3, value: (base?.actions ?? []).join('\n'), placeholder: t('visit.onePerLine') });
  const referralList = el('div', { class: 'referrals' });
  const addReferral = (referral) => {
    const to = el('input', { testid: 'visit-referral-to', placeholder: t('visit.referralTo'), 'aria-label': t('visit.referralTo'), value: referral?.to ?? '' });
    const reason = el('input', { testid: 'visit-referral-reason', placeholder: t('visit.referralReason'), 'aria-label': t('visit.referralReason'), value: referral?.reason ?? '' });
    const index = referralList.children.length;
    const row = el(
      'div',
      { class: 'referral' },
      to,
      reason,
      el('button', { type: 'button', class: 'btn ghost small', testid: 'visit-referral-remove', 'aria-label': t('visit.referralRemove'), text: '✕', onclick: () => row.remove() }),
      errorSlot(`referrals[${index}].to`),
    );
    referralList.appendChild(row);
  };
  for (const referral of base?.referrals ?? []) addReferral(referral);
  const nextDate = el('input', { type: 'date', id: 'visit-next-date', testid: 'visit-next-date', value: base?.nextVisitDate ?? '' });
  const risk = child?.risk ?? childRecord?.risk?.level;
  const suggestion = ctx.engine.suggestedNextVisit(risk, chinaDate(base?.startedAt ?? openedAt));
  const formError = errorSlot('form');
  const saveDraft = el('button', { type: 'button', class: 'btn block', testid: 'visit-save-draft', text: t('visit.saveDraft'), onclick: () => save('draft') });
  const saveFinal = el('button', { type: 'button', class: 'btn primary block', testid: 'visit-save-final', text: t('visit.saveFinal'), onclick: () => save('final') });

  const form = el(
    'form',
    { class: 'visit-form', testid: 'visit-form', onsubmit: (event) => event.preventDefault(), novalidate: true },
    el('a', { class: 'back', href: visitId ? `#/visit/${encodeURIComponent(visitId)}` : `#/child/${encodeURIComponent(childId)}`, testid: 'back', text: `‹ ${childName || t('nav.child')}` }),
    el('h2', { text: visitId ? t('visit.editTitle', { name: childName }) : t('visit.newTitle', { name: childName }) }),
    base?.review?.state === 'returned' ? el('p', { class: 'card returned', testid: 'visit-review-comment', text: `${t('review.returnedWith')}${base.review.comment ?? ''}` }) : null,
    el(
      'div',
      { class: 'two' },
      el('label', {}, el('span', { text: t('visit.started') }), startedInput),
      el('label', {}, el('span', { text: t('visit.ended') }), endedInput),
    ),
    el('p', { class: 'hint', text: t('visit.endedHint') }),
    errorSlot('startedAt'),
    errorSlot('endedAt'),
    el('h3', { text: t('visit.checklist') }),
    areaBlocks,
    el('label', { for: 'visit-needs', text: t('visit.needs') }),
    needs,
    errorSlot('needs'),
    el('label', { for: 'visit-actions', text: t('visit.actions') }),
    actions,
    errorSlot('actions'),
    el('h3', { text: t('visit.referrals') }),
    referralList,
    el('button', { type: 'button', class: 'btn ghost small', testid: 'visit-referral-add', text: `+ ${t('visit.referralAdd')}`, onclick: () => addReferral(null) }),
    errorSlot('referrals'),
    el('label', { for: 'visit-next-date', text: t('visit.nextDate') }),
    el(
      'div',
      { class: 'inline' },
      nextDate,
      el('button', {
        type: 'button',
        class: 'btn ghost small',
        testid: 'visit-next-suggest',
        text: t('visit.suggest', { date: suggestion }),
        onclick: () => {
          nextDate.value = suggestion;
        },
      }),
    ),
    errorSlot('nextVisitDate'),
    formError,
    el('div', { class: 'actions sticky' }, saveDraft, saveFinal),
  );
  root.appendChild(form);

  function build(status) {
    const record = base ? structuredClone(base) : { kind: 'home-visit', schemaVersion: 1, orgUnit: account.org_units?.[0] ?? child?.orgUnit, worker: account.id, childId };
    record.status = status;
    const started = fromLocalInput(startedInput.value);
    record.startedAt = started ?? base?.startedAt ?? openedAt;
    let ended = fromLocalInput(endedInput.value);
    if (ended == null && (status === 'final' || !base)) ended = Date.now();
    if (ended == null) delete record.endedAt;
    else record.endedAt = ended;
    const checklist = {};
    for (const area of AREAS) {
      const finding = FINDINGS.find((f) => findings[`${area}/${f}`].checked);
      const note = notes[area].value.trim();
      if (finding) checklist[area] = note ? { status: finding, note } : { status: finding };
    }
    if (Object.keys(checklist).length) record.checklist = checklist;
    else delete record.checklist;
    setList(record, 'needs', lines(needs.value));
    setList(record, 'actions', lines(actions.value));
    const referrals = [...referralList.querySelectorAll('.referral')]
      .map((row) => {
        const [to, reason] = row.querySelectorAll('input');
        return reason.value.trim() ? { to: to.value.trim(), reason: reason.value.trim() } : { to: to.value.trim() };
      })
      .filter((r) => r.to || r.reason);
    setList(record, 'referrals', referrals);
    if (nextDate.value) record.nextVisitDate = nextDate.value;
    else delete record.nextVisitDate;
    return record;
  }

  async function save(status) {
    const record = build(status);
    const errors = ctx.engine.validate(record);
    if (errors.length) {
      showErrors(form, errors, ctx.lang);
      return;
    }
    showErrors(form, [], ctx.lang);
    saveDraft.disabled = saveFinal.disabled = true;
    try {
      let document = visitId;
      if (visitId) await ctx.engine.update(visitId, record);
      else document = await ctx.engine.create(record);
      const refusedId = ctx.route.query.refused;
      if (refusedId) {
        const copy = ctx.engine.refused(visitId).find((c) => String(c.id) === refusedId);
        if (copy) await ctx.engine.dismissRefused(copy);
      }
      toast(t(status === 'final' ? 'toast.savedFinal' : 'toast.savedDraft'));
      ctx.navigate(`#/visit/${encodeURIComponent(document)}`);
    } catch (error) {
      saveDraft.disabled = saveFinal.disabled = false;
      if (error?.errors) showErrors(form, error.errors, ctx.lang);
      else showErrors(form, [{ field: 'form', message: `${t('toast.storageFailed')} ${error?.message ?? error}` }], ctx.lang);
    }
  }
}

function setList(record, key, items) {
  if (items.length) record[key] = items;
  else delete record[key];
}

// ----- register a child ----------------------------------------------------------------

function registerChild(ctx, root) {
  const { t, account } = ctx;
  root.dataset.screen = 'register-child';
  const nameSearch = el('input', { id: 'child-search-name', testid: 'child-search-name', autocomplete: 'off', placeholder: t('register.namePlaceholder') });
  const matches = el('ul', { class: 'rows' });
  const formBox = el('div');
  const searchForm = el(
    'form',
    { class: 'card', onsubmit: (event) => (event.preventDefault(), search()) },
    el('h2', { text: t('register.title') }),
    el('p', { class: 'hint', text: t('register.searchFirst') }),
    el('label', { for: 'child-search-name', text: t('child.name') }),
    el('div', { class: 'inline' }, nameSearch, el('button', { type: 'submit', class: 'btn primary', testid: 'child-search-submit', text: t('register.search') })),
    matches,
  );
  root.append(el('a', { class: 'back', href: '#/children', testid: 'back', text: `‹ ${t('nav.children')}` }), searchForm, formBox);
  nameSearch.focus();

  async function search() {
    const name = nameSearch.value.trim();
    clear(matches);
    clear(formBox);
    if (!name) return;
    const children = await ctx.engine.summaries('child');
    const found = children.filter((child) => String(child.title).includes(name) || name.includes(String(child.title)));
    if (found.length) {
      matches.appendChild(el('li', { class: 'hint', text: t('register.found', { count: found.length }) }));
      for (const child of found) {
        matches.appendChild(
          el(
            'li',
            {},
            el(
              'a',
              { class: 'row', href: `#/child/${encodeURIComponent(child.document)}`, testid: 'child-match', dataset: { document: child.document } },
              riskDot(t, child.risk),
              el('span', { class: 'row-main' }, el('span', { class: 'row-title', text: child.title }), el('span', { class: 'row-sub', text: child.active === false ? t('register.inactive') : t('register.active') })),
              el('span', { class: 'chevron', 'aria-hidden': 'true', text: '›' }),
            ),
          ),
        );
      }
    } else {
      matches.appendChild(el('li', { class: 'hint', text: t('register.none') }));
    }
    matches.appendChild(
      el('li', {}, el('button', { type: 'button', class: 'btn block', testid: 'child-register-new', text: t('register.new', { name }), onclick: () => showForm(name) })),
    );
  }

  function showForm(name) {
    clear(matches);
    const nameInput = el('input', { id: 'child-name-input', testid: 'child-name-input', value: name, autocomplete: 'off' });
    const birth = el('input', { id: 'child-birth', testid: 'child-birth', type: 'month', max: chinaToday().slice(0, 7) });
    const gender = {};
    const genderChoices = ['female', 'male'].map((g) => {
      gender[g] = el('input', { type: 'radio', name: 'child-gender', value: g });
      return el('label', { class: 'choice', testid: `child-gender-${g}` }, gender[g], el('span', { text: t(`gender.${g}`) }));
    });
    const categories = {};
    const categoryChoices = CATEGORIES.map((c) => {
      categories[c] = el('input', { type: 'checkbox', value: c });
      return el('label', { class: 'choice wide', testid: `child-category-${c}` }, categories[c], el('span', { text: t(`category.${c}`) }));
    });
    const risks = {};
    const riskChoices = ['none', ...RISKS].map((r) => {
      risks[r] = el('input', { type: 'radio', name: 'child-risk', value: r, checked: r === 'none' });
      return el('label', { class: `choice risk-choice-${r}`, testid: `child-risk-${r}` }, risks[r], el('span', { text: t(`risk.${r}`) }));
    });
    const riskReason = el('textarea', { id: 'child-risk-reason', testid: 'child-risk-reason', rows: 2, placeholder: t('register.riskReason') });
    const guardianName = el('input', { id: 'child-guardian-name', testid: 'child-guardian-name', autocomplete: 'off' });
    const guardianRelation = el(
      'select',
      { id: 'child-guardian-relation', testid: 'child-guardian-relation' },
      RELATIONS.map((r) => el('option', { value: r, text: t(`relation.${r}`) })),
    );
    const guardianPhone = el('input', { id: 'child-guardian-phone', testid: 'child-guardian-phone', type: 'tel', inputmode: 'tel', autocomplete: 'off' });
    const save = el('button', { type: 'submit', class: 'btn primary block', testid: 'child-save', text: t('register.save') });
    const form = el(
      'form',
      { class: 'card', testid: 'child-form', novalidate: true, onsubmit: (event) => (event.preventDefault(), submit()) },
      el('label', { for: 'child-name-input', text: `${t('child.name')} *` }),
      nameInput,
      errorSlot('name'),
      el('label', { for: 'child-birth', text: `${t('child.birth')} *` }),
      birth,
      errorSlot('birthYearMonth'),
      el('fieldset', {}, el('legend', { text: `${t('child.gender')} *` }), el('div', { class: 'choices' }, genderChoices)),
      errorSlot('gender'),
      el('fieldset', {}, el('legend', { text: `${t('child.categories')} *` }), el('div', { class: 'choices column' }, categoryChoices)),
      errorSlot('categories'),
      el('fieldset', {}, el('legend', { text: t('child.risk') }), el('div', { class: 'choices' }, riskChoices), riskReason),
      errorSlot('risk'),
      el(
        'fieldset',
        {},
        el('legend', { text: t('child.guardian') }),
        el('label', { for: 'child-guardian-name', text: t('register.guardianName') }),
        guardianName,
        errorSlot('guardians[0].name'),
        el('label', { for: 'child-guardian-relation', text: t('register.guardianRelation') }),
        guardianRelation,
        el('label', { for: 'child-guardian-phone', text: t('register.guardianPhone') }),
        guardianPhone,
        errorSlot('guardians[0].phone'),
      ),
      errorSlot('guardians'),
      errorSlot('form'),
      save,
    );
    clear(formBox).appendChild(form);
    nameInput.focus();

    async function submit() {
      const record = { kind: 'child', schemaVersion: 1, orgUnit: account.org_units?.[0], name: nameInput.value.trim(), status: 'active' };
      const local = [];
      if (/^\d{4}-\d{2}$/.test(birth.value)) record.birthYearMonth = birth.value;
      else local.push({ field: 'birthYearMonth', message: t('error.required') });
      const g = ['female', 'male'].find((x) => gender[x].checked);
      if (g) record.gender = g;
      else local.push({ field: 'gender', message: t('error.required') });
      record.categories = CATEGORIES.filter((c) => categories[c].checked);
      const level = RISKS.find((r) => risks[r].checked);
      if (level) {
        record.risk = { level, date: chinaToday() };
        if (riskReason.value.trim()) record.risk.reason = riskReason.value.trim();
      }
      if (guardianName.value.trim() || guardianPhone.value.trim()) {
        const guardian = { name: guardianName.value.trim(), relation: guardianRelation.value };
        if (guardianPhone.value.trim()) guardian.phone = guardianPhone.value.trim();
        record.guardians = [guardian];
      }
      // Without birth month or gender the record cannot be read at all: report those here,
      // and let the shared rules judge the rest on a stand-in value.
      const probe = { birthYearMonth: '2000-01', gender: 'female', ...record };
      const errors = [...local, ...ctx.engine.validate(probe)];
      if (errors.length) {
        showErrors(form, errors, ctx.lang);
        return;
      }
      showErrors(form, [], ctx.lang);
      save.disabled = true;
      try {
        const document = await ctx.engine.create(record);
        toast(t('toast.childSaved'));
        ctx.navigate(`#/child/${encodeURIComponent(document)}`);
      } catch (error) {
        save.disabled = false;
        if (error?.errors) showErrors(form, error.errors, ctx.lang);
        else showErrors(form, [{ field: 'form', message: `${t('toast.storageFailed')} ${error?.message ?? error}` }], ctx.lang);
      }
    }
  }
}

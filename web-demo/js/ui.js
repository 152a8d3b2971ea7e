// Small DOM helpers shared by every screen: element building, dates in China time, state
// badges, field error slots and toasts. No state of its own beyond the toast container.

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open']);

/**
 * Builds an element. `attrs`: `class`, `text`, `style` (object), `testid` (sets
 * `data-testid`), `dataset` (object), `on<event>` functions, DOM properties (`value`,
 * `checked`, `disabled`, ...) and plain attributes. `null`, `undefined` and `false` attributes
 * are skipped. Children may be nodes, strings, numbers, arrays or null.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPERTIES.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// ----- dates: caresync dates are calendar dates in China Standard Time (UTC+8) -----------

const CHINA_OFFSET_MS = 8 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;

/** The China date (`YYYY-MM-DD`) of an instant in milliseconds. */
export function chinaDate(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 10);
}

export function chinaToday() {
  return chinaDate(Date.now());
}

/** Days since 1970-01-01 of a `YYYY-MM-DD` date. */
export function dayNumber(date) {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY_MS);
}

/** `b - a` in days. */
export function daysBetween(a, b) {
  return dayNumber(b) - dayNumber(a);
}

/** `YYYY-MM-DDTHH:MM` in China time, for `<input type="datetime-local">`. */
export function toLocalInput(ms) {
  if (ms == null) return '';
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 16);
}

/** The instant of a `datetime-local` value read as China time; null if empty or invalid. */
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = Date.parse(`${value}:00Z`);
  return Number.isFinite(ms) ? ms - CHINA_OFFSET_MS : null;
}

/** `YYYY-MM-DD HH:MM` in China time. */
export function formatDateTime(ms) {
  if (ms == null) return '';
  return toLocalInput(ms).replace('T', ' ');
}

// ----- badges ------------------------------------------------------------------------

/** The state badge of a record: saved on this phone, synced, returned or refused. */
export function stateBadge(t, state) {
  return el('span', {
    class: `badge state-${state}`,
    testid: 'record-state',
    dataset: { state },
    text: t(`state.${state}`),
  });
}

export function riskDot(t, risk) {
  const level = risk || 'none';
  return el('span', {
    class: `risk-dot risk-${level}`,
    testid: 'risk',
    dataset: { risk: level },
    title: t(`risk.${level}`),
    'aria-label': t(`risk.${level}`),
  });
}

// ----- field errors ------------------------------------------------------------------

/** A slot under a field where validation errors for `field` (a record path) appear. */
export function errorSlot(field) {
  return el('div', {
    class: 'field-error',
    role: 'alert',
    testid: `error-${field}`,
    dataset: { field },
  });
}

/**
 * Shows errors (`[{field, zh, en}]` or `{field, message}`) in the error slots under
 * `container`: the slot of the exact field, else of the field without list indexes, else of
 * its parent path, else the slot named `form`. Returns how many were shown.
 */
export function showErrors(container, errors, lang) {
  const slots = new Map();
  for (const slot of container.querySelectorAll('.field-error')) {
    slots.set(slot.dataset.field, slot);
    clear(slot);
    slot.classList.remove('shown');
  }
  for (const error of errors) {
    const text = error.message ?? (lang === 'en' ? error.en : error.zh) ?? error.code;
    let slot = null;
    let field = String(error.field ?? '');
    const candidates = [field, field.replace(/\[\d+\]/g, '')];
    while (field.includes('.')) {
      field = field.slice(0, field.lastIndexOf('.'));
      candidates.push(field, field.replace(/\[\d+\]/g, ''));
    }
    candidates.push('form');
    for (const name of candidates) {
      if (slots.has(name)) {
        slot = slots.get(name);
        break;
      }
    }
    if (!slot) continue;
    slot.appendChild(el('p', { text }));
    slot.classList.add('shown');
  }
  const first = container.querySelector('.field-error.shown');
  first?.scrollIntoView?.({ block: 'center', behavior: 'smooth' });
  return errors.length;
}

// ----- toasts ------------------------------------------------------------------------

export function toast(message, kind = 'info') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = el('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite' });
    document.body.appendChild(box);
  }
  const item = el('div', { class: `toast toast-${kind}`, testid: 'toast', role: 'status', text: message, onclick: () => item.remove() });
  box.appendChild(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 3500);
}

/** Lines of a textarea as a list of non-blank entries. */
export function lines(text) {
  return String(text ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

// The driver of the wasm engine (`Phone`): it owns the Phone, carries out every effect after
// every call (frames to the socket, storage ops to IndexedDB, notifications to the UI),
// feeds storage completions back, keeps each document's summary in IndexedDB, and tells the
// UI what changed through events. At start it restores the index and the scope cursor.
//
// Events (`engine.on(name, cb)` returns an unsubscribe function):
//   changed            (debounced) summaries, sync states or refused copies changed
//   document-changed   {document}
//   saved              {document}         a local edit is durable on this phone
//   refused            {document, code, message}
//   storage-failed     {document, reason}
//   peer-ready, scope-synced, unsynced {count}, sync-status {state, pending, ...}

let wasmReady = null;

/** Initialises the wasm module once. */
export function initWasm(wasm) {
  wasmReady ??= Promise.resolve(wasm.default?.());
  return wasmReady;
}

export class ValidationError extends Error {
  constructor(errors) {
    super('invalid record');
    this.errors = errors;
  }
}

function sameHeads(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((head) => set.has(head));
}

/**
 * Bytes from the engine as a Uint8Array. The bindings' typings promise Uint8Array, but a
 * build may hand out plain arrays of numbers; a WebSocket would send those as text.
 */
function bytes(value) {
  if (value == null || value instanceof Uint8Array) return value;
  return Uint8Array.from(value);
}

/** A storage op with every byte field as a Uint8Array. */
function withBytes(op) {
  switch (op.type) {
    case 'put-changes':
      return { ...op, changes: op.changes.map((change) => ({ hash: change.hash, bytes: bytes(change.bytes) })) };
    case 'compact':
    case 'replace':
      return { ...op, snapshot: bytes(op.snapshot) };
    default:
      return op;
  }
}

function normalLoadState(value) {
  return String(value ?? '')
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}

const CHANGED_DEBOUNCE_MS = 120;
const SUMMARY_FLUSH_MS = 250;
const TICK_MS = 1000;
/** The most write ops in one IndexedDB transaction (a first sync's page is about 1,700). */
const WRITES_PER_TRANSACTION_MAX = 2000;
const MISSING_WAIT_MS = 8000;

export class Engine {
  /** `wasm`: the module of `pkg/caresync_wasm.js`; `store`: the account's Store. */
  constructor({ wasm, store, account }) {
    this.wasm = wasm;
    this.store = store;
    this.account = account;
    this.currentPhone = null;
    /** What start read for the Phone, until the Phone is made (see `get phone`). */
    this.restoring = null;
    this.transport = null; // {send(connection, frame), close(connection, reason)}
    this.listeners = new Map();
    /** document -> {summary, heads, relayHeads, unavailable} */
    this.docs = new Map();
    /** refused copies, newest last */
    this.refusedCopies = [];
    this.unsynced = new Set();
    this.recordWaiters = [];
    this.saveWaiters = [];
    this.pendingSummaries = new Map();
    this.summaryTimer = null;
    this.changedTimer = null;
    this.tickTimer = null;
    this.writesOfLastRun = new Set();
    this.pumping = false;
    this.connected = false;
    this.storageInFlight = 0;
    /** Write ops waiting for the write transaction in flight to finish: `[{id, op}]`. */
    this.writeQueue = [];
    this.writing = false;
  }

  async start() {
    // The wasm compiles while IndexedDB reads: both take a while on a cheap phone.
    const [, cursor, rows, refused] = await Promise.all([
      initWasm(this.wasm),
      this.store.kvGet('scopeCursor'),
      this.store.allDocuments(),
      this.store.allRefused(),
    ]);
    const index = [];
    for (const row of rows) {
      this.docs.set(row.document, {
        summary: row.summary ?? null,
        heads: row.heads ?? null,
        relayHeads: row.relayHeads ?? [],
        unavailable: Boolean(row.unavailable),
      });
      if (row.heads) {
        const relayHeads = row.relayHeads ?? [];
        index.push({ document: row.document, localHeads: row.heads, relayHeads });
        // What the Phone will answer once it has the index: heads the relay lacks.
        if (!sameHeads(row.heads, relayHeads)) this.unsynced.add(row.document);
      }
    }
    this.refusedCopies = refused;
    // Handing thousands of index entries to the Phone takes longer than drawing the first
    // screen, which needs only the summaries above: the Phone is made once the frame after
    // next has begun (the first screen is drawn in the next one), or at once when anything
    // asks for it first (`get phone`).
    this.restoring = { cursor, index };
    const later = () => setTimeout(() => this.phone);
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => requestAnimationFrame(later));
    else later();
    this.tickTimer = setInterval(() => this.run((phone, now) => phone.tick(now)), TICK_MS);
  }

  /** The wasm Phone, made with the stored index on first use after `start`. */
  get phone() {
    if (!this.currentPhone && this.restoring) {
      const { cursor, index } = this.restoring;
      this.restoring = null;
      // A fresh peer id and actor for every start: two tabs or two starts never share one.
      const peerId = `phone-${this.account.id}-${randomHex(6)}`;
      const actor = crypto.getRandomValues(new Uint8Array(16));
      this.currentPhone = cursor == null ? new this.wasm.Phone(peerId, actor) : new this.wasm.Phone(peerId, actor, cursor);
      this.currentPhone.restoreIndex(index);
      this.pump();
    }
    return this.currentPhone;
  }

  stop() {
    // A Phone not made yet is not needed any more.
    this.restoring = null;
    clearInterval(this.tickTimer);
    clearTimeout(this.summaryTimer);
    this.flushSummaries();
    this.listeners.clear();
  }

  // ----- events ----------------------------------------------------------------------

  on(event, callback) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(callback);
    return () => this.listeners.get(event)?.delete(callback);
  }

  emit(event, detail) {
    for (const callback of [...(this.listeners.get(event) ?? [])]) {
      try {
        callback(detail);
      } catch (error) {
        console.error('caresync: listener of', event, 'failed', error);
      }
    }
  }

  changedSoon() {
    if (this.changedTimer) return;
    this.changedTimer = setTimeout(() => {
      this.changedTimer = null;
      this.emit('changed');
    }, CHANGED_DEBOUNCE_MS);
  }

  // ----- driving the phone -----------------------------------------------------------

  /** Calls `fn(phone, nowMs)`, then carries out every effect it queued. */
  run(fn) {
    this.writesOfLastRun = new Set();
    try {
      return fn(this.phone, Date.now());
    } finally {
      this.pump();
    }
  }

  pump() {
    if (!this.phone) return;
    if (this.pumping) return; // the outer loop takes what was queued meanwhile
    this.pumping = true;
    try {
      for (;;) {
        const effects = this.phone.takeEffects();
        if (!effects || effects.length === 0) break;
        for (const effect of effects) this.carry(effect);
      }
    } finally {
      this.pumping = false;
    }
    this.refreshUnsynced();
    this.checkRecordWaiters();
  }

  carry(effect) {
    switch (effect.type) {
      case 'send':
        this.transport?.send(effect.connection, bytes(effect.frame));
        break;
      case 'close':
        this.transport?.close(effect.connection, effect.reason);
        break;
      case 'storage':
        this.storage(effect.id, effect.op);
        break;
      case 'notify':
        this.notified(effect.notification);
        break;
      case 'audit':
        console.info('caresync audit', effect);
        break;
      default:
        break;
    }
  }

  storage(id, op) {
    const info = this.docs.get(op.document);
    if (op.type === 'put-changes') {
      this.writesOfLastRun.add(op.document);
    }
    if (op.type === 'put-relay-heads' && info) info.relayHeads = op.heads;
    this.storageInFlight += 1;
    if (op.type === 'load') {
      this.store.execute(withBytes(op)).then((completion) => this.storageDone(id, op, completion));
      return;
    }
    // Group commit: one write transaction at a time, and every write that arrives while
    // it waits for the disk goes into the next one. A single edit is written at once; a
    // first sync's thousands of documents take a few transactions instead of thousands.
    this.writeQueue.push({ id, op: withBytes(op) });
    this.flushWrites();
  }

  flushWrites() {
    if (this.writing || this.writeQueue.length === 0) return;
    const batch = this.writeQueue.splice(0, WRITES_PER_TRANSACTION_MAX);
    this.writing = true;
    this.store.writeBatch(batch.map(({ op }) => op)).then((completions) => {
      // Writes the completions cause wait for the next transaction.
      batch.forEach(({ id, op }, index) => this.storageDone(id, op, completions[index]));
      this.writing = false;
      this.flushWrites();
    });
  }

  storageDone(id, op, completion) {
    this.storageInFlight -= 1;
    // "Synced" waits for the phone's own storage too (sync.js): say when it caught up.
    if (this.storageInFlight === 0) this.emit('storage-idle');
    if (completion.type === 'written') this.written(op);
    this.run((phone, now) => phone.storageCompleted(now, { id, ...completion }));
  }

  /** Keeps the in-memory copy of what a completed write stored. */
  written(op) {
    const info = this.docInfo(op.document);
    if (!info) return;
    if (op.type === 'put-changes') info.heads = op.heads;
    if (op.type === 'replace' && op.heads) {
      info.heads = op.heads;
      info.relayHeads = op.heads;
    }
  }

  docInfo(document) {
    if (!document) return null;
    if (!this.docs.has(document)) {
      this.docs.set(document, { summary: null, heads: null, relayHeads: [], unavailable: false });
    }
    return this.docs.get(document);
  }

  notified(n) {
    if (!n) return;
    const document = n.document;
    switch (n.type) {
      case 'document-changed': {
        const info = this.docInfo(document);
        let summary = null;
        try {
          summary = this.phone.summary(document);
        } catch (error) {
          console.warn('caresync: no summary of', document, error);
        }
        if (summary) info.summary = summary;
        if (n.heads) info.heads = n.heads;
        info.unavailable = false;
        this.pendingSummaries.set(document, { document, summary: info.summary, heads: n.heads, unavailable: false });
        this.flushSoon();
        this.emit('document-changed', { document });
        this.changedSoon();
        break;
      }
      case 'local-change-saved':
        this.settleSaved(document, null);
        this.emit('saved', { document });
        this.changedSoon();
        break;
      case 'document-unavailable': {
        for (const waiter of this.recordWaiters.filter((w) => w.document === document)) {
          waiter.resolve(null);
        }
        this.recordWaiters = this.recordWaiters.filter((w) => w.document !== document);
        const info = this.docs.get(document);
        if (info && info.summary && !this.unsynced.has(document)) {
          // The relay no longer lists it for this account: hide it, keep what is stored.
          info.unavailable = true;
          this.pendingSummaries.set(document, { document, unavailable: true });
          this.flushSoon();
          this.changedSoon();
        }
        break;
      }
      case 'changes-refused': {
        const entry = {
          document,
          code: n.code,
          message: n.message,
          refusedCopy: bytes(n.refusedCopy) ?? null,
          refusedRecord: n.refusedRecord ?? null,
          at: Date.now(),
        };
        const local = { ...entry, id: null, dismissed: false };
        this.refusedCopies.push(local);
        this.store
          .addRefused(entry)
          .then((id) => {
            local.id = id;
          })
          .catch((error) => console.error('caresync: could not keep a refused copy', error));
        this.settleSaved(document, null);
        this.emit('refused', { document, code: n.code, message: n.message });
        this.changedSoon();
        break;
      }
      case 'storage-failed':
        this.settleSaved(document, new Error(n.reason || 'storage failed'));
        this.emit('storage-failed', { document, reason: n.reason });
        break;
      case 'peer-ready':
        this.emit('peer-ready', n);
        break;
      case 'scope-synced':
        this.emit('scope-synced', n);
        this.changedSoon();
        break;
      default:
        break;
    }
  }

  flushSoon() {
    if (this.summaryTimer) return;
    this.summaryTimer = setTimeout(() => {
      this.summaryTimer = null;
      this.flushSummaries();
    }, SUMMARY_FLUSH_MS);
  }

  flushSummaries() {
    const items = [...this.pendingSummaries.values()];
    this.pendingSummaries.clear();
    this.store.putSummaries(items).catch((error) => console.error('caresync: summaries not stored', error));
  }

  refreshUnsynced() {
    let list = [];
    try {
      list = this.phone.unsyncedDocuments() ?? [];
    } catch (error) {
      console.warn('caresync: unsyncedDocuments failed', error);
    }
    const before = this.unsynced;
    const now = new Set(list);
    const differs = before.size !== now.size || [...now].some((doc) => !before.has(doc));
    this.unsynced = now;
    if (differs) {
      this.emit('unsynced', { count: now.size });
      this.changedSoon();
    }
  }

  // ----- connections (called by sync.js) ------------------------------------------------

  connectionOpened(connection) {
    this.connected = true;
    this.run((phone, now) => phone.connectionOpened(now, connection));
  }

  frameReceived(connection, bytes) {
    this.run((phone, now) => phone.frameReceived(now, connection, bytes));
  }

  connectionClosed(connection) {
    this.connected = false;
    this.run((phone) => phone.connectionClosed(connection));
  }

  // ----- what screens use (through ctx.engine) ----------------------------------------

  /** Summaries of one kind (all kinds if omitted), each with its `syncState`. */
  summaries(kind) {
    const out = [];
    const seen = new Set();
    for (const [document, info] of this.docs) {
      const summary = info.summary;
      if (!summary || info.unavailable) continue;
      if (kind && summary.kind !== kind) continue;
      seen.add(document);
      out.push({ ...summary, document, syncState: this.state(document) });
    }
    // A new record refused as a whole has no summary: show it from its refused copy.
    for (const copy of this.refusedCopies) {
      const record = copy.refusedRecord;
      if (copy.dismissed || !record || seen.has(copy.document)) continue;
      if (kind && record.kind !== kind) continue;
      let row;
      try {
        row = this.wasm.reportRow(copy.document, record);
      } catch (error) {
        console.warn('caresync: refused copy not listable', copy.document, error);
        continue;
      }
      seen.add(copy.document);
      out.push({ ...row, syncState: 'refused', refusedOnly: true });
    }
    return out;
  }

  summary(document) {
    const info = this.docs.get(document);
    return info?.summary ? { ...info.summary, document, syncState: this.state(document) } : null;
  }

  loadState(document) {
    try {
      return normalLoadState(this.phone.loadState(document));
    } catch {
      return 'notloaded';
    }
  }

  /** The record of a document, loading it first if needed; null if it is not there. */
  record(document) {
    if (this.loadState(document) === 'ready') return Promise.resolve(this.readRecord(document));
    return new Promise((resolve) => {
      this.recordWaiters.push({ document, resolve, since: Date.now() });
      if (this.loadState(document) === 'notloaded') this.run((phone, now) => phone.open(now, document));
      else this.checkRecordWaiters();
    });
  }

  /** The record in memory; null if not loaded or unreadable (a damaged or foreign document). */
  readRecord(document) {
    try {
      return this.phone.record(document) ?? null;
    } catch (error) {
      console.warn('caresync: unreadable record', document, error);
      return null;
    }
  }

  checkRecordWaiters() {
    if (this.recordWaiters.length === 0) return;
    const now = Date.now();
    this.recordWaiters = this.recordWaiters.filter((waiter) => {
      const state = this.loadState(waiter.document);
      if (state === 'ready') {
        waiter.resolve(this.readRecord(waiter.document));
        return false;
      }
      if (state === 'missing' && (!this.connected || now - waiter.since > MISSING_WAIT_MS)) {
        waiter.resolve(null);
        return false;
      }
      if (state === 'notloaded' && now - waiter.since > MISSING_WAIT_MS) {
        waiter.resolve(null);
        return false;
      }
      return true;
    });
  }

  /**
   * Core's visit schedule for `children` (summary rows): `[{child, lastVisit, lastVisitDay,
   * due}]` in the same order, `due` null when never visited.
   */
  visitsDue(children, visits) {
    return this.wasm.visitsDue(children.map(scheduleRow), visits.map(scheduleRow));
  }

  /** The next-visit date core suggests after a visit on `day` to a child of `risk`. */
  suggestedNextVisit(risk, day) {
    return this.wasm.suggestedNextVisit(risk ?? null, day);
  }

  validate(record) {
    try {
      return this.wasm.validateRecord(record) ?? [];
    } catch (error) {
      return error?.errors ?? [{ field: 'form', code: 'unreadable', zh: String(error), en: String(error) }];
    }
  }

  /** Creates a record; resolves with its document id once it is durable on this phone. */
  async create(record) {
    let document;
    try {
      document = this.run((phone, now) => phone.createRecord(now, record));
    } catch (error) {
      throw asValidationError(error);
    }
    await this.waitSaved(document);
    return document;
  }

  /** Replaces a record's fields; resolves once the change is durable on this phone. */
  async update(document, record) {
    await this.record(document);
    try {
      this.run((phone, now) => phone.updateRecord(now, document, record));
    } catch (error) {
      throw asValidationError(error);
    }
    if (this.writesOfLastRun.has(document)) await this.waitSaved(document);
  }

  waitSaved(document) {
    return new Promise((resolve, reject) => {
      this.saveWaiters.push({ document, resolve, reject });
    });
  }

  settleSaved(document, error) {
    const mine = this.saveWaiters.filter((w) => w.document === document || (error && !document));
    this.saveWaiters = this.saveWaiters.filter((w) => !mine.includes(w));
    for (const waiter of mine) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
  }

  /** 'refused' | 'saved' (on this phone, not yet on the relay) | 'returned' | 'synced'. */
  state(document) {
    if (this.refusedCopies.some((copy) => copy.document === document && !copy.dismissed)) return 'refused';
    if (this.unsynced.has(document)) return 'saved';
    if (this.docs.get(document)?.summary?.reviewState === 'returned') return 'returned';
    return 'synced';
  }

  /** Refused copies of one document (all if omitted), newest first. */
  refused(document) {
    return this.refusedCopies
      .filter((copy) => !document || copy.document === document)
      .slice()
      .reverse();
  }

  async dismissRefused(copy) {
    copy.dismissed = true;
    if (copy.id != null) await this.store.dismissRefused(copy.id);
    this.changedSoon();
  }

  unsyncedDocuments() {
    return [...this.unsynced];
  }
}

/**
 * A summary row as core's visit schedule reads it: its fields with the long texts left
 * empty. Every string of a row is copied into wasm, and for a village of thousands of
 * records a visit's needs, actions and concerns were most of that copying.
 */
function scheduleRow(row) {
  return {
    document: row.document,
    kind: row.kind,
    orgUnit: row.orgUnit,
    subject: row.subject,
    title: '',
    day: row.day,
    startedAt: row.startedAt,
    nextVisit: row.nextVisit,
    risk: row.risk,
    active: row.active,
    needsOrServices: '',
    actions: '',
    concerns: '',
  };
}

function asValidationError(error) {
  if (error && Array.isArray(error.errors)) return new ValidationError(error.errors);
  if (error instanceof Error) return error;
  return new Error(String(error?.message ?? error));
}


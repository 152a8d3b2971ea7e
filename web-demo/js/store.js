// IndexedDB: the phone's storage. One database per account on this device
// (`caresync-<account id>`) and one for the device (`caresync-device`: the accounts that
// may unlock offline). Stores:
//   changes    [document, hash] -> {document, hash, bytes}      change rows since the snapshot
//   snapshots  document -> {document, snapshot}                 compacted state
//   documents  document -> {document, meta, heads, relayHeads, summary, unavailable}
//   refused    id (auto) -> {id, document, code, message, refusedCopy, refusedRecord, at, dismissed}
//   kv         key -> {key, value}
// `execute(op)` carries out one storage op of the engine and answers its completion;
// `writeBatch(ops)` carries out many write ops in one transaction (the engine's group
// commit: a first sync stores thousands of documents, and each strict transaction waits
// for the disk). Every write transaction uses durability 'strict' and is answered
// 'written' only after the transaction's `complete` event: only then may the engine call
// the change saved.

const DB_VERSION = 1;
const STRICT = { durability: 'strict' };
const RELAXED = { durability: 'relaxed' };
/** The op types `writeBatch` carries out together. */
const WRITE_OPS = new Set(['put-changes', 'compact', 'replace', 'save-scope-cursor', 'put-relay-heads']);

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function finished(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** Every change row of one document: keys [document, <any string>] sort below [document, []]. */
function rowsOf(document) {
  return IDBKeyRange.bound([document], [document, []]);
}

/** Read-modify-write of a `documents` row inside `tx`. */
function updateDocument(tx, document, update) {
  const store = tx.objectStore('documents');
  const get = store.get(document);
  get.onsuccess = () => {
    const row = get.result ?? { document, heads: null, relayHeads: [], meta: null, summary: null };
    update(row);
    store.put(row);
  };
}

/**
 * Queues the requests of one write op in `tx`; changes to its `documents` row go through
 * `updateRow(document, update)`, which the caller applies once per row.
 */
function queueWrite(tx, op, updateRow) {
  const changes = tx.objectStore('changes');
  const snapshots = tx.objectStore('snapshots');
  switch (op.type) {
    case 'put-changes':
      for (const change of op.changes) changes.put({ document: op.document, hash: change.hash, bytes: change.bytes });
      updateRow(op.document, (row) => {
        row.heads = op.heads;
        if (op.meta) row.meta = op.meta;
        row.unavailable = false;
      });
      break;
    case 'compact':
      snapshots.put({ document: op.document, snapshot: op.snapshot });
      for (const hash of op.covered) changes.delete([op.document, hash]);
      break;
    case 'replace':
      changes.delete(rowsOf(op.document));
      snapshots.put({ document: op.document, snapshot: op.snapshot });
      updateRow(op.document, (row) => {
        // The engine returns the document to what the relay holds, so both heads agree.
        const settled = op.heads ?? row.relayHeads ?? [];
        row.heads = settled;
        row.relayHeads = settled;
      });
      break;
    case 'save-scope-cursor':
      tx.objectStore('kv').put({ key: 'scopeCursor', value: op.cursor });
      break;
    case 'put-relay-heads':
      updateRow(op.document, (row) => {
        row.relayHeads = op.heads;
      });
      break;
    default:
      console.warn('caresync: unknown storage op', op);
      break;
  }
}

function openDatabase(name) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name, DB_VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains('changes')) db.createObjectStore('changes', { keyPath: ['document', 'hash'] });
      if (!db.objectStoreNames.contains('snapshots')) db.createObjectStore('snapshots', { keyPath: 'document' });
      if (!db.objectStoreNames.contains('documents')) db.createObjectStore('documents', { keyPath: 'document' });
      if (!db.objectStoreNames.contains('refused')) {
        const refused = db.createObjectStore('refused', { keyPath: 'id', autoIncrement: true });
        refused.createIndex('document', 'document');
      }
      if (!db.objectStoreNames.contains('kv')) db.createObjectStore('kv', { keyPath: 'key' });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
    open.onblocked = () => reject(new Error(`database ${name} is blocked by another tab`));
  });
}

export class Store {
  constructor(db) {
    this.db = db;
  }

  static async open(name) {
    return new Store(await openDatabase(name));
  }

  /** The database of one account on this device. */
  static forAccount(accountId) {
    return Store.open(`caresync-${accountId}`);
  }

  /** The device's own database (offline unlock verifiers). */
  static device() {
    return Store.open('caresync-device');
  }

  close() {
    this.db.close();
  }

  // ----- the engine's storage ops ----------------------------------------------------

  /**
   * Carries out one storage op. Resolves with the completion without its id:
   * `{type:'loaded', document, stored}`, `{type:'written'}` or `{type:'failed', reason}`.
   * Never rejects.
   */
  async execute(op) {
    if (op.type === 'load') {
      try {
        return await this.load(op.document);
      } catch (error) {
        return { type: 'failed', reason: String(error?.message ?? error) };
      }
    }
    if (!WRITE_OPS.has(op.type)) {
      console.warn('caresync: unknown storage op', op);
      return { type: 'written' };
    }
    const [completion] = await this.writeBatch([op]);
    return completion;
  }

  /**
   * Carries out write ops (every type but `load`) in order, in ONE strict transaction.
   * Resolves with one completion per op, as `execute` does, and never rejects. If the
   * transaction of several ops fails, each is tried again in a transaction of its own, so
   * one bad op fails alone.
   */
  async writeBatch(ops) {
    try {
      const tx = this.db.transaction(['changes', 'snapshots', 'documents', 'kv'], 'readwrite', STRICT);
      // Each `documents` row is read once and written once, with every op's update applied
      // in order: two read-modify-writes of one row in one transaction would lose one.
      const rowUpdates = new Map();
      const updateRow = (document, update) => {
        if (!rowUpdates.has(document)) rowUpdates.set(document, []);
        rowUpdates.get(document).push(update);
      };
      for (const op of ops) queueWrite(tx, op, updateRow);
      for (const [document, updates] of rowUpdates) {
        updateDocument(tx, document, (row) => {
          for (const update of updates) update(row);
        });
      }
      await finished(tx);
      return ops.map(() => ({ type: 'written' }));
    } catch (error) {
      if (ops.length === 1) return [{ type: 'failed', reason: String(error?.message ?? error) }];
      console.warn('caresync: a batch of writes failed; writing one by one', error);
      const completions = [];
      for (const op of ops) completions.push(...(await this.writeBatch([op])));
      return completions;
    }
  }

  async load(document) {
    const tx = this.db.transaction(['changes', 'snapshots', 'documents'], 'readonly');
    const [snapshot, changes, row] = await Promise.all([
      request(tx.objectStore('snapshots').get(document)),
      request(tx.objectStore('changes').getAll(rowsOf(document))),
      request(tx.objectStore('documents').get(document)),
    ]);
    const exists = Boolean(snapshot) || changes.length > 0;
    return {
      type: 'loaded',
      document,
      stored: exists
        ? {
            snapshot: snapshot?.snapshot ?? null,
            changes: changes.map(({ hash, bytes }) => ({ hash, bytes })),
            meta: row?.meta ?? null,
          }
        : null,
    };
  }

  // ----- what the driver keeps besides the engine's rows ------------------------------

  /** Every `documents` row: the index and summaries restored at start. */
  async allDocuments() {
    const tx = this.db.transaction(['documents'], 'readonly');
    return request(tx.objectStore('documents').getAll());
  }

  /**
   * Writes summaries and durable heads of documents, `[{document, summary, heads}]`, in one
   * transaction. Derived data (the engine gives them again), so relaxed durability.
   */
  async putSummaries(items) {
    if (items.length === 0) return;
    const tx = this.db.transaction(['documents'], 'readwrite', RELAXED);
    for (const item of items) {
      updateDocument(tx, item.document, (row) => {
        if ('summary' in item) row.summary = item.summary;
        if (item.heads) row.heads = item.heads;
        if ('unavailable' in item) row.unavailable = item.unavailable;
      });
    }
    await finished(tx);
  }

  /** Keeps the readable copy of a refused edit. Resolves with its id. */
  async addRefused(entry) {
    const tx = this.db.transaction(['refused'], 'readwrite', STRICT);
    const id = request(tx.objectStore('refused').add({ ...entry, dismissed: false }));
    await finished(tx);
    return id;
  }

  async allRefused() {
    const tx = this.db.transaction(['refused'], 'readonly');
    return request(tx.objectStore('refused').getAll());
  }

  /** Marks a refused copy as read by the user. The copy itself is kept. */
  async dismissRefused(id) {
    const tx = this.db.transaction(['refused'], 'readwrite', STRICT);
    const store = tx.objectStore('refused');
    const get = store.get(id);
    get.onsuccess = () => {
      if (get.result) store.put({ ...get.result, dismissed: true });
    };
    await finished(tx);
  }

  async kvGet(key) {
    const tx = this.db.transaction(['kv'], 'readonly');
    const row = await request(tx.objectStore('kv').get(key));
    return row?.value;
  }

  async kvSet(key, value, strict = true) {
    const tx = this.db.transaction(['kv'], 'readwrite', strict ? STRICT : RELAXED);
    tx.objectStore('kv').put({ key, value });
    await finished(tx);
  }
}

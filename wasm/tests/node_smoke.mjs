// Smoke test of the wasm bindings under Node: the JS side of what wasm/src/tests.rs checks
// natively (plain objects, Uint8Array bytes, thrown errors with `code` and `errors`).
//
//   cargo build -p caresync-wasm --target wasm32-unknown-unknown --profile wasm-release
//   wasm-bindgen --target nodejs --out-dir /tmp/caresync-wasm-node \
//     "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/caresync_wasm.wasm"
//   node wasm/tests/node_smoke.mjs /tmp/caresync-wasm-node

import assert from "node:assert/strict"
import { createRequire } from "node:module"
import path from "node:path"

const dir = path.resolve(process.argv[2] ?? "/tmp/caresync-wasm-node")
const { Phone, validateRecord, newDocumentId, reportRow, visitsDue, suggestedNextVisit } = createRequire(import.meta.url)(
  path.join(dir, "caresync_wasm.js"),
)

const now = Date.parse("2024-05-01T04:00:00Z")
const random16 = () => crypto.getRandomValues(new Uint8Array(16))

const child = {
  kind: "child",
  schemaVersion: 1,
  orgUnit: "370402001001",
  name: "王小明",
  birthYearMonth: "2014-03",
  gender: "male",
  categories: ["left-behind"],
  guardians: [],
  status: "active",
  comments: [],
}

// ----- validation ----------------------------------------------------------------------------
assert.deepEqual(validateRecord(child), [])
const broken = validateRecord({ ...child, name: " ", categories: [] })
assert.deepEqual(
  broken.map((e) => [e.field, e.code]),
  [["name", "required"], ["categories", "required"]],
)
assert.ok(broken[0].zh && broken[0].en)
assert.equal(validateRecord({ kind: "parcel" })[0].code, "unreadable")
assert.equal(validateRecord(null)[0].code, "unreadable")
assert.equal(typeof newDocumentId(random16()), "string")

// ----- core's report rows and visit schedule -------------------------------------------------
const childRow = reportRow("child-a", { ...child, risk: { level: "red", date: "2024-04-01" } })
assert.equal(childRow.kind, "child")
assert.equal(childRow.risk, "red")
const visit = (startedAt, nextVisitDate) => ({
  kind: "home-visit",
  schemaVersion: 1,
  orgUnit: "370402001001",
  worker: "dir-1",
  childId: "child-a",
  startedAt,
  checklist: {},
  needs: [],
  actions: [],
  referrals: [],
  status: "draft",
  review: { state: "pending" },
  comments: [],
  ...(nextVisitDate ? { nextVisitDate } : {}),
})
const visitRows = [reportRow("v1", visit(now, "2024-05-10")), reportRow("v2", visit(now + 3600_000))]
// The later visit planned nothing: red risk, 30 days after 2024-05-01.
assert.deepEqual(visitsDue([{ ...childRow, syncState: "synced" }], visitRows), [
  { child: "child-a", lastVisit: "v2", lastVisitDay: "2024-05-01", due: "2024-05-31" },
])
assert.equal(suggestedNextVisit("yellow", "2024-05-01"), "2024-06-30")
assert.equal(suggestedNextVisit(null, "2024-05-01"), "2024-07-30")
assert.throws(() => suggestedNextVisit("purple", "2024-05-01"), (e) => e.code === "bad-input")

// ----- a tiny in-memory "IndexedDB" and the driving loop --------------------------------------
const db = new Map() // document -> {snapshot, changes: Map(hash -> bytes), meta, localHeads, relayHeads}
let scopeCursor
const notifications = []
const sent = []

function carryOut(phone) {
  for (;;) {
    const effects = phone.takeEffects()
    if (effects.length === 0) return
    for (const effect of effects) {
      switch (effect.type) {
        case "send":
          assert.ok(effect.frame instanceof Uint8Array)
          sent.push(effect)
          break
        case "notify":
          notifications.push(effect.notification)
          break
        case "storage":
          phone.storageCompleted(Date.now(), execute(effect.id, effect.op))
          break
        default:
          throw new Error(`unexpected effect ${effect.type}`)
      }
    }
  }
}

function execute(id, op) {
  const entry = () => {
    if (!db.has(op.document)) {
      db.set(op.document, { snapshot: null, changes: new Map(), meta: null, localHeads: [], relayHeads: [] })
    }
    return db.get(op.document)
  }
  switch (op.type) {
    case "load": {
      const doc = db.get(op.document)
      const stored = doc && {
        snapshot: doc.snapshot,
        changes: [...doc.changes].map(([hash, bytes]) => ({ hash, bytes })),
        meta: doc.meta,
      }
      return { id, type: "loaded", document: op.document, stored: stored ?? null }
    }
    case "put-changes": {
      const doc = entry()
      for (const change of op.changes) {
        assert.ok(change.bytes instanceof Uint8Array)
        assert.match(change.hash, /^[0-9a-f]{64}$/)
        doc.changes.set(change.hash, change.bytes)
      }
      if (op.meta) doc.meta = op.meta
      doc.localHeads = op.heads
      break
    }
    case "compact": {
      const doc = entry()
      doc.snapshot = op.snapshot
      for (const hash of op.covered) doc.changes.delete(hash)
      break
    }
    case "replace": {
      const doc = entry()
      doc.snapshot = op.snapshot
      doc.changes.clear()
      doc.localHeads = op.heads // the document is now exactly what the relay holds
      doc.relayHeads = op.heads
      break
    }
    case "save-scope-cursor":
      scopeCursor = op.cursor
      break
    case "put-relay-heads":
      if (db.has(op.document)) db.get(op.document).relayHeads = op.heads
      break
    default:
      return { id, type: "failed", reason: `unknown op ${op.type}` }
  }
  return { id, type: "written" }
}

// ----- create, read, restart, load, update ---------------------------------------------------
let phone = new Phone("smoke-phone", random16())
const id = phone.createRecord(now, child)
assert.equal(typeof id, "string")
assert.deepEqual(phone.record(id), child) // shown before storage confirms
assert.equal(phone.loadState(id), "ready")
carryOut(phone)
assert.ok(notifications.some((n) => n.type === "local-change-saved" && n.document === id))
assert.deepEqual(phone.unsyncedDocuments(), [id])
assert.equal(db.get(id).meta.kind, "child")
const summary = phone.summary(id)
assert.equal(summary.title, "王小明")
assert.equal(summary.risk, null)

assert.throws(
  () => phone.createRecord(now, { ...child, name: "" }),
  (e) => e instanceof Error && e.code === "invalid" && e.errors[0].field === "name",
)
assert.throws(
  () => phone.createRecord(now, { ...child, gender: "boy" }),
  (e) => e.code === "invalid" && e.errors[0].code === "unreadable" && /boy/.test(e.message),
)

// A restart: a new engine over the same storage.
phone.free()
phone = new Phone("smoke-phone", random16(), scopeCursor)
phone.restoreIndex([...db].map(([document, doc]) => ({ document, localHeads: doc.localHeads, relayHeads: doc.relayHeads })))
assert.deepEqual(phone.unsyncedDocuments(), [id])
assert.equal(phone.record(id), null)
assert.throws(() => phone.updateRecord(now, id, child), (e) => e.code === "not-open")
phone.open(now, id)
assert.equal(phone.loadState(id), "loading")
carryOut(phone)
assert.equal(phone.loadState(id), "ready")
assert.deepEqual(phone.record(id), child)

phone.updateRecord(now + 1000, id, { ...child, name: "王晓明" })
carryOut(phone)
assert.equal(phone.record(id).name, "王晓明")
assert.equal(db.get(id).changes.size, 2)

// ----- the connection side: join goes out as bytes --------------------------------------------
phone.connectionOpened(now, 1)
carryOut(phone)
assert.equal(sent.length, 1)
assert.equal(sent[0].connection, 1)
phone.connectionClosed(1)

// ----- bad input throws errors, never panics -------------------------------------------------
assert.throws(() => phone.storageCompleted(now, { id: 99, type: "nonsense" }), (e) => e.code === "bad-input")
assert.throws(() => phone.record("not-a-document-id"), (e) => e.code === "bad-input")
assert.throws(() => new Phone("p", new Uint8Array(3)), (e) => e.code === "bad-input")
assert.throws(() => phone.restoreIndex([{ document: id, localHeads: ["xyz"] }]), (e) => e.code === "bad-input")
phone.tick(now + 60_000) // still alive after the errors
assert.deepEqual(phone.record(id).categories, ["left-behind"])

console.log("node smoke test: ok")

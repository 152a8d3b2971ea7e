#!/usr/bin/env node
// The official JavaScript automerge-repo client, unmodified, as a command line for caresync's
// cross-implementation tests. It talks to any automerge-repo WebSocket server (our relay,
// the JS sync server) through WebSocketClientAdapter, exactly as a web page would.
//
//   node client.mjs read   <wsUrl> <docId>           prints the document as JSON
//   node client.mjs write  <wsUrl> <docId> <patch>   patch: {"path": ["a", "b"], "value": v}
//                                                     or an array of them
//   node client.mjs create <wsUrl> <json>            prints the new document's id
//
// Exit codes: 0 done, 1 usage or unexpected error, 2 the server answered doc-unavailable,
// 3 the hard timeout passed (CARESYNC_CLIENT_TIMEOUT_MS, default 20000), so a test never hangs.
// The URL may carry `?token=...`; the adapter passes it through untouched.

import { Repo, encodeHeads } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const EXIT_ERROR = 1
const EXIT_UNAVAILABLE = 2
const EXIT_TIMEOUT = 3

const timeoutMs = Number(process.env.CARESYNC_CLIENT_TIMEOUT_MS ?? 20000)

function fail(code, message) {
  console.error(message)
  process.exit(code)
}

// Not unref'd: the timer itself must end the process if everything else is stuck.
setTimeout(
  () => fail(EXIT_TIMEOUT, `timeout after ${timeoutMs} ms`),
  timeoutMs,
)

// The adapter rethrows every socket error except ECONNREFUSED from an event handler (for
// example a 401 answer to the upgrade), which would otherwise crash with a stack trace.
process.on("uncaughtException", error => fail(EXIT_ERROR, `error: ${error.message}`))
process.on("unhandledRejection", error =>
  fail(EXIT_ERROR, `error: ${error?.message ?? error}`),
)

const usage =
  "usage: client.mjs read <wsUrl> <docId> | write <wsUrl> <docId> <patch> | create <wsUrl> <json>"

function parseJson(text, what) {
  try {
    return JSON.parse(text)
  } catch (error) {
    return fail(EXIT_ERROR, `${what} is not JSON: ${error.message}`)
  }
}

// A Repo without storage (so it is ephemeral to the server) and the default share policy,
// like a browser tab.
async function connect(url) {
  const repo = new Repo({ network: [new WebSocketClientAdapter(url)] })
  // `find` gives up on peers it has not heard from about a second after the adapter starts
  // (the adapter declares itself ready after 1 s without a `peer`), so wait for the server's
  // `peer` answer first: a slow handshake must not look like a missing document.
  if (repo.peers.length === 0) {
    await new Promise(resolve => repo.networkSubsystem.once("peer", resolve))
  }
  return repo
}

async function find(repo, docId) {
  try {
    return await repo.find(docId)
  } catch (error) {
    // automerge-repo 2.5 rejects `find` with "Document <id> is unavailable" once every
    // peer answered doc-unavailable.
    if (/unavailable/.test(String(error?.message))) {
      return fail(EXIT_UNAVAILABLE, "unavailable")
    }
    throw error
  }
}

// Resolves once a server peer's sync state says it holds every head of the document:
// its `theirHeads` arrive with each sync message it sends, and it only sends heads it has.
function serverHas(repo, handle) {
  const ours = handle.heads()
  const covers = syncState =>
    syncState?.theirHeads !== undefined &&
    syncState.theirHeads !== null &&
    ours.every(head => encodeHeads(syncState.theirHeads).includes(head))
  return new Promise(resolve => {
    const listener = ({ documentId, syncState }) => {
      if (documentId === handle.documentId && covers(syncState)) {
        repo.synchronizer.off("sync-state", listener)
        resolve()
      }
    }
    repo.synchronizer.on("sync-state", listener)
  })
}

function applyPatch(doc, patch) {
  const { path, value } = patch
  if (!Array.isArray(path) || path.length === 0) {
    throw new Error(`a patch needs a non-empty "path": ${JSON.stringify(patch)}`)
  }
  let target = doc
  for (const key of path.slice(0, -1)) {
    if (target[key] === undefined || target[key] === null) {
      target[key] = typeof key === "number" ? [] : {}
    }
    target = target[key]
  }
  target[path[path.length - 1]] = value
}

async function main(argv) {
  const [command, url, ...rest] = argv
  if (!command || !url) {
    return fail(EXIT_ERROR, usage)
  }
  switch (command) {
    case "read": {
      const [docId] = rest
      if (!docId) return fail(EXIT_ERROR, usage)
      const repo = await connect(url)
      const handle = await find(repo, docId)
      process.stdout.write(`${JSON.stringify(handle.doc())}\n`)
      return 0
    }
    case "write": {
      const [docId, patchText] = rest
      if (!docId || !patchText) return fail(EXIT_ERROR, usage)
      const parsed = parseJson(patchText, "the patch")
      const patches = Array.isArray(parsed) ? parsed : [parsed]
      const repo = await connect(url)
      const handle = await find(repo, docId)
      const before = handle.heads()
      handle.change(doc => {
        for (const patch of patches) applyPatch(doc, patch)
      })
      // A patch that changes nothing leaves the heads the server just sent us.
      const unchanged =
        handle.heads().length === before.length &&
        handle.heads().every(head => before.includes(head))
      if (!unchanged) await serverHas(repo, handle)
      return 0
    }
    case "create": {
      const [jsonText] = rest
      if (!jsonText) return fail(EXIT_ERROR, usage)
      const initial = parseJson(jsonText, "the document")
      const repo = await connect(url)
      const handle = repo.create(initial)
      await serverHas(repo, handle)
      process.stdout.write(`${handle.documentId}\n`)
      return 0
    }
    default:
      return fail(EXIT_ERROR, usage)
  }
}

// Explicit exit: the adapter's reconnect timers would keep the process alive.
main(process.argv.slice(2)).then(
  code => process.exit(code),
  error => fail(EXIT_ERROR, `error: ${error?.message ?? error}`),
)

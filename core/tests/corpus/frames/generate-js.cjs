// Writes the `ok-js-*.cbor` frames of this folder with cbor-x, configured exactly as the JS
// automerge-repo configures it (`helpers/cbor.ts`: `new Encoder({ tagUint8Array: false,
// useRecords: false })`), from message objects shaped like the ones automerge-repo 2.x
// sends. They pin down what a real JS peer puts on the wire: floats or integers for
// numbers, `undefined` for absent optional values, key order.
//
// Run: npm i cbor-x@1.6.8 in some folder, then
//   NODE_PATH=<that folder>/node_modules node generate-js.cjs
const fs = require("fs")
const path = require("path")
const { Encoder } = require("cbor-x")

const encoder = new Encoder({ tagUint8Array: false, useRecords: false })
const DOC = "4NMNnkMhL8jXrdJ9jamS58PAVdXu"
// The start of an automerge v1 sync message.
const DATA = new Uint8Array([0x42, 0x00, 0x00, 0x01])

const frames = {
  "ok-js-join": {
    type: "join",
    senderId: "peer-x1y2z3",
    peerMetadata: { storageId: "0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d", isEphemeral: false },
    supportedProtocolVersions: ["1"],
  },
  // A tab without storage: JS leaves storageId undefined rather than absent.
  "ok-js-join-ephemeral-without-storage": {
    type: "join",
    senderId: "peer-tab",
    peerMetadata: { storageId: undefined, isEphemeral: true },
    supportedProtocolVersions: ["1"],
  },
  "ok-js-sync": {
    type: "sync",
    senderId: "peer-x1y2z3",
    targetId: "storage-server-relay",
    documentId: DOC,
    data: DATA,
  },
  "ok-js-ephemeral": {
    type: "ephemeral",
    senderId: "peer-x1y2z3",
    targetId: "storage-server-relay",
    count: 17,
    sessionId: "9f2c1a",
    documentId: DOC,
    data: DATA,
  },
  "ok-js-remote-heads-changed": {
    type: "remote-heads-changed",
    senderId: "storage-server-relay",
    targetId: "peer-x1y2z3",
    documentId: DOC,
    newHeads: {
      "0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d": {
        // bs58check of the change hash 00 01 02 ... 1f.
        heads: ["16qJFWMMHFy3xDdLmvUeyc2S6FrWRhJP51HsvDYdz9d1FsYG"],
        // Date.now() is an integer; a timestamp derived by arithmetic may not be.
        timestamp: 1700000000123.5 - 0.5,
      },
    },
  },
}

for (const [name, message] of Object.entries(frames)) {
  fs.writeFileSync(path.join(__dirname, `${name}.cbor`), encoder.encode(message))
}
console.log(`wrote ${Object.keys(frames).length} frames`)

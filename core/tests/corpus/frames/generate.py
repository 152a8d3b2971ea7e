#!/usr/bin/env python3
"""Writes the hand-made frames of this folder, replayed by `corpus_frames` in
core/tests/protocol_roundtrip.rs.

Files named `ok-*.cbor` must decode; every other `.cbor` file must be refused without a
panic. The `ok-js-*` frames, made by the real JS encoder, come from generate-js.cjs. The CBOR is written byte by byte here (no library) so that malformed frames can be
made exactly. Run it from anywhere: `python3 generate.py`; it rewrites the files next to it.
"""

import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def bs58check(payload: bytes) -> str:
    """bs58check without a version byte, as automerge-repo writes document ids."""
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


# --- a minimal CBOR writer -------------------------------------------------------------


def head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError(n)


def uint(n: int) -> bytes:
    return head(0, n)


def bstr(b: bytes) -> bytes:
    return head(2, len(b)) + b


def tstr(s: str) -> bytes:
    b = s.encode()
    return head(3, len(b)) + b


def arr(*items: bytes) -> bytes:
    return head(4, len(items)) + b"".join(items)


def cmap(*pairs) -> bytes:
    """A definite map from (key, value) pairs; a str key is written as text."""
    out = head(5, len(pairs))
    for k, v in pairs:
        out += (tstr(k) if isinstance(k, str) else k) + v
    return out


def open_map(declared: int, *pairs) -> bytes:
    """A map header claiming `declared` entries, followed by only the given pairs, so that
    the caller can append the rest by hand."""
    return head(5, declared) + cmap(*pairs)[len(head(5, len(pairs))):]


def tag(n: int, item: bytes) -> bytes:
    return head(6, n) + item


def f64(x: float) -> bytes:
    return b"\xfb" + struct.pack(">d", x)


TRUE, FALSE, NULL, UNDEFINED, BREAK = b"\xf5", b"\xf4", b"\xf6", b"\xf7", b"\xff"

# The example id of automerge-repo's docs, and its 16 bytes.
DOC = "4NMNnkMhL8jXrdJ9jamS58PAVdXu"
DOC_BYTES = bytes.fromhex("f1c29c8474c84adeb800be47627d33bf")
assert bs58check(DOC_BYTES) == DOC

SYNC_DATA = bytes([0x42, 0x00, 0x00, 0x01])  # the start of an automerge v1 sync message


def sync(doc=tstr(DOC), data=bstr(SYNC_DATA), extra=()) -> bytes:
    return cmap(
        ("type", tstr("sync")),
        ("documentId", doc),
        ("senderId", tstr("peer-a")),
        ("targetId", tstr("peer-b")),
        ("data", data),
        *extra,
    )


def ephemeral(count: bytes) -> bytes:
    return cmap(
        ("type", tstr("ephemeral")),
        ("senderId", tstr("peer-a")),
        ("targetId", tstr("peer-b")),
        ("count", count),
        ("sessionId", tstr("session-1")),
        ("documentId", tstr(DOC)),
        ("data", bstr(b"\x01\x02")),
    )


JOIN = cmap(
    ("type", tstr("join")),
    ("senderId", tstr("peer-x1y2z3")),
    ("supportedProtocolVersions", arr(tstr("1"))),
    ("peerMetadata", cmap(("storageId", tstr("0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d")),
                          ("isEphemeral", FALSE))),
)

FRAMES = {
    # --- frames that must decode ------------------------------------------------------
    "ok-join-metadata-alias": cmap(
        ("type", tstr("join")),
        ("senderId", tstr("peer-old")),
        ("supportedProtocolVersions", arr(tstr("1"))),
        ("metadata", cmap(("isEphemeral", TRUE))),
    ),
    "ok-join-without-versions": cmap(("type", tstr("join")), ("senderId", tstr("p"))),
    "ok-peer-with-caresync-extensions": cmap(
        ("type", tstr("peer")),
        ("senderId", tstr("storage-server-relay")),
        ("targetId", tstr("peer-x1y2z3")),
        ("selectedProtocolVersion", tstr("1")),
        ("peerMetadata", cmap(("storageId", tstr("relay-storage")), ("isEphemeral", FALSE),
                              ("caresync", arr(tstr("scope"), tstr("refused"))),
                              ("futureKey", cmap(("x", arr(uint(1), NULL)))))),
    ),
    "ok-sync-document-id-as-bytes": sync(doc=bstr(DOC_BYTES)),
    "ok-sync-type-last-unknown-keys": cmap(
        ("documentId", tstr(DOC)),
        (uint(7), tstr("integer key")),
        ("senderId", tstr("peer-a")),
        ("futureNested", arr(cmap(("a", arr(arr(arr(tag(1, f64(1.5))))))), UNDEFINED)),
        ("targetId", tstr("peer-b")),
        ("data", bstr(SYNC_DATA)),
        ("type", tstr("sync")),
    ),
    "ok-request-indefinite-strings": (
        b"\xbf"
        + tstr("type") + tstr("request")
        + tstr("documentId") + b"\x7f" + tstr(DOC[:9]) + tstr(DOC[9:]) + BREAK
        + tstr("senderId") + tstr("peer-a")
        + tstr("targetId") + b"\x7f" + BREAK
        + tstr("data") + b"\x5f" + bstr(SYNC_DATA[:1]) + bstr(SYNC_DATA[1:]) + BREAK
        + BREAK
    ),
    "ok-ephemeral-count-float64": ephemeral(f64(3.0)),
    "ok-caresync-scope-page-arrays": cmap(
        ("type", tstr("caresync-scope")),
        ("senderId", tstr("relay")),
        ("targetId", tstr("phone")),
        ("cursor", uint(42)),
        # Two entries: `[id, heads]`, and one from a newer relay with a third item to skip.
        ("entries", arr(arr(bstr(DOC_BYTES), arr(bstr(bytes(range(32))))),
                        arr(bstr(DOC_BYTES), arr(), cmap(("future", uint(1)))))),
        ("removed", arr(bstr(DOC_BYTES))),
        ("complete", TRUE),
    ),
    "scope-entry-array-without-heads": cmap(
        ("type", tstr("caresync-scope")),
        ("senderId", tstr("relay")),
        ("targetId", tstr("phone")),
        ("cursor", uint(42)),
        ("entries", arr(arr(bstr(DOC_BYTES)))),
        ("removed", arr()),
        ("complete", TRUE),
    ),
    # The first form of the message, still accepted.
    "ok-caresync-scope-page": cmap(
        ("type", tstr("caresync-scope")),
        ("senderId", tstr("relay")),
        ("targetId", tstr("phone")),
        ("cursor", uint(41)),
        ("entries", arr(cmap(("documentId", tstr(DOC)), ("kind", tstr("visit")),
                             ("heads", arr(bstr(bytes(range(32)))))))),
        ("removed", arr(bstr(DOC_BYTES))),
        ("complete", FALSE),
    ),
    # --- frames that must be refused --------------------------------------------------
    "empty": b"",
    "not-a-map-array": arr(tstr("type"), tstr("sync")),
    "truncated-map": JOIN[: len(JOIN) // 2],
    "trailing-byte-after-map": JOIN + b"\x00",
    "huge-length-header-data": open_map(5, ("type", tstr("sync")), ("documentId", tstr(DOC)),
                                        ("senderId", tstr("a")), ("targetId", tstr("b")))
    + tstr("data") + b"\x5b" + struct.pack(">Q", 1 << 60),
    "huge-length-header-sender-id": open_map(2, ("type", tstr("leave")))
    + tstr("senderId") + b"\x7b" + struct.pack(">Q", 1 << 60),
    "huge-count-versions-array": open_map(3, ("type", tstr("join")), ("senderId", tstr("p")))
    + tstr("supportedProtocolVersions") + b"\x9b" + struct.pack(">Q", 1 << 60),
    "huge-count-top-map": b"\xbb" + struct.pack(">Q", 1 << 60) + tstr("type") + tstr("leave"),
    "unknown-type": cmap(("type", tstr("subscribe")), ("senderId", tstr("p"))),
    "missing-type": cmap(("senderId", tstr("p"))),
    "leave-missing-sender-id": cmap(("type", tstr("leave"))),
    "sync-data-as-text": sync(data=tstr("QgAAAQ==")),
    "sync-document-id-bad-checksum": sync(doc=tstr(DOC[:-1] + "v")),
    "sync-document-id-15-bytes": sync(doc=bstr(DOC_BYTES[:15])),
    "ephemeral-count-fractional-float": ephemeral(f64(2.5)),
    "duplicate-sender-id": cmap(("type", tstr("leave")), ("senderId", tstr("a")),
                                ("senderId", tstr("b"))),
    "deep-nesting-arrays-in-unknown-key": cmap(("type", tstr("leave")), ("senderId", tstr("p")),
                                               ("x", b"\x81" * 40 + b"\x80")),
    "deep-nesting-tags-in-unknown-key": cmap(("type", tstr("leave")), ("senderId", tstr("p")),
                                             ("x", b"\xc6" * 40 + b"\x00")),
    "reserved-initial-byte-0x1c": cmap(("type", tstr("leave")), ("senderId", tstr("p")),
                                       ("x", b"\x1c")),
    "invalid-utf8-sender-id": cmap(("type", tstr("leave")),
                                   ("senderId", head(3, 2) + b"\xc3\x28")),
    "unterminated-indefinite-map": b"\xbf" + tstr("type") + tstr("leave") + tstr("senderId")
    + tstr("p"),
}


def main() -> None:
    # The `ok-js-*` frames come from generate-js.cjs and are left alone.
    for name in os.listdir(HERE):
        if name.endswith(".cbor") and not name.startswith("ok-js-"):
            os.remove(os.path.join(HERE, name))
    for name, data in FRAMES.items():
        with open(os.path.join(HERE, name + ".cbor"), "wb") as f:
            f.write(data)
    print(f"wrote {len(FRAMES)} frames")


if __name__ == "__main__":
    main()

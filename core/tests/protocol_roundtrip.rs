//! Tests of the protocol codec: round trips of every message, robustness against arbitrary
//! and damaged input, the tolerant and strict decoding rules, and a corpus of hand-made
//! frames under `tests/corpus/frames/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;

use caresync_core::protocol::{
    ARRAY_ITEMS_MAX, DecodeError, DocumentId, FRAME_BYTES_MAX, Message, NESTING_DEPTH_MAX, PeerId,
    PeerMetadata, RemoteHeads, SCOPE_ENTRIES_MAX, STRING_BYTES_MAX, ScopeEntry, StorageId,
};
use minicbor::Encoder;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Any text, including control characters and non-ASCII, kept short.
fn text() -> impl Strategy<Value = String> {
    "(?s).{0,24}"
}

fn peer_id() -> impl Strategy<Value = PeerId> {
    text().prop_map(PeerId)
}

fn storage_id() -> impl Strategy<Value = StorageId> {
    text().prop_map(StorageId)
}

fn document_id() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(DocumentId::from_bytes)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..600)
}

fn heads() -> impl Strategy<Value = Vec<[u8; 32]>> {
    vec(any::<[u8; 32]>(), 0..4)
}

fn peer_metadata() -> impl Strategy<Value = PeerMetadata> {
    (
        option::of(storage_id()),
        option::of(any::<bool>()),
        vec(text(), 0..4),
    )
        .prop_map(
            |(storage_id, is_ephemeral, caresync_extensions)| PeerMetadata {
                storage_id,
                is_ephemeral,
                caresync_extensions,
            },
        )
}

fn remote_heads() -> impl Strategy<Value = RemoteHeads> {
    (vec(text(), 0..4), any::<u64>())
        .prop_map(|(heads, timestamp)| RemoteHeads { heads, timestamp })
}

fn scope_entry() -> impl Strategy<Value = ScopeEntry> {
    (document_id(), heads(), option::of(data())).prop_map(|(document_id, heads, document)| {
        ScopeEntry {
            document_id,
            heads,
            document,
        }
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (peer_id(), vec(text(), 0..4), option::of(peer_metadata())).prop_map(
            |(sender_id, supported_protocol_versions, peer_metadata)| Message::Join {
                sender_id,
                supported_protocol_versions,
                peer_metadata,
            }
        ),
        (peer_id(), peer_id(), text(), option::of(peer_metadata())).prop_map(
            |(sender_id, target_id, selected_protocol_version, peer_metadata)| Message::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                peer_metadata,
            }
        ),
        (text(), option::of(peer_id()), option::of(peer_id())).prop_map(
            |(message, sender_id, target_id)| Message::Error {
                message,
                sender_id,
                target_id,
            }
        ),
        peer_id().prop_map(|sender_id| Message::Leave { sender_id }),
        (document_id(), peer_id(), peer_id(), data()).prop_map(
            |(document_id, sender_id, target_id, data)| Message::Request {
                document_id,
                sender_id,
                target_id,
                data,
            }
        ),
        (document_id(), peer_id(), peer_id(), data()).prop_map(
            |(document_id, sender_id, target_id, data)| Message::Sync {
                document_id,
                sender_id,
                target_id,
                data,
            }
        ),
        (document_id(), peer_id(), peer_id()).prop_map(|(document_id, sender_id, target_id)| {
            Message::DocUnavailable {
                document_id,
                sender_id,
                target_id,
            }
        }),
        (
            peer_id(),
            peer_id(),
            any::<u64>(),
            text(),
            document_id(),
            data()
        )
            .prop_map(
                |(sender_id, target_id, count, session_id, document_id, data)| {
                    Message::Ephemeral {
                        sender_id,
                        target_id,
                        count,
                        session_id,
                        document_id,
                        data,
                    }
                }
            ),
        (
            peer_id(),
            peer_id(),
            option::of(vec(storage_id(), 0..4)),
            option::of(vec(storage_id(), 0..4))
        )
            .prop_map(|(sender_id, target_id, add, remove)| {
                Message::RemoteSubscriptionChange {
                    sender_id,
                    target_id,
                    add,
                    remove,
                }
            }),
        (
            peer_id(),
            peer_id(),
            document_id(),
            btree_map(storage_id(), remote_heads(), 0..4)
        )
            .prop_map(|(sender_id, target_id, document_id, new_heads)| {
                Message::RemoteHeadsChanged {
                    sender_id,
                    target_id,
                    document_id,
                    new_heads,
                }
            }),
        (
            peer_id(),
            peer_id(),
            option::of(any::<u64>()),
            any::<bool>()
        )
            .prop_map(
                |(sender_id, target_id, since, documents)| Message::ScopeRequest {
                    sender_id,
                    target_id,
                    since,
                    documents,
                }
            ),
        (
            peer_id(),
            peer_id(),
            any::<u64>(),
            vec(scope_entry(), 0..6),
            vec(document_id(), 0..6),
            any::<bool>()
        )
            .prop_map(
                |(sender_id, target_id, cursor, entries, removed, complete)| Message::Scope {
                    sender_id,
                    target_id,
                    cursor,
                    entries,
                    removed,
                    complete,
                }
            ),
        (peer_id(), peer_id(), document_id(), text(), text(), heads()).prop_map(
            |(sender_id, target_id, document_id, code, message, heads)| Message::Refused {
                sender_id,
                target_id,
                document_id,
                code,
                message,
                heads,
            }
        ),
    ]
}

/// A damage applied to a valid frame.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::Set(i, b) if len > 0 => bytes[i % len] = b,
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
        Mutation::Remove(i) if len > 0 => {
            bytes.remove(i % len);
        }
        Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(m in message()) {
        let bytes = m.encode();
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn every_strict_prefix_is_truncated(m in message()) {
        let bytes = m.encode();
        for end in 0..bytes.len() {
            prop_assert_eq!(Message::decode(&bytes[..end]), Err(DecodeError::Truncated));
        }
    }

    #[test]
    fn appended_bytes_are_refused(m in message(), extra in vec(any::<u8>(), 1..8)) {
        let mut bytes = m.encode();
        bytes.extend_from_slice(&extra);
        prop_assert!(Message::decode(&bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }

    /// Random bytes behind a map header reach deeper into the decoder than plain noise.
    #[test]
    fn arbitrary_map_bodies_never_panic(
        header in prop_oneof![0xa0u8..=0xbb, Just(0xbfu8)],
        body in vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = vec![header];
        bytes.extend_from_slice(&body);
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn damaged_frames_never_panic(m in message(), damage in vec(mutation(), 1..6)) {
        let mut bytes = m.encode();
        for d in &damage {
            apply(&mut bytes, d);
        }
        // Either outcome is fine; what is tested is that there is an outcome. A damaged
        // frame that still decodes must encode to a frame that decodes to the same value.
        if let Ok(decoded) = Message::decode(&bytes) {
            prop_assert_eq!(Message::decode(&decoded.encode()), Ok(decoded));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hand-built frames
// ---------------------------------------------------------------------------------------

const DOC: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<Infallible>>;

/// Builds a frame with minicbor's encoder, so that tests can write what other
/// implementations might send.
fn frame(build: impl FnOnce(&mut Enc) -> EncResult) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    build(&mut e).unwrap();
    e.into_writer()
}

fn doc() -> DocumentId {
    DOC.parse().unwrap()
}

fn decode_ok(bytes: &[u8]) -> Message {
    match Message::decode(bytes) {
        Ok(m) => m,
        Err(e) => panic!("expected a message, got {e:?} from {bytes:02x?}"),
    }
}

#[test]
fn join_as_js_sends_it() {
    let bytes = frame(|e| {
        e.map(4)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-x1y2")?;
        e.str("supportedProtocolVersions")?.array(1)?.str("1")?;
        e.str("peerMetadata")?.map(2)?;
        e.str("storageId")?
            .str("0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d")?;
        e.str("isEphemeral")?.bool(false)?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bytes),
        Message::Join {
            sender_id: "peer-x1y2".into(),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: Some(PeerMetadata {
                storage_id: Some("0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d".into()),
                is_ephemeral: Some(false),
                caresync_extensions: vec![],
            }),
        }
    );
}

#[test]
fn metadata_is_an_alias_of_peer_metadata() {
    let bytes = frame(|e| {
        e.map(5)?;
        // `metadata` first and `type` last: key order must not matter either.
        e.str("metadata")?.map(1)?.str("isEphemeral")?.bool(true)?;
        e.str("senderId")?.str("server")?;
        e.str("targetId")?.str("peer-1")?;
        e.str("selectedProtocolVersion")?.str("1")?;
        e.str("type")?.str("peer")?;
        Ok(())
    });
    let Message::Peer { peer_metadata, .. } = decode_ok(&bytes) else {
        panic!("not a peer message")
    };
    assert_eq!(peer_metadata.unwrap().is_ephemeral, Some(true));
}

#[test]
fn peer_metadata_wins_over_metadata() {
    let bytes = frame(|e| {
        e.map(4)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("p")?;
        // The old name with a value of a shape that would not even parse: it is ignored.
        e.str("metadata")?.u8(7)?;
        e.str("peerMetadata")?.map(1)?.str("storageId")?.str("s1")?;
        Ok(())
    });
    let Message::Join { peer_metadata, .. } = decode_ok(&bytes) else {
        panic!("not a join")
    };
    assert_eq!(peer_metadata.unwrap().storage_id, Some("s1".into()));
}

#[test]
fn missing_versions_mean_version_1() {
    let bytes = frame(|e| {
        e.map(2)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("p")?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bytes),
        Message::Join {
            sender_id: "p".into(),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: None,
        }
    );
}

fn ephemeral_with_count(write_count: impl FnOnce(&mut Enc) -> EncResult) -> Vec<u8> {
    frame(|e| {
        e.map(7)?;
        e.str("type")?.str("ephemeral")?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("count")?;
        write_count(e)?;
        e.str("sessionId")?.str("s")?;
        e.str("documentId")?.str(DOC)?;
        e.str("data")?.bytes(&[1, 2, 3])?;
        Ok(())
    })
}

fn count_of(bytes: &[u8]) -> Result<u64, DecodeError> {
    match Message::decode(bytes)? {
        Message::Ephemeral { count, .. } => Ok(count),
        other => panic!("not ephemeral: {other:?}"),
    }
}

#[test]
fn integers_given_as_floats_are_accepted() {
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.f64(42.0).map(drop))),
        Ok(42)
    );
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.f32(7.0).map(drop))),
        Ok(7)
    );
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.f64(-0.0).map(drop))),
        Ok(0)
    );
    // 2^53, the largest integer JS counts exactly.
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e
            .f64(9_007_199_254_740_992.0)
            .map(drop))),
        Ok(1 << 53)
    );
    // A half float (0xf9), as a minimal encoder writes small numbers: 5.0.
    let bytes = ephemeral_with_count(|e| {
        e.writer_mut().extend_from_slice(&[0xf9, 0x45, 0x00]);
        Ok(())
    });
    assert_eq!(count_of(&bytes), Ok(5));
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.u64(u64::MAX).map(drop))),
        Ok(u64::MAX)
    );
}

#[test]
fn floats_that_are_not_unsigned_integers_are_refused() {
    let wrong = Err(DecodeError::WrongType { field: "count" });
    for value in [
        1.5,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        18_446_744_073_709_551_616.0,
    ] {
        assert_eq!(
            count_of(&ephemeral_with_count(|e| e.f64(value).map(drop))),
            wrong,
            "{value}"
        );
    }
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.i64(-3).map(drop))),
        wrong
    );
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.str("3").map(drop))),
        wrong
    );
}

#[test]
fn timestamp_since_and_cursor_accept_floats() {
    let bytes = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("remote-heads-changed")?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("documentId")?.str(DOC)?;
        e.str("newHeads")?.map(1)?.str("storage-1")?.map(2)?;
        e.str("timestamp")?.f64(1_700_000_000_123.0)?;
        e.str("heads")?.array(1)?.str("2Uq5x")?;
        Ok(())
    });
    let Message::RemoteHeadsChanged { new_heads, .. } = decode_ok(&bytes) else {
        panic!("not remote-heads-changed")
    };
    let expected = BTreeMap::from([(
        StorageId::from("storage-1"),
        RemoteHeads {
            heads: vec!["2Uq5x".into()],
            timestamp: 1_700_000_000_123,
        },
    )]);
    assert_eq!(new_heads, expected);

    let bytes = frame(|e| {
        e.map(4)?;
        e.str("type")?.str("caresync-scope-request")?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("since")?.f64(12.0)?;
        Ok(())
    });
    assert!(matches!(
        decode_ok(&bytes),
        Message::ScopeRequest {
            since: Some(12),
            ..
        }
    ));

    let bytes = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("caresync-scope")?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("cursor")?.f32(99.0)?;
        e.str("complete")?.bool(true)?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bytes),
        Message::Scope {
            sender_id: "a".into(),
            target_id: "b".into(),
            cursor: 99,
            entries: vec![],
            removed: vec![],
            complete: true,
        }
    );
}

fn sync_with_document_id(write_id: impl FnOnce(&mut Enc) -> EncResult) -> Vec<u8> {
    frame(|e| {
        e.map(5)?;
        e.str("type")?.str("sync")?;
        e.str("documentId")?;
        write_id(e)?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("data")?.bytes(&[0x42, 0x00])?;
        Ok(())
    })
}

#[test]
fn document_id_may_be_bytes() {
    let as_bytes = sync_with_document_id(|e| e.bytes(doc().as_bytes()).map(drop));
    let as_text = sync_with_document_id(|e| e.str(DOC).map(drop));
    assert_eq!(decode_ok(&as_bytes), decode_ok(&as_text));
    // The encoder always sends the text form, as JS does.
    assert_eq!(decode_ok(&as_bytes).encode(), as_text);
}

#[test]
fn malformed_document_ids_are_refused() {
    assert!(matches!(
        Message::decode(&sync_with_document_id(|e| e.bytes(&[0; 15]).map(drop))),
        Err(DecodeError::BadDocumentId(_))
    ));
    assert!(matches!(
        Message::decode(&sync_with_document_id(|e| e
            .str("4NMNnkMhL8jXrdJ9jamS58PAVdXv")
            .map(drop))),
        Err(DecodeError::BadDocumentId(_))
    ));
    assert_eq!(
        Message::decode(&sync_with_document_id(|e| e.u32(5).map(drop))),
        Err(DecodeError::WrongType {
            field: "documentId"
        })
    );
}

#[test]
fn unknown_keys_of_any_shape_are_skipped() {
    let bytes = frame(|e| {
        e.map(9)?;
        e.str("futureFlag")?.bool(true)?;
        e.str("type")?.str("leave")?;
        // Nested containers of every kind, indefinite ones included.
        e.str("futureNested")?.map(2)?;
        e.str("a")?.array(3)?.u8(1)?.f64(2.5)?.begin_map()?;
        e.str("deep")?
            .begin_array()?
            .null()?
            .undefined()?
            .end()?
            .end()?;
        e.str("b")?.tag(minicbor::data::Tag::new(1))?.i64(-5)?;
        e.u32(17)?.str("integer key")?;
        e.bytes(&[1, 2])?.str("byte-string key")?;
        e.str("senderId")?.str("p")?;
        e.str("data")?
            .str("leave has no data, so its shape does not matter")?;
        e.str("documentId")?.u8(0)?;
        e.str("indefinite")?
            .begin_str()?
            .str("ab")?
            .str("cd")?
            .end()?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bytes),
        Message::Leave {
            sender_id: "p".into()
        }
    );
}

#[test]
fn indefinite_strings_and_tagged_bytes_are_accepted() {
    let bytes = frame(|e| {
        e.begin_map()?;
        e.str("type")?.str("request")?;
        e.str("documentId")?
            .begin_str()?
            .str(&DOC[..10])?
            .str(&DOC[10..])?
            .end()?;
        e.str("senderId")?.begin_str()?.end()?;
        e.str("targetId")?.str("t")?;
        e.str("data")?
            .begin_bytes()?
            .bytes(&[0x42])?
            .bytes(&[])?
            .bytes(&[1, 2])?
            .end()?;
        e.end()?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bytes),
        Message::Request {
            document_id: doc(),
            sender_id: "".into(),
            target_id: "t".into(),
            data: vec![0x42, 1, 2],
        }
    );

    let tagged = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("sync")?;
        e.str("documentId")?.str(DOC)?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("data")?
            .tag(minicbor::data::Tag::new(64))?
            .bytes(&[9, 9])?;
        Ok(())
    });
    let Message::Sync { data, .. } = decode_ok(&tagged) else {
        panic!("not sync")
    };
    assert_eq!(data, vec![9, 9]);

    // Any other tag on bytes (here 2, a bignum) is not a byte array.
    let bignum = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("sync")?;
        e.str("documentId")?.str(DOC)?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("data")?
            .tag(minicbor::data::Tag::new(2))?
            .bytes(&[9, 9])?;
        Ok(())
    });
    assert_eq!(
        Message::decode(&bignum),
        Err(DecodeError::WrongType { field: "data" })
    );
}

#[test]
fn null_optional_fields_are_absent() {
    let bytes = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("error")?;
        e.str("message")?.str("boom")?;
        e.str("senderId")?.null()?;
        e.str("targetId")?.undefined()?;
        e.str("peerMetadata")?.null()?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bytes),
        Message::Error {
            message: "boom".into(),
            sender_id: None,
            target_id: None,
        }
    );
    // A required field given as null is of the wrong type.
    let bytes = frame(|e| {
        e.map(2)?;
        e.str("type")?.str("leave")?;
        e.str("senderId")?.null()?;
        Ok(())
    });
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::WrongType { field: "senderId" })
    );
}

#[test]
fn encoding_sends_peer_metadata_and_only_present_fields() {
    let m = Message::Join {
        sender_id: "p".into(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: Some(true),
            caresync_extensions: vec!["scope".into()],
        }),
    };
    let expected = frame(|e| {
        e.map(4)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("p")?;
        e.str("supportedProtocolVersions")?.array(1)?.str("1")?;
        e.str("peerMetadata")?.map(2)?;
        e.str("isEphemeral")?.bool(true)?;
        e.str("caresync")?.array(1)?.str("scope")?;
        Ok(())
    });
    assert_eq!(m.encode(), expected);

    let m = Message::Error {
        message: "no".into(),
        sender_id: None,
        target_id: None,
    };
    assert_eq!(
        m.encode(),
        frame(|e| {
            e.map(2)?
                .str("type")?
                .str("error")?
                .str("message")?
                .str("no")?;
            Ok(())
        })
    );

    // Counts go out as unsigned integers, data as a plain byte string, ids as text.
    let m = Message::Ephemeral {
        sender_id: "a".into(),
        target_id: "b".into(),
        count: 3,
        session_id: "s".into(),
        document_id: doc(),
        data: vec![1, 2, 3],
    };
    assert_eq!(m.encode(), ephemeral_with_count(|e| e.u8(3).map(drop)));
}

#[test]
fn large_numbers_go_out_as_js_numbers() {
    let with_count = |count| Message::Ephemeral {
        sender_id: "a".into(),
        target_id: "b".into(),
        count,
        session_id: "s".into(),
        document_id: doc(),
        data: vec![1, 2, 3],
    };
    // Up to u32::MAX: an unsigned integer.
    assert_eq!(
        with_count(u64::from(u32::MAX)).encode(),
        ephemeral_with_count(|e| e.u32(u32::MAX).map(drop))
    );
    // A millisecond timestamp: a float64, as JS sends it, since cbor-x would turn a 64-bit
    // integer into a BigInt.
    assert_eq!(
        with_count(1_700_000_000_123).encode(),
        ephemeral_with_count(|e| e.f64(1_700_000_000_123.0).map(drop))
    );
    assert_eq!(
        with_count((1 << 53) - 1).encode(),
        ephemeral_with_count(|e| e.f64(9_007_199_254_740_991.0).map(drop))
    );
    // Beyond what a JS number holds exactly: an unsigned integer again, so nothing is lost.
    assert_eq!(
        with_count(1 << 53).encode(),
        ephemeral_with_count(|e| e.u64(1 << 53).map(drop))
    );
    for count in [
        0,
        1,
        u64::from(u32::MAX) + 1,
        (1 << 53) - 1,
        1 << 53,
        u64::MAX,
    ] {
        let m = with_count(count);
        assert_eq!(Message::decode(&m.encode()), Ok(m));
    }
}

#[test]
fn extension_messages_use_documented_keys() {
    let m = Message::Refused {
        sender_id: "relay".into(),
        target_id: "phone".into(),
        document_id: doc(),
        code: "forbidden".into(),
        message: "visit 4NMN… may not be changed by this account".into(),
        heads: vec![[0xab; 32]],
    };
    let expected = frame(|e| {
        e.map(7)?;
        e.str("type")?.str("caresync-refused")?;
        e.str("senderId")?.str("relay")?;
        e.str("targetId")?.str("phone")?;
        e.str("documentId")?.str(DOC)?;
        e.str("code")?.str("forbidden")?;
        e.str("message")?
            .str("visit 4NMN… may not be changed by this account")?;
        e.str("heads")?.array(1)?.bytes(&[0xab; 32])?;
        Ok(())
    });
    assert_eq!(m.encode(), expected);

    let m = Message::Scope {
        sender_id: "relay".into(),
        target_id: "phone".into(),
        cursor: 5,
        entries: vec![ScopeEntry {
            document_id: doc(),
            heads: vec![[0xcd; 32]],
            document: None,
        }],
        removed: vec![doc()],
        complete: false,
    };
    let expected = frame(|e| {
        e.map(7)?;
        e.str("type")?.str("caresync-scope")?;
        e.str("senderId")?.str("relay")?;
        e.str("targetId")?.str("phone")?;
        e.str("cursor")?.u8(5)?;
        e.str("entries")?.array(1)?.array(2)?;
        e.bytes(doc().as_bytes())?;
        e.array(1)?.bytes(&[0xcd; 32])?;
        e.str("removed")?.array(1)?.bytes(doc().as_bytes())?;
        e.str("complete")?.bool(false)?;
        Ok(())
    });
    assert_eq!(m.encode(), expected);
    // A reconnect lists every document of the scope; one entry with one head is 53 bytes.
    let one_entry = m.encode().len();
    let two_entries = Message::Scope {
        sender_id: "relay".into(),
        target_id: "phone".into(),
        cursor: 5,
        entries: vec![
            ScopeEntry {
                document_id: doc(),
                heads: vec![[0xcd; 32]],
                document: None,
            };
            2
        ],
        removed: vec![doc()],
        complete: false,
    }
    .encode()
    .len();
    assert_eq!(two_entries - one_entry, 53);
}

#[test]
fn strict_errors_are_typed() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (vec![], DecodeError::Truncated),
        (frame(|e| e.array(0).map(drop)), DecodeError::NotAMap),
        (frame(|e| e.str("join").map(drop)), DecodeError::NotAMap),
        (
            frame(|e| e.map(1)?.str("senderId")?.str("p").map(drop)),
            DecodeError::MissingField("type"),
        ),
        (
            frame(|e| e.map(1)?.str("type")?.u8(1).map(drop)),
            DecodeError::WrongType { field: "type" },
        ),
        (
            frame(|e| e.map(1)?.str("type")?.str("gossip").map(drop)),
            DecodeError::UnknownType("gossip".into()),
        ),
        (
            frame(|e| {
                e.map(3)?.str("type")?.str("leave")?;
                e.str("senderId")?.str("a")?.str("senderId")?.str("b")?;
                Ok(())
            }),
            DecodeError::DuplicateField("senderId"),
        ),
        (
            {
                let mut b = frame(|e| {
                    e.map(2)?
                        .str("type")?
                        .str("leave")?
                        .str("senderId")?
                        .str("a")
                        .map(drop)
                });
                b.push(0x00);
                b
            },
            DecodeError::TrailingBytes,
        ),
        (
            frame(|e| {
                e.map(2)?.str("type")?.str("join")?;
                e.str("senderId")?.array(0)?;
                Ok(())
            }),
            DecodeError::WrongType { field: "senderId" },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(Message::decode(&bytes), Err(want), "{bytes:02x?}");
    }
}

#[test]
fn length_headers_are_checked_before_reading() {
    // `data` claims 2^60 bytes; the frame holds 0.
    let mut bytes = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("sync")?;
        e.str("documentId")?.str(DOC)?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("data")?;
        Ok(())
    });
    bytes.extend_from_slice(&[0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    // The first pass meets the header while skipping and finds the input too short.
    assert!(matches!(
        Message::decode(&bytes),
        Err(DecodeError::Truncated | DecodeError::TooLarge { .. })
    ));

    // A text field longer than STRING_BYTES_MAX is refused even when it is all there.
    let long = "x".repeat(STRING_BYTES_MAX + 1);
    let bytes = frame(|e| {
        e.map(2)?
            .str("type")?
            .str("leave")?
            .str("senderId")?
            .str(&long)
            .map(drop)
    });
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooLarge { field: "senderId" })
    );

    // An array header claiming more than the limit.
    let bytes = frame(|e| {
        e.map(2)?.str("type")?.str("join")?;
        e.str("supportedProtocolVersions")?.array(u64::MAX)?;
        Ok(())
    });
    assert!(Message::decode(&bytes).is_err());
    let versions = vec!["1"; ARRAY_ITEMS_MAX + 1];
    let bytes = frame(|e| {
        e.map(3)?
            .str("type")?
            .str("join")?
            .str("senderId")?
            .str("p")?;
        e.str("supportedProtocolVersions")?
            .array(versions.len() as u64)?;
        for v in &versions {
            e.str(v)?;
        }
        Ok(())
    });
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooLarge {
            field: "supportedProtocolVersions"
        })
    );

    // Scope pages have their own limit.
    let bytes = frame(|e| {
        e.map(6)?.str("type")?.str("caresync-scope")?;
        e.str("senderId")?.str("a")?.str("targetId")?.str("b")?;
        e.str("cursor")?.u8(0)?.str("complete")?.bool(true)?;
        e.str("removed")?.array(SCOPE_ENTRIES_MAX as u64 + 1)?;
        for _ in 0..=SCOPE_ENTRIES_MAX {
            e.str(DOC)?;
        }
        Ok(())
    });
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooLarge { field: "removed" })
    );

    // The frame itself.
    let mut bytes = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("sync")?;
        e.str("documentId")?.str(DOC)?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("data")?.bytes(&vec![0; FRAME_BYTES_MAX])?;
        Ok(())
    });
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooLarge { field: "frame" })
    );
    // Just under the limit it decodes.
    let excess = bytes.len() - FRAME_BYTES_MAX;
    bytes = frame(|e| {
        e.map(5)?;
        e.str("type")?.str("sync")?;
        e.str("documentId")?.str(DOC)?;
        e.str("senderId")?.str("a")?;
        e.str("targetId")?.str("b")?;
        e.str("data")?.bytes(&vec![0; FRAME_BYTES_MAX - excess])?;
        Ok(())
    });
    assert_eq!(bytes.len(), FRAME_BYTES_MAX);
    assert!(Message::decode(&bytes).is_ok());
}

/// A `leave` with an unknown key whose value nests `depth` arrays.
fn leave_with_nesting(depth: usize) -> Vec<u8> {
    let mut bytes = frame(|e| {
        e.map(3)?
            .str("type")?
            .str("leave")?
            .str("senderId")?
            .str("p")?
            .str("x")
            .map(drop)
    });
    bytes.extend(std::iter::repeat_n(0x81, depth - 1));
    bytes.push(0x80);
    bytes
}

#[test]
fn nesting_is_limited() {
    // The frame's map is level 1, so NESTING_DEPTH_MAX - 1 arrays inside it are allowed.
    assert!(Message::decode(&leave_with_nesting(NESTING_DEPTH_MAX - 1)).is_ok());
    assert_eq!(
        Message::decode(&leave_with_nesting(NESTING_DEPTH_MAX)),
        Err(DecodeError::TooDeep)
    );
    // Very deep input is refused, not a stack overflow.
    assert_eq!(
        Message::decode(&leave_with_nesting(100_000)),
        Err(DecodeError::TooDeep)
    );
    // Tags count as nesting too.
    let mut bytes = frame(|e| {
        e.map(3)?
            .str("type")?
            .str("leave")?
            .str("senderId")?
            .str("p")?
            .str("x")
            .map(drop)
    });
    bytes.extend(std::iter::repeat_n(0xc6, 100_000));
    bytes.push(0x00);
    assert_eq!(Message::decode(&bytes), Err(DecodeError::TooDeep));
}

// ---------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------

type ErrorCheck = fn(&DecodeError) -> bool;

/// The error a malformed corpus frame must produce, judged by its name, so that a frame
/// refused for the wrong reason (say, truncated instead of too deep) is noticed.
fn expected_error(name: &str) -> Option<ErrorCheck> {
    let table: [(&str, ErrorCheck); 12] = [
        ("empty", |e| *e == DecodeError::Truncated),
        ("truncated-", |e| *e == DecodeError::Truncated),
        ("unterminated-", |e| *e == DecodeError::Truncated),
        ("not-a-map", |e| *e == DecodeError::NotAMap),
        ("trailing-", |e| *e == DecodeError::TrailingBytes),
        ("huge-", |e| matches!(e, DecodeError::TooLarge { .. })),
        ("deep-nesting-", |e| *e == DecodeError::TooDeep),
        ("duplicate-", |e| {
            matches!(e, DecodeError::DuplicateField(_))
        }),
        ("unknown-type", |e| matches!(e, DecodeError::UnknownType(_))),
        ("missing-", |e| matches!(e, DecodeError::MissingField(_))),
        ("leave-missing-", |e| {
            matches!(e, DecodeError::MissingField(_))
        }),
        ("sync-document-id-", |e| {
            matches!(e, DecodeError::BadDocumentId(_))
        }),
    ];
    table
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, check)| *check)
}

/// Replays every `*.cbor` file of `tests/corpus/frames/`: files named `ok-*` must decode
/// (and survive a re-encoding), all others must be refused, with the error their name
/// promises where [`expected_error`] knows it. `generate.py` there made them.
#[test]
fn corpus_frames() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/frames");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cbor"))
        .collect();
    files.sort();
    let oks = files
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ok-"))
        .count();
    assert!(oks >= 5, "too few ok-* frames in {dir:?}");
    assert!(
        files.len() - oks >= 15,
        "too few malformed frames in {dir:?}"
    );

    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let result = Message::decode(&bytes);
        match (name.starts_with("ok-"), result) {
            (true, Ok(m)) => {
                if Message::decode(&m.encode()).as_ref() != Ok(&m) {
                    failures.push(format!("{name}: does not survive re-encoding"));
                }
            }
            (true, Err(e)) => failures.push(format!("{name}: expected Ok, got {e:?}")),
            (false, Ok(m)) => failures.push(format!("{name}: expected Err, got {m:?}")),
            (false, Err(e)) => {
                if let Some(check) = expected_error(&name)
                    && !check(&e)
                {
                    failures.push(format!("{name}: refused, but with {e:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

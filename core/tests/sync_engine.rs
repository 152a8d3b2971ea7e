//! Behaviour of the sync engine that a user of the relay or of a phone would notice,
//! each shown on the simulated world of `support/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use automerge::sync::Message as SyncMessage;
use automerge::{Automerge, ROOT, ReadDoc};
use caresync_core::protocol::{DocumentId, Message, PeerId, PeerMetadata};
use caresync_core::sync::{
    AuditEvent, CloseReason, ConnectionId, Effect, Notification, RefusalCode, Repo, RepoConfig,
    Role, StorageOp,
};
use support::{VillagePolicy, World, actor};

fn quiet(world: &mut World) {
    world.heal().unwrap();
}

fn relay_heads(world: &World, document: &DocumentId) -> Vec<automerge::ChangeHash> {
    world
        .relay
        .store
        .materialise(document)
        .unwrap()
        .unwrap()
        .get_heads()
}

fn device_doc(world: &World, device: usize, document: &DocumentId) -> Automerge {
    world.devices[device]
        .node
        .store
        .materialise(document)
        .unwrap()
        .unwrap()
}

#[test]
fn relay_never_advertises_heads_before_the_write_is_committed() {
    let mut world = World::new(1);
    world.connect(0);
    quiet(&mut world);
    let document = world.create_document(0);
    // Run everything except the relay's writes, recording what the relay tells the device.
    let mut advertised = Vec::new();
    let mut pending_hash = None;
    for _ in 0..100 {
        world.complete_device_storage(0);
        if matches!(
            world.relay.pending.front(),
            Some((_, StorageOp::Load { .. }))
        ) {
            world.complete_relay_storage();
        }
        pending_hash = pending_hash.or_else(|| {
            world.relay.pending.iter().find_map(|(_, op)| match op {
                StorageOp::PutChanges { changes, .. } => changes.first().map(|c| c.hash),
                _ => None,
            })
        });
        let connections: Vec<ConnectionId> = world.links.keys().copied().collect();
        for connection in connections {
            world.deliver(connection, true);
            if let Some(frame) = world.links[&connection].to_device.front()
                && let Ok(Message::Sync { data, .. }) = Message::decode(frame)
            {
                advertised.extend(SyncMessage::decode(&data).unwrap().heads);
            }
            world.deliver(connection, false);
        }
    }
    let pending_hash = pending_hash.expect("the relay asked to store the device's change");
    assert!(
        !advertised.contains(&pending_hash),
        "heads advertised before the write was committed"
    );
    quiet(&mut world);
    assert_eq!(relay_heads(&world, &document), vec![pending_hash]);
}

#[test]
fn another_village_cannot_tell_a_record_exists() {
    let mut world = World::new(2);
    // Devices 0 and 1 belong to different villages.
    world.connect(0);
    world.connect(1);
    let document = world.create_document(0);
    quiet(&mut world);
    assert!(world.relay.store.documents.contains_key(&document));

    let missing = DocumentId::random_from([9; 16]);
    world.devices[1].node.repo.open(world.now_ms, document);
    world.devices[1].node.repo.open(world.now_ms, missing);
    world.pump();
    quiet(&mut world);
    let unavailable: Vec<DocumentId> = world.devices[1]
        .notifications
        .iter()
        .filter_map(|n| match n {
            Notification::DocumentUnavailable { document } => Some(*document),
            _ => None,
        })
        .collect();
    assert!(unavailable.contains(&document));
    assert!(unavailable.contains(&missing));
    assert!(
        world.devices[1]
            .node
            .store
            .materialise(&document)
            .unwrap()
            .is_none()
    );
    assert!(world.relay_audit.iter().any(|event| matches!(
        event,
        AuditEvent::ReadDenied { document: denied, .. } if *denied == document
    )));
}

#[test]
fn a_refused_change_is_kept_for_the_user_and_the_record_returns_to_the_relay_state() {
    let mut world = World::new(3);
    world.connect(0);
    let document = world.create_document(0);
    quiet(&mut world);
    assert!(world.edit_document(0, document, "note", 1, true));
    quiet(&mut world);

    let refused = world.devices[0]
        .notifications
        .iter()
        .find_map(|n| match n {
            Notification::ChangesRefused {
                document: refused,
                code,
                refused_copy,
                ..
            } if *refused == document => Some((code.clone(), refused_copy.clone())),
            _ => None,
        })
        .expect("the device was told about the refusal");
    assert_eq!(refused.0, RefusalCode::Invalid.as_str());
    let copy = Automerge::load(&refused.1).unwrap();
    assert!(copy.get(ROOT, "forbidden").unwrap().is_some());
    let device = device_doc(&world, 0, &document);
    assert!(device.get(ROOT, "forbidden").unwrap().is_none());
    assert_eq!(device.get_heads(), relay_heads(&world, &document));

    // Later edits sync again.
    assert!(world.edit_document(0, document, "note", 2, false));
    quiet(&mut world);
    let relay = world.relay.store.materialise(&document).unwrap().unwrap();
    assert!(relay.get(ROOT, "note").unwrap().is_some());
    assert!(relay.get(ROOT, "forbidden").unwrap().is_none());
    assert_eq!(
        device_doc(&world, 0, &document).get_heads(),
        relay.get_heads()
    );
}

#[test]
fn a_plain_automerge_repo_peer_gets_an_error_and_the_socket_closes_on_refusal() {
    let mut world = World::new(4);
    world.make_plain(0);
    world.connect(0);
    let document = world.create_document(0);
    quiet(&mut world);
    assert!(world.relay.store.documents.contains_key(&document));
    world.edit_document(0, document, "note", 1, true);
    for _ in 0..100 {
        world.complete_device_storage(0);
        world.complete_relay_storage();
        let connections: Vec<ConnectionId> = world.links.keys().copied().collect();
        for connection in connections {
            world.deliver(connection, true);
            world.deliver(connection, false);
        }
    }
    assert!(
        world
            .relay_closes
            .iter()
            .any(|reason| matches!(reason, CloseReason::Refused(message) if message.contains(&document.to_string())))
    );
    let relay = world.relay.store.materialise(&document).unwrap().unwrap();
    assert!(relay.get(ROOT, "forbidden").unwrap().is_none());
}

#[test]
fn a_reader_is_served_but_its_changes_are_refused() {
    let mut world = World::new(5);
    // Device 2 is in the same village as device 0 but may only read.
    world.devices[2].principal = format!("reader:{}", world.devices[0].village);
    world.connect(0);
    world.connect(2);
    let document = world.create_document(0);
    quiet(&mut world);
    let reader_copy = device_doc(&world, 2, &document);
    assert_eq!(reader_copy.get_heads(), relay_heads(&world, &document));

    assert!(world.edit_document(2, document, "note", 7, false));
    quiet(&mut world);
    let relay = world.relay.store.materialise(&document).unwrap().unwrap();
    assert!(relay.get(ROOT, "note").unwrap().is_none());
    assert!(world.devices[2].notifications.iter().any(|n| matches!(
        n,
        Notification::ChangesRefused { code, .. } if code == RefusalCode::ReadOnly.as_str()
    )));
}

/// The relay stored device 0's `guardian` and device 2's `school`, and both devices hold
/// exactly what it stored.
fn assert_both_edits_stored_everywhere(world: &World, document: &DocumentId) {
    let relay = world.relay.store.materialise(document).unwrap().unwrap();
    assert!(relay.get(ROOT, "guardian").unwrap().is_some());
    assert!(relay.get(ROOT, "school").unwrap().is_some());
    for device in [0, 2] {
        assert_eq!(
            device_doc(world, device, document).get_heads(),
            relay.get_heads()
        );
    }
}

#[test]
fn concurrent_offline_edits_of_one_record_merge_everywhere() {
    let mut world = World::new(6);
    // Devices 0 and 2 share a village.
    world.connect(0);
    world.connect(2);
    let document = world.create_document(0);
    quiet(&mut world);
    let connections: Vec<ConnectionId> = world.links.keys().copied().collect();
    for connection in connections {
        world.disconnect(connection);
    }
    assert!(world.edit_document(0, document, "guardian", 1, false));
    assert!(world.edit_document(2, document, "school", 2, false));
    quiet(&mut world);
    assert_both_edits_stored_everywhere(&world, &document);
}

/// Changes from peers join the relay's document only when all of it is durable, so a
/// change that arrives while another is being written waits for that write.
#[test]
fn a_change_that_arrives_during_a_write_waits_for_it_and_both_are_stored() {
    let mut world = World::new(7);
    // Devices 0 and 2 share a village.
    world.connect(0);
    world.connect(2);
    let document = world.create_document(0);
    quiet(&mut world);
    let relay_writes = |world: &World| {
        world
            .relay
            .pending
            .iter()
            .filter(|(_, op)| matches!(op, StorageOp::PutChanges { .. }))
            .count()
    };
    let connections: Vec<ConnectionId> = world.links.keys().copied().collect();
    let on_device = |world: &World, device: usize| {
        connections
            .iter()
            .copied()
            .find(|connection| world.links[connection].device == device)
            .unwrap()
    };
    let (first, second) = (on_device(&world, 0), on_device(&world, 2));

    assert!(world.edit_document(0, document, "guardian", 1, false));
    while world.complete_device_storage(0) {}
    while world.deliver(first, true) {}
    assert_eq!(relay_writes(&world), 1, "the first change is being written");
    assert!(world.edit_document(2, document, "school", 2, false));
    while world.complete_device_storage(2) {}
    let heard_before = world.links[&first].to_device.len() + world.links[&second].to_device.len();
    while world.deliver(second, true) {}
    let latest = world.relay.repo.latest(&document).unwrap();
    assert!(latest.get(ROOT, "school").unwrap().is_none());
    assert_eq!(relay_writes(&world), 1, "the second change waits");
    assert_eq!(
        world.links[&first].to_device.len() + world.links[&second].to_device.len(),
        heard_before,
        "nothing is sent while a write is pending"
    );

    // The first write lands; the waiting change is taken up and written next.
    while relay_writes(&world) > 0 {
        world.complete_relay_storage();
    }
    quiet(&mut world);
    assert_both_edits_stored_everywhere(&world, &document);
}

#[test]
fn compaction_keeps_every_change_and_deletes_only_covered_rows() {
    let mut world = World::new(7);
    world.connect(0);
    let document = world.create_document(0);
    quiet(&mut world);
    for value in 0..100 {
        assert!(world.edit_document(0, document, "visits", value, false));
        quiet(&mut world);
    }
    let stored = &world.relay.store.documents[&document];
    assert!(stored.snapshot.is_some(), "no compaction happened");
    assert!(stored.rows.len() < 64);
    let relay = world.relay.store.materialise(&document).unwrap().unwrap();
    assert_eq!(relay.get_changes(&[]).len(), 101);
    assert_eq!(
        device_doc(&world, 0, &document).get_heads(),
        relay.get_heads()
    );
}

#[test]
fn reconnecting_with_nothing_new_costs_two_round_trips() {
    let mut world = World::new(8);
    world.connect(0);
    for _ in 0..20 {
        world.create_document(0);
    }
    quiet(&mut world);
    let connection = *world.links.keys().next().unwrap();
    world.disconnect(connection);
    world.connect(0);
    let connection = *world.links.keys().next().unwrap();
    let mut round_trips = 0;
    let mut bytes = 0;
    loop {
        let to_relay: Vec<Vec<u8>> = world.links[&connection].to_relay.iter().cloned().collect();
        if to_relay.is_empty() {
            break;
        }
        round_trips += 1;
        bytes += to_relay.iter().map(Vec::len).sum::<usize>();
        while world.deliver(connection, true) {}
        while world.complete_relay_storage() {}
        bytes += world.links[&connection]
            .to_device
            .iter()
            .map(Vec::len)
            .sum::<usize>();
        while world.deliver(connection, false) {}
        while world.complete_device_storage(0) {}
    }
    assert!(round_trips <= 2, "{round_trips} round trips");
    assert!(bytes < 1_024, "{bytes} bytes");
}

/// Runs one device's connection until the device has nothing more to send; returns the
/// types of the frames it sent.
fn settle_one(world: &mut World, device: usize) -> Vec<&'static str> {
    let connection = world.devices[device].connection.unwrap();
    let mut sent = Vec::new();
    loop {
        let to_relay: Vec<Vec<u8>> = world.links[&connection].to_relay.iter().cloned().collect();
        if to_relay.is_empty() {
            return sent;
        }
        for frame in &to_relay {
            sent.push(Message::decode(frame).unwrap().type_name());
        }
        while world.deliver(connection, true) {}
        while world.complete_relay_storage() {}
        while world.deliver(connection, false) {}
        while world.complete_device_storage(device) {}
    }
}

#[test]
fn a_first_sync_takes_the_documents_with_the_listing_without_an_exchange_per_document() {
    let mut world = World::new(9);
    world.connect(0);
    let documents: Vec<DocumentId> = (0..20).map(|_| world.create_document(0)).collect();
    settle_one(&mut world, 0);

    // Device 2 is a new phone of device 0's village.
    world.connect(2);
    assert_eq!(
        settle_one(&mut world, 2),
        ["join", "caresync-scope-request"]
    );
    for document in &documents {
        assert_eq!(
            device_doc(&world, 2, document).get_heads(),
            relay_heads(&world, document)
        );
    }
    let phone = &world.devices[2].node;
    assert!(phone.repo.unsynced_documents().is_empty());
    assert!(
        phone.store.scope_cursor.is_some(),
        "the listing was not recorded as complete"
    );

    // The copies are ordinary documents afterwards: edits flow both ways.
    world.edit_document(0, documents[0], "note", 7, false);
    assert!(world.edit_document(2, documents[1], "note", 8, false));
    quiet(&mut world);
    let note = |doc: &Automerge| {
        doc.get(ROOT, "note")
            .unwrap()
            .map(|(value, _)| value.as_u64())
    };
    assert_eq!(note(&device_doc(&world, 2, &documents[0])), Some(Some(7)));
    assert_eq!(note(&device_doc(&world, 0, &documents[1])), Some(Some(8)));
}

fn relay_alone() -> Repo<VillagePolicy> {
    Repo::new(
        RepoConfig::new(PeerId::from("relay"), Role::Relay, actor(0, 0)),
        VillagePolicy,
    )
}

fn join(versions: &[&str]) -> Vec<u8> {
    Message::Join {
        sender_id: PeerId::from("peer-x"),
        supported_protocol_versions: versions.iter().map(|v| (*v).to_owned()).collect(),
        peer_metadata: Some(PeerMetadata::default()),
    }
    .encode()
}

#[test]
fn handshake_with_an_unknown_version_gets_an_error_and_a_close() {
    let mut relay = relay_alone();
    relay.connection_opened(0, ConnectionId(1), "v".to_owned());
    relay.frame_received(1, ConnectionId(1), &join(&["2"]));
    let effects = relay.take_effects();
    assert!(matches!(
        effects.first(),
        Some(Effect::Send { frame, .. }) if matches!(Message::decode(frame), Ok(Message::Error { .. }))
    ));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Close {
            reason: CloseReason::UnsupportedVersion,
            ..
        }
    )));
}

#[test]
fn the_relay_answers_join_with_peer_and_version_one() {
    let mut relay = relay_alone();
    relay.connection_opened(0, ConnectionId(1), "v".to_owned());
    relay.frame_received(1, ConnectionId(1), &join(&["1"]));
    let effects = relay.take_effects();
    let Some(Effect::Send { frame, .. }) = effects.first() else {
        panic!("no answer to join: {effects:?}");
    };
    let Ok(Message::Peer {
        selected_protocol_version,
        target_id,
        ..
    }) = Message::decode(frame)
    else {
        panic!("not a peer message");
    };
    assert_eq!(selected_protocol_version, "1");
    assert_eq!(target_id, PeerId::from("peer-x"));
}

#[test]
fn sync_before_join_and_garbage_frames_close_the_connection() {
    let mut relay = relay_alone();
    relay.connection_opened(0, ConnectionId(1), "v".to_owned());
    let sync = Message::Sync {
        document_id: DocumentId::random_from([1; 16]),
        sender_id: PeerId::from("peer-x"),
        target_id: PeerId::from("relay"),
        data: vec![0x42, 0, 0, 0, 0],
    };
    relay.frame_received(1, ConnectionId(1), &sync.encode());
    assert!(relay.take_effects().iter().any(|e| matches!(
        e,
        Effect::Close {
            reason: CloseReason::Protocol(_),
            ..
        }
    )));

    relay.connection_opened(2, ConnectionId(2), "v".to_owned());
    relay.frame_received(3, ConnectionId(2), &[0xff, 0x00, 0x13]);
    assert!(relay.take_effects().iter().any(|e| matches!(
        e,
        Effect::Close {
            reason: CloseReason::Protocol(_),
            ..
        }
    )));
    assert_eq!(relay.connection_count(), 0);
}

#[test]
fn a_connection_that_never_joins_is_closed_after_the_handshake_limit() {
    let mut relay = relay_alone();
    relay.connection_opened(0, ConnectionId(1), "v".to_owned());
    relay.tick(1_000);
    assert!(relay.take_effects().is_empty());
    relay.tick(caresync_core::sync::limits::HANDSHAKE_MS_MAX + 1);
    assert!(relay.take_effects().iter().any(|e| matches!(
        e,
        Effect::Close {
            reason: CloseReason::HandshakeTimeout,
            ..
        }
    )));
}

#[test]
fn ephemeral_messages_reach_only_peers_that_may_read_the_document() {
    let mut world = World::new(9);
    // Devices 0 and 2 share a village; device 1 is elsewhere.
    for device in 0..3 {
        world.connect(device);
    }
    let document = world.create_document(0);
    quiet(&mut world);
    // Device 1 asks for the record too; it must get nothing.
    world.devices[1].node.repo.open(world.now_ms, document);
    world.pump();
    quiet(&mut world);

    let from = world.devices[0].connection.unwrap();
    let presence = Message::Ephemeral {
        sender_id: PeerId::from("device-0"),
        target_id: PeerId::from("relay"),
        count: 1,
        session_id: "session-a".to_owned(),
        document_id: document,
        data: b"cursor at note".to_vec(),
    };
    for _ in 0..2 {
        // The second copy is a repeat (same session, same count) and must be dropped.
        world
            .links
            .get_mut(&from)
            .unwrap()
            .to_relay
            .push_back(presence.encode());
        world.deliver(from, true);
    }
    let received = |world: &World, device: usize| -> usize {
        let connection = world.devices[device].connection.unwrap();
        world.links[&connection]
            .to_device
            .iter()
            .filter(|frame| matches!(Message::decode(frame), Ok(Message::Ephemeral { .. })))
            .count()
    };
    assert_eq!(received(&world, 2), 1);
    assert_eq!(received(&world, 1), 0);
    assert_eq!(received(&world, 0), 0);
}

#[test]
fn idle_documents_leave_the_relay_memory_and_come_back_when_used() {
    let mut world = World::new(10);
    world.connect(0);
    world.connect(2);
    let documents: Vec<DocumentId> = (0..5).map(|_| world.create_document(0)).collect();
    quiet(&mut world);
    assert_eq!(world.relay.repo.loaded_documents(), documents.len());

    world.now_ms += caresync_core::sync::limits::DOCUMENT_IDLE_MS_MAX + 1;
    world.relay.repo.tick(world.now_ms);
    world.pump();
    assert_eq!(world.relay.repo.loaded_documents(), 0);

    // A connected device edits one of them: the relay loads it again and passes the
    // change on to the other device that had it.
    assert!(world.edit_document(0, documents[0], "note", 5, false));
    quiet(&mut world);
    assert_eq!(world.relay.repo.loaded_documents(), 1);
    let relay = world
        .relay
        .store
        .materialise(&documents[0])
        .unwrap()
        .unwrap();
    assert!(relay.get(ROOT, "note").unwrap().is_some());
    assert_eq!(
        device_doc(&world, 2, &documents[0]).get_heads(),
        relay.get_heads()
    );
}

/// Found by the real-relay test `offline_edits_on_two_phones_merge...`: a phone whose
/// document the relay already held at the phone's heads learned so from the scope listing,
/// but kept it only in memory. The relay had nothing more to send, so storage never learned
/// it and the record's "synced" badge stayed off (and would after every restart).
#[test]
fn a_scope_listing_that_shows_the_relay_holds_our_heads_is_stored_as_acknowledged() {
    use caresync_core::protocol::{EXTENSION_SCOPE, ScopeEntry};
    use caresync_core::sync::{IndexEntry, TrustingPolicy};

    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    automerge::transaction::Transactable::put(&mut tx, ROOT, "kind", "child").unwrap();
    tx.commit();
    let heads = doc.get_heads();
    let document = DocumentId::random_from([7; 16]);

    let config = RepoConfig::new(PeerId::from("phone"), Role::Device, actor(1, 1));
    let mut phone = Repo::new(config, TrustingPolicy);
    phone.restore_index([(
        document,
        IndexEntry {
            local_heads: heads.clone(),
            relay_heads: Vec::new(),
        },
    )]);
    let connection = ConnectionId(1);
    phone.connection_opened(0, connection, ());
    let peer = Message::Peer {
        sender_id: PeerId::from("relay"),
        target_id: PeerId::from("phone"),
        selected_protocol_version: "1".to_owned(),
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: Some(false),
            caresync_extensions: vec![EXTENSION_SCOPE.to_owned()],
        }),
    };
    phone.frame_received(1, connection, &peer.encode());
    phone.take_effects();
    let listing = Message::Scope {
        sender_id: PeerId::from("relay"),
        target_id: PeerId::from("phone"),
        cursor: 5,
        entries: vec![ScopeEntry {
            document_id: document,
            heads: heads.iter().map(|head| head.0).collect(),
            document: None,
        }],
        removed: Vec::new(),
        complete: true,
    };
    phone.frame_received(2, connection, &listing.encode());
    let stored_ack = phone.take_effects().into_iter().any(|effect| {
        matches!(
            effect,
            Effect::Storage { op: StorageOp::PutRelayHeads { document: d, heads: h }, .. }
                if d == document && h == heads
        )
    });
    assert!(stored_ack, "the relay's acknowledgement was not stored");
}

/// Carries out `repo`'s effects until it is quiet: storage through `store` (or into `held`
/// when given, to be completed later), frames returned in order.
fn settle(
    repo: &mut Repo<caresync_core::sync::TrustingPolicy>,
    store: &mut caresync_core::sync::MemoryStore,
    mut held: Option<&mut Vec<(caresync_core::sync::StorageOpId, StorageOp)>>,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    loop {
        let effects = repo.take_effects();
        if effects.is_empty() {
            return frames;
        }
        for effect in effects {
            match effect {
                Effect::Send { frame, .. } => frames.push(frame),
                Effect::Storage { id, op } => match held.as_deref_mut() {
                    Some(held) => held.push((id, op)),
                    None => {
                        let done = store.execute(id, &op);
                        repo.storage_completed(10, done);
                    }
                },
                _ => {}
            }
        }
    }
}

fn sync_heads(frame: &[u8]) -> Option<Vec<automerge::ChangeHash>> {
    match Message::decode(frame).ok()? {
        Message::Sync { data, .. } | Message::Request { data, .. } => {
            Some(SyncMessage::decode(&data).ok()?.heads)
        }
        _ => None,
    }
}

/// Found by the real-relay test of two phones merging offline edits: the phone's change
/// was still being committed on the relay when the phone's next message arrived, already
/// claiming the merged heads (it had applied the relay's changes meanwhile). Handling both
/// after the commit, automerge saw nothing left to say, so the relay never told the phone
/// it had stored its change and the phone's record stayed "not synced" for ever.
#[test]
fn a_relay_confirms_a_change_even_when_the_peer_already_claims_the_merged_heads() {
    use caresync_core::sync::{MemoryStore, TrustingPolicy};

    let connection = ConnectionId(1);
    let mut relay = Repo::new(
        RepoConfig::new(PeerId::from("relay"), Role::Relay, actor(2, 0)),
        TrustingPolicy,
    );
    let mut relay_store = MemoryStore::default();
    let mut phone = Repo::new(
        RepoConfig::new(PeerId::from("phone"), Role::Device, actor(2, 1)),
        TrustingPolicy,
    );
    let mut phone_store = MemoryStore::default();
    let put = |key: &'static str| {
        move |tx: &mut automerge::transaction::Transaction<'_>| {
            automerge::transaction::Transactable::put(tx, ROOT, key, 1).map(|_| ())
        }
    };
    let deliver = |repo: &mut Repo<TrustingPolicy>, frames: Vec<Vec<u8>>| {
        for frame in frames {
            repo.frame_received(10, connection, &frame);
        }
    };

    // The phone creates a document and the relay stores it.
    let document = DocumentId::random_from([9; 16]);
    relay.connection_opened(0, connection, ());
    phone.connection_opened(0, connection, ());
    phone.create(0, document).unwrap();
    phone.change(0, document, put("base")).unwrap();
    for _ in 0..10 {
        let to_relay = settle(&mut phone, &mut phone_store, None);
        deliver(&mut relay, to_relay);
        let to_phone = settle(&mut relay, &mut relay_store, None);
        deliver(&mut phone, to_phone);
    }
    assert!(
        relay.document(&document).is_some(),
        "the relay did not store the document"
    );

    // Concurrently: the phone edits, and so does the relay (a reviewer's action).
    phone.change(10, document, put("phone")).unwrap();
    let phone_change = settle(&mut phone, &mut phone_store, None);
    relay.change(10, document, put("review")).unwrap();
    let relay_change = settle(&mut relay, &mut relay_store, None);

    // The phone's change reaches the relay, whose write of it is slow.
    let mut held = Vec::new();
    deliver(&mut relay, phone_change);
    let more = settle(&mut relay, &mut relay_store, Some(&mut held));
    assert!(
        !held.is_empty(),
        "the relay did not start writing the phone's change"
    );
    // Meanwhile the phone applies the relay's change and says it has both.
    deliver(&mut phone, relay_change);
    deliver(&mut phone, more);
    let merged = phone.latest(&document).unwrap().get_heads();
    assert_eq!(merged.len(), 2);
    let claims = settle(&mut phone, &mut phone_store, None);
    assert!(
        claims
            .iter()
            .any(|f| sync_heads(f).as_ref() == Some(&merged))
    );
    deliver(&mut relay, claims);
    let _ = settle(&mut relay, &mut relay_store, Some(&mut held));

    // The write commits: the relay must now say it holds the merged heads.
    for (id, op) in held.drain(..) {
        let done = relay_store.execute(id, &op);
        relay.storage_completed(20, done);
    }
    let answer = settle(&mut relay, &mut relay_store, None);
    assert!(
        answer
            .iter()
            .any(|f| sync_heads(f).as_ref() == Some(&merged)),
        "the relay never told the phone it stored its change"
    );
}

/// A v1 sync message: heads, need, one `have` per bloom filter given (each without a last
/// sync) and the changes.
fn sync_data(
    heads: &[[u8; 32]],
    need: &[[u8; 32]],
    haves: &[Vec<u8>],
    changes: &[Vec<u8>],
) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut out = vec![0x42];
    for list in [heads, need] {
        leb(&mut out, list.len() as u64);
        list.iter().for_each(|hash| out.extend(hash));
    }
    leb(&mut out, haves.len() as u64);
    for bloom in haves {
        leb(&mut out, 0);
        leb(&mut out, bloom.len() as u64);
        out.extend(bloom);
    }
    leb(&mut out, changes.len() as u64);
    for change in changes {
        leb(&mut out, change.len() as u64);
        out.extend(change);
    }
    out
}

/// Found by the malformed-input corpus (`tests/corpus/malformed/bloom-*` and
/// `replay-10-unsorted-heads-and-need`, replayed by `tests/tests/relay_malformed.rs`):
/// automerge trusts a peer's bloom filters and the order of its hashes. A filter with
/// entries but no bits made it divide by zero, one with 2^27 probes made it allocate
/// 512 MiB for every change it checked, and unsorted heads tripped its encoder's assertion
/// when it answered; the relay panicked or swelled. Such filters are now a protocol
/// violation, and hash lists are sorted before automerge sees them.
#[test]
fn unusable_bloom_filters_are_refused_and_unsorted_hashes_are_sorted() {
    use caresync_core::sync::{MemoryStore, TrustingPolicy};

    let mut relay = Repo::new(
        RepoConfig::new(PeerId::from("relay"), Role::Relay, actor(3, 0)),
        TrustingPolicy,
    );
    let mut store = MemoryStore::default();
    let document = DocumentId::random_from([3; 16]);
    let mut doc = automerge::AutoCommit::new().with_actor(actor(3, 1));
    for n in 0..2_i64 {
        automerge::transaction::Transactable::put(&mut doc, ROOT, "n", n).unwrap();
        doc.commit();
    }
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&[])
        .iter()
        .map(|change| change.raw_bytes().to_vec())
        .collect();
    let mut hashes: Vec<[u8; 32]> = doc.get_changes(&[]).iter().map(|c| c.hash().0).collect();
    let frame = |data: Vec<u8>| {
        Message::Sync {
            document_id: document,
            sender_id: PeerId::from("peer-x"),
            target_id: PeerId::from("relay"),
            data,
        }
        .encode()
    };
    let open = |relay: &mut Repo<TrustingPolicy>, store: &mut MemoryStore, id: u64| {
        relay.connection_opened(0, ConnectionId(id), ());
        relay.frame_received(0, ConnectionId(id), &join(&["1"]));
        settle(relay, store, None);
    };

    // The relay stores the document, so that it has changes to check against filters.
    open(&mut relay, &mut store, 1);
    relay.frame_received(
        1,
        ConnectionId(1),
        &frame(sync_data(&hashes[1..], &[], &[vec![]], &changes)),
    );
    settle(&mut relay, &mut store, None);
    assert_eq!(
        relay.document(&document).map(|d| d.get_changes(&[]).len()),
        Some(2)
    );

    let bloom = |entries: u8, bits_per_entry: u8, probes: &[u8]| {
        let mut bytes = vec![entries, bits_per_entry];
        bytes.extend(probes);
        bytes.resize(
            bytes.len() + usize::from(entries * bits_per_entry).div_ceil(8),
            0,
        );
        bytes
    };
    let unusable: [(&str, Vec<Vec<u8>>); 3] = [
        ("no bits", vec![bloom(1, 0, &[7])]),
        ("2^27 probes", vec![bloom(1, 10, &[0x80, 0x80, 0x80, 0x40])]),
        ("nine filters", vec![bloom(1, 10, &[7]); 9]),
    ];
    for (index, (what, haves)) in unusable.into_iter().enumerate() {
        let connection = ConnectionId(10 + index as u64);
        open(&mut relay, &mut store, connection.0);
        relay.frame_received(
            2,
            connection,
            &frame(sync_data(&hashes[..1], &[], &haves, &[])),
        );
        let effects = relay.take_effects();
        assert!(
            effects.iter().any(|e| matches!(
                e,
                Effect::Close { reason: CloseReason::Protocol(detail), .. } if detail.contains("bloom")
            )),
            "{what}: {effects:?}"
        );
    }

    // Heads and need in descending order are answered like sorted ones.
    hashes.sort();
    hashes.reverse();
    open(&mut relay, &mut store, 20);
    relay.frame_received(
        3,
        ConnectionId(20),
        &frame(sync_data(&hashes, &hashes, &[vec![]], &[])),
    );
    let effects = relay.take_effects();
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Close { .. })),
        "{effects:?}"
    );
}

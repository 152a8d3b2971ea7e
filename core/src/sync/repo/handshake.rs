//! Connections opening and closing, frames arriving, and the `join`/`peer` handshake.

use super::*;

impl<P: Policy> Repo<P> {
    /// A transport connection opened. On a device this sends `join` at once.
    pub fn connection_opened(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        principal: P::Principal,
    ) {
        let handshake = match self.config.role {
            Role::Relay => Handshake::AwaitingJoin { opened_ms: now_ms },
            Role::Device => Handshake::AwaitingPeer { opened_ms: now_ms },
        };
        self.connections.insert(
            connection,
            Connection {
                principal,
                handshake,
                remote: None,
                extensions: BTreeSet::new(),
                documents: BTreeSet::new(),
                ephemeral_seen: BTreeMap::new(),
                refused_before: false,
                scope: None,
            },
        );
        if self.config.role == Role::Device {
            let join = Message::Join {
                sender_id: self.config.peer_id.clone(),
                supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
                peer_metadata: Some(self.our_metadata(self.config.extensions.clone())),
            };
            self.send(connection, &join);
        }
    }

    /// The transport closed (or the driver gave up on it). Its sync states are dropped.
    pub fn connection_closed(&mut self, connection: ConnectionId) {
        let Some(closed) = self.connections.remove(&connection) else {
            return;
        };
        // The driver may give a later connection this id.
        self.access_generation += 1;
        for document in closed.documents {
            if let Some(state) = self.documents.get_mut(&document) {
                state.peers.remove(&connection);
                state.orphans.remove(&connection);
            }
            if let Some(parked) = self.parked.get_mut(&document) {
                parked.remove(&connection);
                if parked.is_empty() {
                    self.parked.remove(&document);
                }
            }
        }
    }

    /// One binary frame arrived on `connection`.
    pub fn frame_received(&mut self, now_ms: u64, connection: ConnectionId, frame: &[u8]) {
        let message = match Message::decode(frame) {
            Ok(message) => message,
            Err(error) => {
                self.protocol_violation(connection, format!("undecodable frame: {error}"));
                return;
            }
        };
        self.message_received(now_ms, connection, message);
    }

    pub(super) fn message_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        message: Message,
    ) {
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        let ready = matches!(conn.handshake, Handshake::Ready);
        match message {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                peer_metadata,
            } if self.config.role == Role::Relay && !ready => {
                self.join_received(
                    connection,
                    sender_id,
                    &supported_protocol_versions,
                    peer_metadata,
                );
            }
            Message::Peer {
                sender_id,
                selected_protocol_version,
                peer_metadata,
                ..
            } if self.config.role == Role::Device && !ready => {
                self.peer_received(
                    now_ms,
                    connection,
                    sender_id,
                    &selected_protocol_version,
                    peer_metadata,
                );
            }
            Message::Error { message, .. } => {
                self.close(
                    connection,
                    CloseReason::Protocol(format!("peer error: {message}")),
                );
            }
            _ if !ready => {
                self.protocol_violation(connection, "message before handshake".to_owned());
            }
            Message::Leave { .. } => {
                self.close(connection, CloseReason::Protocol("peer left".to_owned()));
            }
            Message::Request {
                document_id, data, ..
            } => self.sync_received(now_ms, connection, document_id, data, true),
            Message::Sync {
                document_id, data, ..
            } => self.sync_received(now_ms, connection, document_id, data, false),
            Message::DocUnavailable { document_id, .. } => {
                self.unavailable_received(connection, document_id);
            }
            Message::Ephemeral {
                sender_id,
                count,
                session_id,
                document_id,
                data,
                ..
            } => {
                self.ephemeral_received(connection, sender_id, count, session_id, document_id, data)
            }
            Message::ScopeRequest {
                since, documents, ..
            } if self.config.role == Role::Relay => {
                self.scope_requested(connection, since, documents);
            }
            Message::Scope {
                cursor,
                entries,
                removed,
                complete,
                ..
            } if self.config.role == Role::Device => {
                self.scope_received(now_ms, connection, cursor, entries, removed, complete);
            }
            Message::Refused {
                document_id,
                code,
                message,
                heads,
                ..
            } if self.config.role == Role::Device => {
                self.refused_received(now_ms, connection, document_id, code, message, &heads);
            }
            // Heads gossip between storage peers is not used by caresync: a device learns
            // the relay's heads through the scope extension instead.
            Message::RemoteSubscriptionChange { .. } | Message::RemoteHeadsChanged { .. } => {}
            other => {
                self.protocol_violation(
                    connection,
                    format!("unexpected message {}", other.type_name()),
                );
            }
        }
    }

    pub(super) fn our_metadata(&self, extensions: Vec<String>) -> PeerMetadata {
        PeerMetadata {
            storage_id: self.config.storage_id.clone(),
            is_ephemeral: Some(false),
            caresync_extensions: extensions,
        }
    }

    pub(super) fn join_received(
        &mut self,
        connection: ConnectionId,
        sender_id: PeerId,
        versions: &[String],
        metadata: Option<PeerMetadata>,
    ) {
        if !versions.iter().any(|version| version == PROTOCOL_VERSION) {
            self.send(
                connection,
                &Message::Error {
                    message: format!(
                        "unsupported protocol version: this relay speaks \"{PROTOCOL_VERSION}\""
                    ),
                    sender_id: Some(self.config.peer_id.clone()),
                    target_id: Some(sender_id),
                },
            );
            self.close(connection, CloseReason::UnsupportedVersion);
            return;
        }
        // A second join with the same sender id replaces the older socket, as in JS.
        let older: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(id, conn)| **id != connection && conn.remote.as_ref() == Some(&sender_id))
            .map(|(id, _)| *id)
            .collect();
        for id in older {
            self.close(
                id,
                CloseReason::Protocol("replaced by a newer connection".to_owned()),
            );
            self.connection_closed(id);
        }
        let offered: BTreeSet<String> = metadata
            .map(|metadata| metadata.caresync_extensions.into_iter().collect())
            .unwrap_or_default();
        let agreed: Vec<String> = self
            .config
            .extensions
            .iter()
            .filter(|extension| offered.contains(*extension))
            .cloned()
            .collect();
        let peer = Message::Peer {
            sender_id: self.config.peer_id.clone(),
            target_id: sender_id.clone(),
            selected_protocol_version: PROTOCOL_VERSION.to_owned(),
            peer_metadata: Some(self.our_metadata(agreed.clone())),
        };
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.handshake = Handshake::Ready;
            conn.remote = Some(sender_id);
            conn.extensions = agreed.into_iter().collect();
        }
        self.send(connection, &peer);
        self.notify(Notification::PeerReady { connection });
    }

    pub(super) fn peer_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        sender_id: PeerId,
        selected_version: &str,
        metadata: Option<PeerMetadata>,
    ) {
        if selected_version != PROTOCOL_VERSION {
            self.close(connection, CloseReason::UnsupportedVersion);
            return;
        }
        let agreed: BTreeSet<String> = metadata
            .map(|metadata| metadata.caresync_extensions.into_iter().collect())
            .unwrap_or_default();
        let speaks_scope = agreed.contains(EXTENSION_SCOPE);
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.handshake = Handshake::Ready;
            conn.remote = Some(sender_id.clone());
            conn.extensions = agreed;
        }
        self.notify(Notification::PeerReady { connection });
        if speaks_scope {
            self.send(
                connection,
                &Message::ScopeRequest {
                    sender_id: self.config.peer_id.clone(),
                    target_id: sender_id,
                    since: self.scope_cursor,
                    // A device that holds nothing and never completed a listing takes the
                    // documents with the listing: its first sync.
                    documents: self.scope_cursor.is_none()
                        && self.index.is_empty()
                        && self.documents.is_empty(),
                },
            );
        }
        // Push what the relay has not acknowledged, and keep open documents in sync.
        let mut to_sync: BTreeSet<DocumentId> = self.unsynced_documents().into_iter().collect();
        if !speaks_scope {
            to_sync.extend(self.documents.keys().copied());
        }
        for document in to_sync {
            self.begin_sync(now_ms, connection, document);
        }
    }
}

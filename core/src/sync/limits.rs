//! Bounds on everything a peer or a driver can make the engine hold. Each is a named
//! constant with its unit last, so a reviewer can find and argue about every limit in one
//! place.

/// Documents one connection may have open sync states for at once. A village holds about
/// 2,200 documents; a township reviewer sees about 38 villages' records, so the bound leaves
/// room for a reviewer's full first sync.
pub const DOCUMENTS_PER_CONNECTION_MAX: usize = 200_000;

/// Messages waiting for one document to load or for its earlier writes to commit. A peer
/// that sends more than this for one document before the relay catches up is cut off.
pub const QUEUED_MESSAGES_PER_DOCUMENT_MAX: usize = 1_024;

/// Changes one sync message may carry. A v2 message carrying a whole document counts the
/// changes of that document.
pub const CHANGES_PER_MESSAGE_MAX: usize = 10_000;

/// Bytes of the automerge sync message inside one `sync` or `request`.
pub const SYNC_DATA_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Documents kept in memory once idle; beyond this the least recently used idle ones are
/// evicted. Memory therefore does not grow with the number of documents ever touched.
pub const IDLE_DOCUMENTS_IN_MEMORY_MAX: usize = 4_096;

/// A document unused for this long is evicted at the next tick even under the bound.
pub const DOCUMENT_IDLE_MS_MAX: u64 = 5 * 60 * 1_000;

/// Stored change rows after which a document's rows are compacted into one snapshot.
pub const CHANGE_ROWS_BEFORE_COMPACTION_MAX: usize = 64;

/// Time a connection may take between opening and a completed handshake.
pub const HANDSHAKE_MS_MAX: u64 = 10_000;

/// Entries of one `caresync-scope` page.
pub const SCOPE_ENTRIES_PER_PAGE_MAX: usize = 2_000;

/// Distinct ephemeral sessions remembered per connection for duplicate suppression.
pub const EPHEMERAL_SESSIONS_PER_CONNECTION_MAX: usize = 256;

/// Changes kept per connection and document while their dependencies are missing.
pub const ORPHAN_CHANGES_PER_CONNECTION_MAX: usize = 1_024;

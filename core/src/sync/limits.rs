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
/// Bytes of documents in one `caresync-scope` page: a page is closed once its documents
/// reach this, so a first sync arrives in frames far below the 8 MiB frame limit and a
/// phone can store one page while the next is on its way.
pub const SCOPE_PAGE_DOCUMENT_BYTES_MAX: usize = 512 * 1024;
/// The largest document a listing carries; a larger one is synced the usual way, by the
/// automerge sync protocol, where a change at a time is enough.
pub const SCOPE_DOCUMENT_BYTES_MAX: usize = 64 * 1024;
/// Bytes of documents one listing carries in all. The relay holds a listing in memory
/// until it is sent; documents past this are listed without their bytes and synced the
/// usual way. 32 MiB covers a township reviewer's ~40,000 small records.
pub const SCOPE_LISTING_DOCUMENT_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Distinct ephemeral sessions remembered per connection for duplicate suppression.
pub const EPHEMERAL_SESSIONS_PER_CONNECTION_MAX: usize = 256;

/// Changes kept per connection and document while their dependencies are missing.
pub const ORPHAN_CHANGES_PER_CONNECTION_MAX: usize = 1_024;

/// Bytes the deflated parts of one sync message (compressed changes, deflated columns of
/// documents and bundles) may inflate to. automerge inflates before it checks anything, so
/// this is counted first. Four times the largest message is more than real automerge
/// columns reach, and far less than a deflate bomb (about 1000:1); automerge's own
/// inflating of what passes briefly takes about three times this.
pub const INFLATED_BYTES_PER_MESSAGE_MAX: usize = 4 * SYNC_DATA_BYTES_MAX;

/// Bytes of the changes kept per connection and document while their dependencies are
/// missing (with [`ORPHAN_CHANGES_PER_CONNECTION_MAX`]): they are read again with every
/// message of the peer, so a peer repeating a large orphan must not make them pile up.
pub const ORPHAN_BYTES_PER_CONNECTION_MAX: usize = SYNC_DATA_BYTES_MAX;

/// Bloom filters (`have` entries) one sync message may carry. automerge sends one; each is
/// consulted for every change we might send, so their number multiplies the work.
pub const SYNC_HAVES_PER_MESSAGE_MAX: usize = 8;

/// Probes per entry of a peer's bloom filter. automerge uses 7. automerge computes (and
/// allocates) the probes for every change it checks against the filter, so a filter
/// asking for billions would stall the engine and exhaust its memory.
pub const BLOOM_PROBES_MAX: u64 = 64;

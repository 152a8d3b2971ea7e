//! The `#[wasm_bindgen]` layer: JS values in and out, nothing else. Every decision is in
//! [`PhoneCore`] and [`crate::json`], which native tests drive.

use caresync_core::domain::{self, Date, DocumentKind, Record, ReportRow, RiskLevel};
use caresync_core::protocol::DocumentId;
use caresync_core::sync::ConnectionId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::{JsValue, wasm_bindgen};

use crate::error::PhoneError;
use crate::json::{CompletionJson, IndexEntryJson, document_from_text, error_to_json};
use crate::phone::{PhoneCore, validation_errors};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** A record as its automerge document holds it (docs/schema.md), e.g. `{kind: "child", ...}`. */
export type CaresyncRecord = { kind: "child" | "elder" | "home-visit" | "service-log"; [key: string]: unknown };
/** One broken rule: the field path, a stable code, messages in Chinese and English. */
export interface FieldError { field: string; code: string; zh: string; en: string }
/** What the relay records about a document; store it as given, return it on load. */
export interface DocumentMeta { kind: string; schemaVersion: number; owner: string; worker: string | null; subject: string | null }
export interface StoredChange { hash: string; bytes: Uint8Array }
export interface IndexEntry { document: string; localHeads: string[]; relayHeads: string[] }
export type StorageOp =
  | { type: "load"; document: string }
  | { type: "put-changes"; document: string; meta: DocumentMeta | null; changes: StoredChange[]; heads: string[] }
  | { type: "compact"; document: string; snapshot: Uint8Array; covered: string[] }
  | { type: "replace"; document: string; snapshot: Uint8Array; heads: string[] }
  | { type: "list-scope"; connection: number; since: number | null }
  | { type: "save-scope-cursor"; cursor: number }
  | { type: "put-relay-heads"; document: string; heads: string[] };
export type Notification =
  | { type: "peer-ready"; connection: number }
  | { type: "document-changed"; document: string; heads: string[] }
  | { type: "local-change-saved"; document: string; heads: string[] }
  | { type: "peer-heads"; connection: number; document: string; heads: string[] }
  | { type: "document-unavailable"; document: string }
  | { type: "changes-refused"; document: string; code: string; message: string; refusedCopy: Uint8Array; refusedRecord: CaresyncRecord | null }
  | { type: "storage-failed"; document: string | null; reason: string }
  | { type: "document-error"; document: string; detail: string }
  | { type: "scope-synced"; connection: number };
export type Effect =
  | { type: "send"; connection: number; frame: Uint8Array }
  | { type: "close"; connection: number; code: string; reason: string }
  | { type: "storage"; id: number; op: StorageOp }
  | { type: "notify"; notification: Notification }
  | { type: "audit"; event: string; connection: number; document: string | null; code: string | null; message: string | null };
export type StorageCompletion =
  | { id: number; type: "loaded"; document: string; stored: null | { snapshot: Uint8Array | null; changes: StoredChange[]; meta: DocumentMeta | null } }
  | { id: number; type: "written" }
  | { id: number; type: "failed"; reason: string };
/** The list-screen row of a record. */
export interface ReportRow {
  document: string; kind: string; orgUnit: string; subject: string | null; worker: string | null;
  title: string; day: string | null; startedAt: number | null; endedAt: number | null;
  minutes: number | null; recordStatus: string | null; reviewState: string | null;
  reviewComment: string | null; nextVisit: string | null; risk: string | null; active: boolean;
  needsOrServices: string; actions: string; concerns: string;
}
/** Where a child stands in the visit schedule; dates are `YYYY-MM-DD`. */
export interface VisitDue { child: string; lastVisit: string | null; lastVisitDay: string | null; due: string | null }
"#;

/// A JS value of `value`: plain objects (not `Map`s), `null` for `None`, `Uint8Array` for
/// bytes.
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    // `json_compatible` would also turn bytes into plain arrays; IndexedDB and WebSocket
    // want `Uint8Array`s, so that one setting is switched back.
    let serializer =
        serde_wasm_bindgen::Serializer::json_compatible().serialize_bytes_as_arrays(false);
    value.serialize(&serializer).map_err(|error| {
        js_error(PhoneError::BadInput {
            what: "a value for JavaScript",
            detail: error.to_string(),
        })
    })
}

fn from_js<T: DeserializeOwned>(value: JsValue, what: &'static str) -> Result<T, PhoneError> {
    serde_wasm_bindgen::from_value(value).map_err(|error| PhoneError::BadInput {
        what,
        detail: error.to_string(),
    })
}

/// Reads a record, choosing its type by `kind` here rather than through `Record`'s own
/// `Deserialize`: that one buffers every field before it reads the tag, and the buffering
/// code is a sizeable part of the download.
fn record_from_js(value: JsValue) -> Result<Record, PhoneError> {
    fn read<T: DeserializeOwned>(value: JsValue) -> Result<T, PhoneError> {
        serde_wasm_bindgen::from_value(value)
            .map_err(|error| PhoneError::unreadable_record(error.to_string()))
    }
    let kind = js_sys::Reflect::get(&value, &"kind".into())
        .ok()
        .and_then(|kind| kind.as_string());
    match kind.as_deref().and_then(DocumentKind::parse) {
        Some(DocumentKind::Child) => read(value).map(Record::Child),
        Some(DocumentKind::Elder) => read(value).map(Record::Elder),
        Some(DocumentKind::HomeVisit) => read(value).map(Record::HomeVisit),
        Some(DocumentKind::ServiceLog) => read(value).map(Record::ServiceLog),
        None => Err(PhoneError::unreadable_record(format!(
            "`kind` is {}, not one of `child`, `elder`, `home-visit`, `service-log`",
            kind.map_or_else(|| "missing".to_owned(), |kind| format!("{kind:?}"))
        ))),
    }
}

/// An `Error` with the message, a `code` and, for invalid records, `errors`.
fn js_error(error: PhoneError) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    // Setting a property on a fresh Error cannot fail; if it did, the message still says
    // what went wrong, so the results are ignored.
    let _ = js_sys::Reflect::set(&js, &"code".into(), &error.code().into());
    if let Some(errors) = error.validation_errors() {
        let errors: Vec<_> = errors.iter().map(error_to_json).collect();
        if let Ok(list) = to_js(&errors) {
            let _ = js_sys::Reflect::set(&js, &"errors".into(), &list);
        }
    }
    js.into()
}

fn document(text: &str) -> Result<DocumentId, JsValue> {
    document_from_text(text).map_err(js_error)
}

/// JavaScript's `Number.MAX_SAFE_INTEGER`: above it a number no longer holds every integer.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// JavaScript times are float milliseconds; the engine's are whole ones. `as` saturates
/// (NaN and negatives become 0), which only makes a bad clock look like the epoch.
fn millis(now_ms: f64) -> u64 {
    now_ms as u64
}

/// Every rule the record breaks, as `[{field, code, zh, en}]`; empty when it is valid. A
/// value that is not a record at all gives one `unreadable` error.
#[wasm_bindgen(js_name = validateRecord, unchecked_return_type = "FieldError[]")]
pub fn validate_record(
    #[wasm_bindgen(unchecked_param_type = "CaresyncRecord")] record: JsValue,
) -> Result<JsValue, JsValue> {
    match record_from_js(record) {
        Ok(record) => to_js(&validation_errors(&record)),
        Err(error) => {
            let errors: Vec<_> = error
                .validation_errors()
                .unwrap_or_default()
                .iter()
                .map(error_to_json)
                .collect();
            to_js(&errors)
        }
    }
}

/// The list-screen row of `record` as document `documentId` (core's report row), for a
/// record the phone holds only as a plain object, such as the refused copy of a new record.
#[wasm_bindgen(js_name = reportRow, unchecked_return_type = "ReportRow")]
pub fn report_row(
    document_id: &str,
    #[wasm_bindgen(unchecked_param_type = "CaresyncRecord")] record: JsValue,
) -> Result<JsValue, JsValue> {
    let record = record_from_js(record).map_err(js_error)?;
    to_js(&domain::report_row(document_id, &record))
}

/// Where each child stands in the visit schedule (core's rule, the one the relay's overdue
/// report uses): for each row of `children`, in order, its latest visit among `visits` and
/// when the next one is due (`due: null` when never visited).
#[wasm_bindgen(js_name = visitsDue, unchecked_return_type = "VisitDue[]")]
pub fn visits_due(
    #[wasm_bindgen(unchecked_param_type = "ReportRow[]")] children: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ReportRow[]")] visits: JsValue,
) -> Result<JsValue, JsValue> {
    let children: Vec<ReportRow> = from_js(children, "child rows").map_err(js_error)?;
    let visits: Vec<ReportRow> = from_js(visits, "visit rows").map_err(js_error)?;
    to_js(&domain::visits_due(&children, &visits))
}

/// When the next visit is due after a visit on `visitDay` (`YYYY-MM-DD`) to a child of
/// `risk` (`'red'`, `'yellow'`, `'blue'`, `'green'` or `null`), if that visit planned no
/// date: what a new visit's form suggests.
#[wasm_bindgen(js_name = suggestedNextVisit)]
pub fn suggested_next_visit(risk: Option<String>, visit_day: &str) -> Result<String, JsValue> {
    let risk = match risk.as_deref() {
        None => None,
        Some(text) => Some(RiskLevel::parse(text).ok_or_else(|| {
            js_error(PhoneError::BadInput {
                what: "a risk level",
                detail: format!("{text:?} is not red, yellow, blue or green"),
            })
        })?),
    };
    let day = Date::parse(visit_day).ok_or_else(|| {
        js_error(PhoneError::BadInput {
            what: "a date",
            detail: format!("{visit_day:?} is not YYYY-MM-DD"),
        })
    })?;
    domain::next_visit_due(risk, day, None)
        .map(|due| due.to_string())
        .ok_or_else(|| {
            js_error(PhoneError::BadInput {
                what: "a date",
                detail: format!("{visit_day:?} is too late for a next visit"),
            })
        })
}

/// A phone's sync engine and its records. Events go in (`connectionOpened`,
/// `frameReceived`, `storageCompleted`, `tick`, record edits); after each, the page carries
/// out `takeEffects()` in order. See `docs/wasm-api.md`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Phone {
    core: PhoneCore,
}

#[wasm_bindgen]
impl Phone {
    /// `actor`: 16 random bytes, new for every `Phone` (never shared by two tabs).
    /// `scopeCursor`: the last cursor of a `save-scope-cursor` op, if any was stored.
    #[wasm_bindgen(constructor)]
    pub fn new(peer_id: &str, actor: &[u8], scope_cursor: Option<f64>) -> Result<Phone, JsValue> {
        let scope_cursor = match scope_cursor {
            None => None,
            Some(cursor)
                if cursor >= 0.0 && cursor.fract() == 0.0 && cursor <= MAX_SAFE_INTEGER =>
            {
                Some(cursor as u64)
            }
            Some(_) => {
                return Err(js_error(PhoneError::BadInput {
                    what: "the scope cursor",
                    // Not formatted with the number: float formatting code is large.
                    detail: "it is not a whole number from 0 to 2^53".to_owned(),
                }));
            }
        };
        PhoneCore::new(peer_id, actor, scope_cursor)
            .map(|core| Phone { core })
            .map_err(js_error)
    }

    /// What storage holds, once at start: `[{document, localHeads, relayHeads}]`.
    #[wasm_bindgen(js_name = restoreIndex)]
    pub fn restore_index(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "IndexEntry[]")] entries: JsValue,
    ) -> Result<(), JsValue> {
        let entries: Vec<IndexEntryJson> =
            from_js(entries, "the index entries").map_err(js_error)?;
        self.core.restore_index(&entries).map_err(js_error)
    }

    /// A socket to the relay opened; queues the `join` frame.
    #[wasm_bindgen(js_name = connectionOpened)]
    pub fn connection_opened(&mut self, now_ms: f64, connection: u32) {
        self.core
            .connection_opened(millis(now_ms), ConnectionId(u64::from(connection)));
    }

    /// One binary WebSocket message arrived.
    #[wasm_bindgen(js_name = frameReceived)]
    pub fn frame_received(&mut self, now_ms: f64, connection: u32, frame: &[u8]) {
        self.core
            .frame_received(millis(now_ms), ConnectionId(u64::from(connection)), frame);
    }

    /// The socket closed (either side).
    #[wasm_bindgen(js_name = connectionClosed)]
    pub fn connection_closed(&mut self, connection: u32) {
        self.core
            .connection_closed(ConnectionId(u64::from(connection)));
    }

    /// A storage op finished: `{id, type: 'loaded' | 'written' | 'failed', ...}`.
    #[wasm_bindgen(js_name = storageCompleted)]
    pub fn storage_completed(
        &mut self,
        now_ms: f64,
        #[wasm_bindgen(unchecked_param_type = "StorageCompletion")] completion: JsValue,
    ) -> Result<(), JsValue> {
        let completion: CompletionJson =
            from_js(completion, "the storage completion").map_err(js_error)?;
        self.core
            .storage_completed(millis(now_ms), completion)
            .map_err(js_error)
    }

    /// Time passed (call every second or so): handshake timeouts, eviction.
    pub fn tick(&mut self, now_ms: f64) {
        self.core.tick(millis(now_ms));
    }

    /// The effects queued since the last call, in the order they must be carried out.
    #[wasm_bindgen(js_name = takeEffects, unchecked_return_type = "Effect[]")]
    pub fn take_effects(&mut self) -> Result<JsValue, JsValue> {
        to_js(&self.core.take_effects())
    }

    /// Creates a document holding the record and returns its id. Throws an `Error` with
    /// `code: 'invalid'` and `errors: [{field, code, zh, en}]` if the record breaks a rule.
    #[wasm_bindgen(js_name = createRecord)]
    pub fn create_record(
        &mut self,
        now_ms: f64,
        #[wasm_bindgen(unchecked_param_type = "CaresyncRecord")] record: JsValue,
    ) -> Result<String, JsValue> {
        let record = record_from_js(record).map_err(js_error)?;
        let mut random = [0u8; DocumentId::LEN_BYTES];
        getrandom::fill(&mut random)
            .map_err(|error| js_error(PhoneError::Random(error.to_string())))?;
        self.core
            .create_record(millis(now_ms), &record, random)
            .map(|document| document.to_string())
            .map_err(js_error)
    }

    /// Saves an edited record into an open document (only what changed). Throws like
    /// `createRecord`, and with `code: 'not-open'` if the document is not loaded.
    #[wasm_bindgen(js_name = updateRecord)]
    pub fn update_record(
        &mut self,
        now_ms: f64,
        document_id: &str,
        #[wasm_bindgen(unchecked_param_type = "CaresyncRecord")] record: JsValue,
    ) -> Result<(), JsValue> {
        let document = document(document_id)?;
        let record = record_from_js(record).map_err(js_error)?;
        self.core
            .update_record(millis(now_ms), document, &record)
            .map_err(js_error)
    }

    /// Loads a document, from storage or (if it is not stored here) from the relay.
    pub fn open(&mut self, now_ms: f64, document_id: &str) -> Result<(), JsValue> {
        let document = document(document_id)?;
        self.core.open(millis(now_ms), document);
        Ok(())
    }

    /// The record as the user should see it, or `null` if the document is not in memory.
    #[wasm_bindgen(unchecked_return_type = "CaresyncRecord | null")]
    pub fn record(&self, document_id: &str) -> Result<JsValue, JsValue> {
        let record = self
            .core
            .record(&document(document_id)?)
            .map_err(js_error)?;
        to_js(&record)
    }

    /// The record's list-screen row, or `null` if the document is not in memory.
    #[wasm_bindgen(unchecked_return_type = "ReportRow | null")]
    pub fn summary(&self, document_id: &str) -> Result<JsValue, JsValue> {
        let row = self
            .core
            .summary(&document(document_id)?)
            .map_err(js_error)?;
        to_js(&row)
    }

    /// `'not-loaded' | 'loading' | 'missing' | 'ready'`.
    #[wasm_bindgen(js_name = loadState)]
    pub fn load_state(&self, document_id: &str) -> Result<String, JsValue> {
        Ok(self.core.load_state(&document(document_id)?).to_owned())
    }

    /// Documents with changes the relay has not acknowledged yet.
    #[wasm_bindgen(js_name = unsyncedDocuments)]
    pub fn unsynced_documents(&self) -> Vec<String> {
        self.core.unsynced_documents()
    }
}

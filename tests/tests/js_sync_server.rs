//! The native [`Device`] and the official JavaScript client interoperate through the
//! official JavaScript sync server: a record made in Rust is read by JS, a change made by
//! JS reaches the device (live, and after a reconnect), and the device's own change
//! reaches JS. This checks the harness and our engine against automerge-repo itself,
//! independently of our relay.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use caresync_core::domain::{Child, Gender, OrgUnitCode, Record, YearMonth};
use caresync_core::protocol::DocumentId;
use caresync_tests::Device;
use caresync_tests::js::{JsRead, JsSyncServer, js_create, js_read, js_write};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn child_name(device: &Device, document: &DocumentId) -> Option<String> {
    match device.record(document)? {
        Record::Child(child) => Some(child.name),
        _ => None,
    }
}

async fn read(url: &str, document: &DocumentId) -> serde_json::Value {
    match js_read(url, document).await.unwrap() {
        JsRead::Document(json) => json,
        JsRead::Unavailable => panic!("the JS client found {document} unavailable"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_device_and_the_javascript_client_share_a_record() {
    let server = JsSyncServer::start().unwrap();
    let url = server.ws_url();
    let device = Device::new("phone");
    device.connect(&url).await.unwrap();

    // Rust creates a child record; the JS client reads it.
    let child = Child::new(
        OrgUnitCode::new("370402001001"),
        "王小明",
        YearMonth::new(2015, 3).unwrap(),
        Gender::Male,
    );
    let document = device.create(&Record::Child(child)).unwrap();
    device
        .wait_until(WAIT, |device| device.is_synced(&document))
        .await
        .unwrap();
    let json = read(&url, &document).await;
    assert_eq!(json["kind"], "child");
    assert_eq!(json["name"], "王小明");
    assert_eq!(json["orgUnit"], "370402001001");
    assert_eq!(json["birthYearMonth"], "2015-03");

    // The JS client changes a field; the connected device receives it (the server syncs
    // the document with every peer that has synced it).
    js_write(
        &url,
        &document,
        &json!({"path": ["name"], "value": "王小红"}),
    )
    .await
    .unwrap();
    device
        .wait_until(WAIT, |device| {
            child_name(device, &document).as_deref() == Some("王小红")
        })
        .await
        .unwrap();

    // Offline: JS changes it again; after reconnecting the device asks for it and sees it.
    device.disconnect().await;
    assert!(!device.is_connected());
    js_write(
        &url,
        &document,
        &json!({"path": ["name"], "value": "王小刚"}),
    )
    .await
    .unwrap();
    assert_eq!(
        child_name(&device, &document).as_deref(),
        Some("王小红"),
        "the device keeps its copy while offline"
    );
    device.connect(&url).await.unwrap();
    device.open(&document);
    device
        .wait_until(WAIT, |device| {
            child_name(device, &document).as_deref() == Some("王小刚")
        })
        .await
        .unwrap();

    // The device's own change, made on top of the JS one, reaches the JS client.
    device
        .change(&document, |record| {
            if let Record::Child(child) = record {
                child.name = "王小强".to_owned();
            }
        })
        .await
        .unwrap();
    device
        .wait_until(WAIT, |device| device.is_synced(&document))
        .await
        .unwrap();
    assert_eq!(read(&url, &document).await["name"], "王小强");

    let traffic = device.traffic();
    assert!(traffic.frames_sent > 0 && traffic.frames_received > 0);
    assert!(traffic.bytes_sent > 0 && traffic.bytes_received > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_made_in_javascript_is_opened_by_the_device() {
    let server = JsSyncServer::start().unwrap();
    let url = server.ws_url();
    // A record as a JS app would write it: every string becomes an automerge Text object.
    let document = js_create(
        &url,
        &json!({
            "kind": "child",
            "schemaVersion": 1,
            "orgUnit": "370402001001",
            "name": "李小花",
            "birthYearMonth": "2016-09",
            "gender": "female",
            "status": "active",
        }),
    )
    .await
    .unwrap();

    let device = Device::plain("tablet");
    device.connect(&url).await.unwrap();
    device.open(&document);
    device
        .wait_until(WAIT, |device| device.record(&document).is_some())
        .await
        .unwrap();
    assert_eq!(child_name(&device, &document).as_deref(), Some("李小花"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_clients_are_told_a_missing_document_is_unavailable() {
    let server = JsSyncServer::start().unwrap();
    let url = server.ws_url();
    // One id each: once the JS sync server (automerge-repo 1.2.1) has marked a document
    // unavailable, it answers later requests for it with an empty `sync` and never says
    // `doc-unavailable` again, so a second client would wait forever.
    let missing_for_device: DocumentId = "4NMNnkMhL8jXrdJ9jamS58PAVdXu".parse().unwrap();
    let missing_for_js = DocumentId::random_from([7; 16]);

    let device = Device::new("phone");
    device.connect(&url).await.unwrap();
    device.open(&missing_for_device);
    device
        .wait_until(WAIT, |device| {
            device.unavailable().contains(&missing_for_device)
        })
        .await
        .unwrap();
    assert!(device.record(&missing_for_device).is_none());

    assert_eq!(
        js_read(&url, &missing_for_js).await.unwrap(),
        JsRead::Unavailable
    );
}

//! A home visit written by the real JavaScript library (`@automerge/automerge` 3.5.0) with
//! the example from `docs/schema.md`: every string is a `Text` object there. The bytes were
//! produced by `Automerge.save` in Node and are embedded as hex so the test needs no Node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, Value};
use caresync_core::domain::*;
use caresync_core::validation::validate;

/// `Automerge.save` of the documented example, then a reviewer's change returning it.
const JS_VISIT_HEX: &[&str] = &[
    "856f4a83d6ceb39600e7080110e927847ff3aaddd19f5860867650a6fc0196cf268ad62f86e64171e4838098961e1cb4",
    "1ab7b7dee4f67e9bea986423ef780701020302130423074003430256020e01050252115c1396011dc6012103235a340a",
    "4233563757ff01800107810102830103020002017e97012a7ef38fadd806007e00017f000207000fb20100000f0a010c",
    "0d051a1c20053f7c40414243024402450246024702480749074a7f6104627f6709687f720273027405750a7d05880105",
    "8e01078f017f970108980105a10107a70104b00105b20103b30105b4010010090000010b000001040000011b00000c7f",
    "0000017f0000017f0000017f000001060000010600000203000002080000047f00000104000001090000010400000606",
    "00000207000001040000010600000504000001020000010400000f7e000208017e760e0a017e681b03017e62211a0100",
    "0b7645cb00b57fcd00b37fcf00b17fd100af7fd30005017ea87fda0005017da17f00e30002017d9b7f00e90007017f90",
    "7f00027c00f6008a7ff80003017e857ffe0008017efa7e8901030100057ef47e900105017deb7e00990106017ee17ea2",
    "0103017edb7ea801050100047ed37eb50103017bc87eba0101c57ebd0103012d8e314ec34010452dcb59c7126ea9a8b9",
    "0235120d0720fd68f7c73bf27a36cc8c9320206747112e9ff4dfd7fbec293a57b12166c4b9b0791f3397f49ef6b12e0b",
    "c4ad8724a457ef6696b41320d928b8fa818dfd8d1c7dd5e943d807c511aa542c28ce8ccb683163a103d4b8ca604eeaf7",
    "a7604ebe5ab8549da1cdcbf7c3b4922626b1cca79041c573287c669982d111fe3558ccb51696a9dbec5b27d5b141f37c",
    "0b0ab22aadd7e6f1b725efb7fefd7f0bb4ddddb7689e7e5af240abe7aa2da7ce71f566fc03c1010070e7005861f700a7",
    "7f43e0001c907fe5001cfe7e31cb00927f6809017f030b017f0204017f021b017f0420017f0204017f0209017f020901",
    "7f0209017f0204017a22787a6e097806017e1a6907017f0204017f0206017f0310010f370b260216051c040d79020004",
    "0201040202047e02000201020437010500060416017f0404017f0409017f0002041701040407017f00150103040d0104",
    "007f6406007e1464020037160b000816073607167f0004367f000936030007360f167f64040007167f000d1607367f64",
    "030008160536e0b9e193f3310180d4bc92f331686f6d652d76697369743337303430323030313030316469722d31324c",
    "64395a7851386b5333685031734c6348334a76427139467a37786f6b6f6b6f6b6f6be69cace5ada6e69c9fe7bb8fe5b8",
    "b8e7bcbae8afbe636f6e6365726ee8afbee4b89ae8be85e5afbce88194e7b3bbe78fade4b8bbe4bbbbe4ba86e8a7a3e6",
    "8385e586b5e7bcbae8afbee99587e4b8ade5bf83e5b08fe5ada6323032342d30362d303166696e616ce096bd95f33170",
    "656e64696e6772657475726e65647265762d31e8afb7e58699e6988ee7bcbae8afbee5a4a9e695b0e096bd95f3317265",
    "762d31632d31e8afb7e5b0bde5bfabe8a1a5e585859201007f012e007f007f980101",
];

fn js_visit() -> AutoCommit {
    let hex: String = JS_VISIT_HEX.concat();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    AutoCommit::load(&bytes).unwrap()
}

const NOW: Millis = 1_714_536_000_000 + 45 * 60_000;

#[test]
fn the_documented_javascript_example_is_a_valid_home_visit() {
    let doc = js_visit();
    // The JavaScript library really did write Text objects.
    let (kind, _) = doc.get(automerge::ROOT, "kind").unwrap().unwrap();
    assert_eq!(kind, Value::Object(ObjType::Text));

    let record = Record::load(&doc).unwrap();
    assert_eq!(validate(&record), Ok(()));
    let Record::HomeVisit(visit) = record else {
        panic!("not a home visit");
    };
    assert_eq!(visit.org_unit.as_str(), "370402001001");
    assert_eq!(visit.worker.as_str(), "dir-1");
    assert_eq!(visit.started_at, NOW - 45 * 60_000);
    assert_eq!(visit.ended_at, Some(NOW));
    let schooling = visit.checklist.schooling.clone().unwrap();
    assert_eq!(schooling.status, CheckStatus::Concern);
    assert_eq!(schooling.note.as_deref(), Some("本学期经常缺课"));
    assert_eq!(visit.referrals[0].to, "镇中心小学");
    assert_eq!(visit.next_visit_date, Date::new(2024, 6, 1));
    assert_eq!(visit.status, RecordStatus::Final);
    assert_eq!(visit.review.state, ReviewState::Returned);
    assert_eq!(visit.review.reviewer, Some(AccountId::new("rev-1")));
    assert_eq!(visit.comments.len(), 1);
    assert_eq!(visit.comments[0].text, "请尽快补充");

    let meta = read_meta(&doc).unwrap();
    assert_eq!(meta.kind, DocumentKind::HomeVisit);
    assert_eq!(meta.schema_version, 1);
    assert_eq!(meta.worker, Some(AccountId::new("dir-1")));
    assert_eq!(
        meta.subject,
        Some(SubjectId::new("2Ld9ZxQ8kS3hP1sLcH3JvBq9Fz7x"))
    );
}

#[test]
fn a_rust_save_of_the_javascript_visit_changes_only_what_changed() {
    let mut doc = js_visit();
    let mut visit = HomeVisit::load(&doc).unwrap();
    visit.save(&mut doc).unwrap();
    assert_eq!(doc.pending_ops(), 0);

    visit.actions.push("已与家长约定督促上学".to_owned());
    visit.save(&mut doc).unwrap();
    doc.commit();
    assert_eq!(HomeVisit::load(&doc).unwrap(), visit);
    let (worker, _) = doc.get(automerge::ROOT, "worker").unwrap().unwrap();
    assert_eq!(worker, Value::Object(ObjType::Text));
}

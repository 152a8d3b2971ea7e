//! Concurrent edits of the same record on several replicas converge to the same value,
//! whatever order the changes are delivered in (design §3: offline devices merge).
//!
//! Each replica starts from the same home-visit-shaped document, makes its own edits
//! offline, then receives the other replicas' changes one at a time in an order chosen by
//! proptest — including orders where a change arrives before the changes it depends on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ObjType, ROOT, ReadDoc, Value};
use proptest::prelude::*;

const REPLICAS: usize = 3;

#[derive(Clone, Debug)]
enum Edit {
    /// A checklist answer: `guardianship` etc. set to a status.
    SetStatus(usize, usize),
    /// A need found, appended to the list.
    AddNeed(u8),
    /// Text typed into the visit note at a position.
    TypeNote(usize, String),
    /// A need removed (if any).
    RemoveNeed(usize),
}

const CHECKLIST: [&str; 5] = ["guardianship", "schooling", "health", "safety", "living"];
const STATUSES: [&str; 3] = ["ok", "concern", "serious"];

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..CHECKLIST.len(), 0..STATUSES.len())
            .prop_map(|(item, status)| Edit::SetStatus(item, status)),
        any::<u8>().prop_map(Edit::AddNeed),
        (0..40usize, "[a-z 孤儿留守]{1,6}").prop_map(|(at, text)| Edit::TypeNote(at, text)),
        (0..8usize).prop_map(Edit::RemoveNeed),
    ]
}

fn base() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![0xaa; 16]));
    doc.put(ROOT, "kind", "home-visit").unwrap();
    let checklist = doc.put_object(ROOT, "checklist", ObjType::Map).unwrap();
    for item in CHECKLIST {
        doc.put(&checklist, item, "ok").unwrap();
    }
    doc.put_object(ROOT, "needs", ObjType::List).unwrap();
    let note = doc.put_object(ROOT, "note", ObjType::Text).unwrap();
    doc.splice_text(&note, 0, 0, "走访").unwrap();
    doc.commit();
    doc
}

fn apply(doc: &mut AutoCommit, edit: &Edit) {
    match edit {
        Edit::SetStatus(item, status) => {
            let (_, checklist) = doc.get(ROOT, "checklist").unwrap().unwrap();
            doc.put(&checklist, CHECKLIST[*item], STATUSES[*status])
                .unwrap();
        }
        Edit::AddNeed(need) => {
            let (_, needs) = doc.get(ROOT, "needs").unwrap().unwrap();
            let length = doc.length(&needs);
            doc.insert(&needs, length, format!("need-{need}")).unwrap();
        }
        Edit::TypeNote(at, text) => {
            let (_, note) = doc.get(ROOT, "note").unwrap().unwrap();
            let length = doc.length(&note);
            let at = (*at).min(length);
            doc.splice_text(&note, at, 0, text).unwrap();
        }
        Edit::RemoveNeed(index) => {
            let (_, needs) = doc.get(ROOT, "needs").unwrap().unwrap();
            if *index < doc.length(&needs) {
                doc.delete(&needs, *index).unwrap();
            }
        }
    }
    doc.commit();
}

/// Everything a user sees of the record, in one comparable value.
fn visible(doc: &AutoCommit) -> (Vec<String>, Vec<String>, String) {
    let (_, checklist) = doc.get(ROOT, "checklist").unwrap().unwrap();
    let statuses = CHECKLIST
        .iter()
        .map(|item| match doc.get(&checklist, *item).unwrap() {
            Some((Value::Scalar(value), _)) => value.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    let (_, needs) = doc.get(ROOT, "needs").unwrap().unwrap();
    let needs = (0..doc.length(&needs))
        .map(|index| match doc.get(&needs, index).unwrap() {
            Some((Value::Scalar(value), _)) => value.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    let (_, note) = doc.get(ROOT, "note").unwrap().unwrap();
    (statuses, needs, doc.text(&note).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        edits in prop::collection::vec(prop::collection::vec(edit_strategy(), 1..6), REPLICAS),
        order_seeds in prop::collection::vec(any::<u64>(), REPLICAS),
    ) {
        let origin = base();
        let mut replicas: Vec<AutoCommit> = (0..REPLICAS)
            .map(|index| {
                let mut replica = origin.clone();
                replica.set_actor(ActorId::from(vec![index as u8 + 1; 16]));
                replica
            })
            .collect();
        let mut made: Vec<Vec<Change>> = Vec::new();
        for (replica, edits) in replicas.iter_mut().zip(&edits) {
            let before = replica.get_heads();
            for edit in edits {
                apply(replica, edit);
            }
            made.push(replica.get_changes(&before).into_iter().collect());
        }
        for (index, replica) in replicas.iter_mut().enumerate() {
            let mut incoming: Vec<Change> = made
                .iter()
                .enumerate()
                .filter(|(from, _)| *from != index)
                .flat_map(|(_, changes)| changes.iter().cloned())
                .collect();
            // A deterministic shuffle from the proptest-chosen seed: dependencies may
            // arrive after the changes that need them.
            let mut state = order_seeds[index] | 1;
            for position in (1..incoming.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let other = (state % (position as u64 + 1)) as usize;
                incoming.swap(position, other);
            }
            for change in incoming {
                replica.apply_changes([change]).unwrap();
            }
        }
        let first = visible(&replicas[0]);
        let heads = replicas[0].get_heads();
        for replica in &mut replicas[1..] {
            prop_assert_eq!(&replica.get_heads(), &heads);
            prop_assert_eq!(&visible(replica), &first);
        }
    }
}

//! The order in which the engine thread takes its events.
//!
//! One queue in arrival order let a busy connection hold up everyone: a phone's single edit
//! waited behind every frame the others had sent before it (under the benchmark's load,
//! about a thousand, or 100 ms), and storage's answers waited there too, so a durable
//! acknowledgement crossed that queue twice. Here the engine's own events (storage
//! answers, ticks, reviews, connections opening) come first, and connections' frames are
//! taken in turns: each connection with frames waiting gets its share, then the next. A
//! phone that sends one frame now waits for one turn of the others, however many they
//! have queued, and a connection's own frames keep their order.
//!
//! A connection that had nothing waiting when its frame arrived (a phone making one edit,
//! a phone starting a round) has that frame taken before the turns of the connections
//! with a backlog, and then joins the rotation if it has more. This is the new-flow rule
//! of FQ-CoDel (RFC 8290 §4.1). In the benchmark's (b), with 200 phones and a township
//! reviewer keeping the engine busy, a trace of the probe phone's single edits showed
//! them waiting for a whole turn of the others, 200 to 400 frames (up to 60 ms), before
//! the engine took them; with this rule, at most 19 ms. A connection can only be new again
//! once its queue has emptied, so a busy one cannot use the rule to jump ahead.
//!
//! A connection of an account that follows many villages (township reviewers, the bureau)
//! answers every change any of those villages makes, so its share per turn is larger
//! (`ENGINE_TURN_FRAMES_MANY_VILLAGES`); with one frame per turn it would fall ever further
//! behind the phones it follows.

use std::collections::{HashMap, VecDeque};

use caresync_core::domain::Role;
use caresync_core::sync::ConnectionId;

use super::events::EngineEvent;
use super::limits::{ENGINE_TURN_FRAMES, ENGINE_TURN_FRAMES_MANY_VILLAGES};

/// Events waiting for the engine thread, in the order it should take them.
#[derive(Debug, Default)]
pub struct Turns {
    /// The engine's own events, in arrival order.
    control: VecDeque<EngineEvent>,
    /// Each connection's frames (and finally its `Closed`), in arrival order.
    waiting: HashMap<ConnectionId, VecDeque<EngineEvent>>,
    /// Connections whose queue was empty when their frame arrived, in arrival order. Each
    /// has its first frame taken before the rotation's turns, then joins the rotation if
    /// more are waiting.
    new_arrivals: VecDeque<ConnectionId>,
    /// Connections with a backlog; the front one is being served.
    rotation: VecDeque<ConnectionId>,
    /// Frames the front connection has had in its current turn.
    served_in_turn: usize,
}

impl Turns {
    pub fn is_empty(&self) -> bool {
        self.control.is_empty() && self.new_arrivals.is_empty() && self.rotation.is_empty()
    }

    pub fn push(&mut self, event: EngineEvent) {
        let connection = match &event {
            EngineEvent::Frame { connection, .. } | EngineEvent::Closed { connection } => {
                *connection
            }
            _ => {
                self.control.push_back(event);
                return;
            }
        };
        let queue = self.waiting.entry(connection).or_default();
        if queue.is_empty() {
            self.new_arrivals.push_back(connection);
        }
        queue.push_back(event);
    }

    /// The next event to handle, if any. `share` says how many frames a connection has
    /// per turn (the engine knows each connection's account).
    pub fn pop(&mut self, share: impl Fn(ConnectionId) -> usize) -> Option<EngineEvent> {
        if let Some(event) = self.control.pop_front() {
            return Some(event);
        }
        if let Some(connection) = self.new_arrivals.pop_front() {
            let queue = self.waiting.get_mut(&connection)?;
            let event = queue.pop_front();
            if queue.is_empty() {
                self.waiting.remove(&connection);
            } else {
                self.rotation.push_back(connection);
            }
            return event;
        }
        let connection = *self.rotation.front()?;
        let queue = self.waiting.get_mut(&connection)?;
        let event = queue.pop_front();
        self.served_in_turn += 1;
        if queue.is_empty() {
            self.waiting.remove(&connection);
            self.rotation.pop_front();
            self.served_in_turn = 0;
        } else if self.served_in_turn >= share(connection) {
            self.rotation.rotate_left(1);
            self.served_in_turn = 0;
        }
        event
    }
}

/// Frames per turn for a connection of an account with this role.
pub fn share_of(role: Role) -> usize {
    if role.follows_many_villages() {
        ENGINE_TURN_FRAMES_MANY_VILLAGES
    } else {
        ENGINE_TURN_FRAMES
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use caresync_core::domain::{Account, AccountId};
    use tokio::sync::mpsc;

    use super::*;

    fn frame(connection: u64, byte: u8) -> EngineEvent {
        EngineEvent::Frame {
            connection: ConnectionId(connection),
            frame: vec![byte],
            room: None,
        }
    }

    fn opened(connection: u64, role: Role) -> EngineEvent {
        let (outbox, _) = mpsc::channel(1);
        EngineEvent::Opened {
            connection: ConnectionId(connection),
            account: Box::new(Account {
                id: AccountId(format!("account-{connection}")),
                username: format!("user-{connection}"),
                role,
                org_units: Vec::new(),
                assigned_elders: Vec::new(),
                disabled: false,
            }),
            outbox,
        }
    }

    /// What the engine would see, as (connection, first byte) for frames and a word for
    /// the rest; connection 1 is a township reviewer's, the others phones'.
    fn drain(turns: &mut Turns) -> Vec<String> {
        let share = |connection: ConnectionId| {
            share_of(if connection.0 == 1 {
                Role::TownshipReviewer
            } else {
                Role::VillageChildDirector
            })
        };
        std::iter::from_fn(|| turns.pop(share))
            .map(|event| match event {
                EngineEvent::Frame {
                    connection, frame, ..
                } => format!("{}:{}", connection.0, frame[0]),
                EngineEvent::Closed { connection } => format!("{}:closed", connection.0),
                EngineEvent::Opened { connection, .. } => format!("{}:opened", connection.0),
                EngineEvent::Tick => "tick".to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_phones_one_frame_waits_for_one_turn_not_for_a_busy_phones_queue() {
        let mut turns = Turns::default();
        for byte in 0..100 {
            turns.push(frame(2, byte));
        }
        turns.push(frame(3, 0));
        let order = drain(&mut turns);
        assert_eq!(&order[..3], ["2:0", "3:0", "2:1"]);
        // The busy phone's own frames keep their order.
        let busy: Vec<&String> = order.iter().filter(|e| e.starts_with("2:")).collect();
        assert_eq!(busy.len(), 100);
        assert!(busy.windows(2).all(|w| {
            let n = |s: &str| s[2..].parse::<u8>().unwrap();
            n(w[0]) < n(w[1])
        }));
    }

    #[test]
    fn the_engines_own_events_go_before_frames_already_waiting() {
        let mut turns = Turns::default();
        turns.push(frame(2, 0));
        turns.push(frame(2, 1));
        turns.push(EngineEvent::Tick);
        assert_eq!(drain(&mut turns), ["tick", "2:0", "2:1"]);
        assert!(turns.is_empty());
    }

    #[test]
    fn a_connection_is_closed_only_after_the_frames_it_sent_before_closing() {
        let mut turns = Turns::default();
        turns.push(opened(2, Role::VillageChildDirector));
        turns.push(frame(2, 0));
        turns.push(frame(2, 1));
        turns.push(EngineEvent::Closed {
            connection: ConnectionId(2),
        });
        turns.push(frame(3, 0));
        assert_eq!(
            drain(&mut turns),
            ["2:opened", "2:0", "3:0", "2:1", "2:closed"]
        );
    }

    #[test]
    fn a_phone_that_had_nothing_waiting_goes_before_the_turns_of_busy_ones() {
        let mut turns = Turns::default();
        for connection in 2..5 {
            for byte in 0..10 {
                turns.push(frame(connection, byte));
            }
        }
        let share = |_| ENGINE_TURN_FRAMES;
        for _ in 0..4 {
            turns.pop(share);
        }
        turns.push(frame(5, 0));
        turns.push(frame(6, 0));
        assert_eq!(drain(&mut turns)[..3], ["5:0", "6:0", "3:1"]);
    }

    #[test]
    fn a_phone_with_more_waiting_joins_the_turns_after_its_first_frame() {
        let mut turns = Turns::default();
        for byte in 0..3 {
            turns.push(frame(2, byte));
        }
        turns.push(frame(3, 0));
        turns.pop(|_| ENGINE_TURN_FRAMES);
        // Phone 2 was new once; its next frames wait for their turns like anyone's.
        turns.push(frame(4, 0));
        turns.push(frame(4, 1));
        assert_eq!(drain(&mut turns), ["3:0", "4:0", "2:1", "4:1", "2:2"]);
    }

    #[test]
    fn a_reviewer_following_many_villages_gets_a_larger_share_of_each_turn() {
        let mut turns = Turns::default();
        for byte in 0..300 {
            turns.push(frame(1, u8::try_from(byte % 256).unwrap()));
        }
        for byte in 0..3 {
            turns.push(frame(2, byte));
        }
        let order = drain(&mut turns);
        let position = |event: &str| order.iter().position(|e| e == event).unwrap();
        // Both were new: one frame each. Then the reviewer's turn is its full share, the
        // phone's one frame, and the reviewer has the rest.
        assert_eq!(&order[..2], ["1:0", "2:0"]);
        assert_eq!(position("2:1"), 2 + ENGINE_TURN_FRAMES_MANY_VILLAGES);
        assert_eq!(position("2:2"), order.len() - 1);
    }
}

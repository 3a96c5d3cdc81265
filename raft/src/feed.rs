//! The seat-change feed of a group: every seat status change the applied
//! log produced, in log order, kept in a bounded ring for resuming readers
//! and broadcast to live ones. It feeds the gateway's seat-map streams.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use statemachine::{DomainEvent, EventId, SeatStatus};
use tokio::sync::broadcast;

/// Seat changes a group keeps for resuming readers.
pub const FEED_CHANGES_MAX: usize = 200_000;
/// Entries buffered per live reader before it is cut off as too slow.
const FEED_BROADCAST_MAX: usize = 16_384;

/// The seat changes of one log entry, in order.
pub(crate) type EntryChanges = Arc<Vec<SeatChange>>;

/// One seat changing status at a state index (see `batch::state_index`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    /// The entry that changed it.
    pub index: u64,
    /// The event.
    pub event: EventId,
    /// The seat label.
    pub seat: String,
    /// Its new status.
    pub status: SeatStatus,
}

/// The seat changes a domain event stands for.
pub(crate) fn changes(index: u64, event: &DomainEvent, out: &mut Vec<SeatChange>) {
    let (ev, seats, status) = match event {
        DomainEvent::SeatsHeld { event, seats, .. } => (*event, seats, SeatStatus::Held),
        DomainEvent::SeatsReleased { event, seats, .. }
        | DomainEvent::SeatsExpired { event, seats, .. }
        | DomainEvent::BookingCancelled { event, seats, .. } => (*event, seats, SeatStatus::Available),
        DomainEvent::SeatsBooked { event, seats, .. } => (*event, seats, SeatStatus::Booked),
        _ => return,
    };
    out.extend(seats.iter().map(|s| SeatChange { index, event: ev, seat: s.clone(), status }));
}

struct Ring {
    changes: VecDeque<SeatChange>,
    /// Every change at an index at or after this one is in `changes`.
    complete_from: u64,
}

/// A group's feed.
pub(crate) struct Feed {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<EntryChanges>,
}

/// What a reader resuming after an index gets.
pub(crate) enum Resume {
    /// The changes after the index it asked for, and a live subscription
    /// that continues them with whole entries.
    Changes(Vec<SeatChange>, broadcast::Receiver<EntryChanges>),
    /// Changes after that index were dropped (ring overflow or restart):
    /// the reader must start over from a full seat map.
    Gap,
}

impl Feed {
    /// A feed whose history starts after `applied_index`.
    pub(crate) fn new(applied_index: u64) -> Feed {
        let (tx, _) = broadcast::channel(FEED_BROADCAST_MAX);
        Feed { ring: Mutex::new(Ring { changes: VecDeque::new(), complete_from: applied_index.saturating_add(1) }), tx }
    }

    /// Records the changes of one applied entry.
    pub(crate) fn push(&self, changes: Vec<SeatChange>) {
        if changes.is_empty() {
            return;
        }
        let mut ring = self.ring.lock().expect("feed lock poisoned");
        for c in &changes {
            while ring.changes.len() >= FEED_CHANGES_MAX {
                let dropped = ring.changes.pop_front().expect("ring is full");
                ring.complete_from = ring.complete_from.max(dropped.index.saturating_add(1));
            }
            ring.changes.push_back(c.clone());
        }
        // Sending under the lock keeps the ring and the broadcast in one
        // order, and a reader subscribing under it misses nothing between.
        let _ = self.tx.send(Arc::new(changes));
    }

    /// Forgets history (a snapshot replaced the state).
    pub(crate) fn reset(&self, applied_index: u64) {
        let mut ring = self.ring.lock().expect("feed lock poisoned");
        ring.changes.clear();
        ring.complete_from = applied_index.saturating_add(1);
    }

    /// The changes of `event` after `after`, and a subscription for what follows.
    ///
    /// `after` comes from a client (`Last-Event-ID`), so it may be any
    /// integer: nothing here may overflow or panic, because a panic under
    /// this lock would stop every later apply of the group.
    pub(crate) fn resume(&self, event: EventId, after: u64) -> Resume {
        let ring = self.ring.lock().expect("feed lock poisoned");
        if after.saturating_add(1) < ring.complete_from {
            return Resume::Gap;
        }
        let rx = self.tx.subscribe();
        // Changes are in index order: skip what the reader has by search.
        let from = ring.changes.partition_point(|c| c.index <= after);
        let past = ring.changes.range(from..).filter(|c| c.event == event).cloned().collect();
        Resume::Changes(past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(index: u64, seat: &str) -> SeatChange {
        SeatChange { index, event: EventId(1), seat: seat.into(), status: SeatStatus::Held }
    }

    #[test]
    fn readers_resume_after_an_index_or_learn_of_a_gap() {
        let feed = Feed::new(10);
        assert!(matches!(feed.resume(EventId(1), 5), Resume::Gap), "history starts after 10");
        feed.push(vec![change(11, "A-1"), change(11, "A-2")]);
        feed.push(vec![SeatChange { event: EventId(2), ..change(12, "B-1") }]);
        feed.push(vec![change(13, "A-3")]);
        let Resume::Changes(past, mut rx) = feed.resume(EventId(1), 11) else { panic!("no gap expected") };
        assert_eq!(past, vec![change(13, "A-3")]);
        feed.push(vec![change(14, "A-4")]);
        assert_eq!(*rx.try_recv().unwrap(), vec![change(14, "A-4")]);
        let Resume::Changes(all, _) = feed.resume(EventId(1), 10) else { panic!() };
        assert_eq!(all.len(), 4);
        feed.reset(20);
        assert!(matches!(feed.resume(EventId(1), 14), Resume::Gap));
        assert!(matches!(feed.resume(EventId(1), 20), Resume::Changes(ref p, _) if p.is_empty()));
    }

    #[test]
    fn any_resume_index_from_a_client_is_answered_without_panicking() {
        let feed = Feed::new(10);
        feed.push(vec![change(11, "A-1")]);
        for after in [0, 9, 10, 11, u64::MAX - 1, u64::MAX] {
            let _ = feed.resume(EventId(1), after);
        }
        let Resume::Changes(past, _) = feed.resume(EventId(1), u64::MAX) else { panic!("nothing after the end") };
        assert!(past.is_empty());
        // The feed still takes changes: the lock was not poisoned.
        feed.push(vec![change(12, "A-2")]);
        let Resume::Changes(past, _) = feed.resume(EventId(1), 11) else { panic!() };
        assert_eq!(past, vec![change(12, "A-2")]);
    }

    #[test]
    fn an_overflowing_ring_reports_a_gap_for_what_it_dropped() {
        let feed = Feed::new(0);
        for i in 1..=(FEED_CHANGES_MAX as u64 + 5) {
            feed.push(vec![change(i, "A-1")]);
        }
        assert!(matches!(feed.resume(EventId(1), 3), Resume::Gap));
        let Resume::Changes(past, _) = feed.resume(EventId(1), 5) else { panic!("index 6 on is kept") };
        assert_eq!(past.len(), FEED_CHANGES_MAX);
    }
}

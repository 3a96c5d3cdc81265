//! The notification feed of a group: the domain events worth telling the
//! outside world about (bookings, cancellations, expiries, waitlist offers,
//! transfers), with the state index of the command that made them. Bounded ring
//! plus broadcast, like the seat feed; it feeds the gateway's webhooks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use statemachine::DomainEvent;
use tokio::sync::broadcast;

/// Notifiable events a group keeps for resuming readers.
pub const EVENTS_KEPT_MAX: usize = 100_000;
/// Entries buffered per live reader.
const EVENTS_BROADCAST_MAX: usize = 4_096;

/// The events of one entry.
pub type IndexedEvents = Arc<(u64, Vec<DomainEvent>)>;

/// Whether the outside world hears of an event.
pub(crate) fn notifiable(e: &DomainEvent) -> bool {
    matches!(
        e,
        DomainEvent::SeatsBooked { .. }
            | DomainEvent::BookingCancelled { .. }
            | DomainEvent::SeatsExpired { .. }
            | DomainEvent::WaitlistOffered { .. }
            | DomainEvent::TicketTransferred { .. }
    )
}

struct Ring {
    entries: VecDeque<IndexedEvents>,
    kept: usize,
    complete_from: u64,
}

pub(crate) struct EventFeed {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<IndexedEvents>,
}

pub(crate) enum EventsResume {
    Events(Vec<IndexedEvents>, broadcast::Receiver<IndexedEvents>),
    Gap,
}

impl EventFeed {
    pub(crate) fn new(applied_index: u64) -> EventFeed {
        let (tx, _) = broadcast::channel(EVENTS_BROADCAST_MAX);
        EventFeed {
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                kept: 0,
                complete_from: applied_index.saturating_add(1),
            }),
            tx,
        }
    }

    pub(crate) fn push(&self, index: u64, events: &[DomainEvent]) {
        let mine: Vec<DomainEvent> = events.iter().filter(|e| notifiable(e)).cloned().collect();
        if mine.is_empty() {
            return;
        }
        let entry = Arc::new((index, mine));
        let mut ring = self.ring.lock().expect("event feed poisoned");
        ring.kept += entry.1.len();
        ring.entries.push_back(Arc::clone(&entry));
        while ring.kept > EVENTS_KEPT_MAX {
            let dropped = ring.entries.pop_front().expect("ring over its bound is not empty");
            ring.kept -= dropped.1.len();
            ring.complete_from = ring.complete_from.max(dropped.0.saturating_add(1));
        }
        let _ = self.tx.send(entry);
    }

    pub(crate) fn reset(&self, applied_index: u64) {
        let mut ring = self.ring.lock().expect("event feed poisoned");
        ring.entries.clear();
        ring.kept = 0;
        ring.complete_from = applied_index.saturating_add(1);
    }

    pub(crate) fn resume(&self, after: u64) -> EventsResume {
        // `after` may come from outside: no arithmetic on it may overflow
        // under the lock that every apply takes.
        let ring = self.ring.lock().expect("event feed poisoned");
        if after.saturating_add(1) < ring.complete_from {
            return EventsResume::Gap;
        }
        let rx = self.tx.subscribe();
        let from = ring.entries.partition_point(|e| e.0 <= after);
        EventsResume::Events(ring.entries.range(from..).cloned().collect(), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statemachine::{BookingId, EventId, HoldId};

    fn booked(n: u64) -> DomainEvent {
        DomainEvent::SeatsBooked {
            event: EventId(1),
            booking: BookingId(n),
            user: "u".into(),
            seats: vec!["A-1".into()],
        }
    }

    #[test]
    fn only_notifiable_events_are_kept_and_resumed_after_an_index() {
        let feed = EventFeed::new(0);
        let held = DomainEvent::SeatsHeld {
            event: EventId(1),
            hold: HoldId(2),
            user: "u".into(),
            seats: vec!["A-1".into()],
            origin: statemachine::HoldOrigin::User,
        };
        feed.push(1, &[held]);
        feed.push(2, &[booked(2)]);
        feed.push(3, &[booked(3)]);
        let EventsResume::Events(past, mut rx) = feed.resume(2) else { panic!("no gap") };
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].0, 3);
        feed.push(4, &[booked(4)]);
        assert_eq!(rx.try_recv().unwrap().0, 4);
        feed.reset(10);
        assert!(matches!(feed.resume(3), EventsResume::Gap));
    }
}

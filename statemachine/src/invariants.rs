//! Rebuilding derived structures from primary records, and the invariant
//! checker built on it: a state is consistent exactly when its derived
//! structures equal a fresh rebuild and the rebuild finds no conflict.
//!
//! The rebuild enforces: each seat is in exactly one state; a held seat
//! belongs to exactly one live hold; a booked seat to exactly one confirmed
//! booking; counters equal a recount; available + held + booked + blocked
//! = capacity per category; one live hold and one waitlist entry per user
//! per event; ids are below `next_id`.

use std::collections::BTreeSet;

use crate::records::{BookingStatus, Counts, HoldState, Recorded, TicketStatus};
use crate::state::{Indexes, Primary, State, SEAT_AVAILABLE, SEAT_BLOCKED, SEAT_BOOKED, SEAT_HELD};

/// A broken invariant: a bug, never an expected outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant violated: {0}")]
pub struct InvariantViolation(pub String);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

impl State {
    /// Checks every invariant of the state. O(size of the state).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fresh = State::rebuild(self.p.clone()).map_err(InvariantViolation)?;
        for (id, ev) in &self.p.events {
            let f = &fresh.p.events[id];
            if ev.seats != f.seats {
                let seat = ev.seats.first_difference(&f.seats).unwrap_or(0);
                return Err(InvariantViolation(format!(
                    "event {id}: seat {seat} is {} but the records say {}",
                    if seat < ev.seats.len() { ev.seats.get(seat) } else { 255 },
                    if seat < f.seats.len() { f.seats.get(seat) } else { 255 }
                )));
            }
            if ev.counts != f.counts {
                return Err(InvariantViolation(format!(
                    "event {id}: counters {:?} differ from a recount {:?}",
                    ev.counts, f.counts
                )));
            }
            if ev.live_holds != f.live_holds || ev.waitlist != f.waitlist {
                return Err(InvariantViolation(format!("event {id}: hold or waitlist index differs from a rebuild")));
            }
        }
        if self.ix != fresh.ix {
            return Err(InvariantViolation(describe_index_difference(&self.ix, &fresh.ix)));
        }
        let limits = &self.p.limits;
        if self.p.dedup.len() > limits.dedup_entries_max as usize || self.ix.dedup_bytes > limits.dedup_bytes_max {
            return Err(InvariantViolation("exactly-once table over its bound".into()));
        }
        if self.ix.finished.len() > limits.holds_finished_max as usize {
            return Err(InvariantViolation("finished holds over their bound".into()));
        }
        if self.ix.room_users > limits.rooms_users_max
            || self.p.rooms.values().any(|r| r.users.len() > limits.room_users_max as usize)
        {
            return Err(InvariantViolation("waiting-room users over their bound".into()));
        }
        Ok(())
    }

    /// Builds a state from primary records, deriving everything else.
    pub(crate) fn rebuild(mut p: Primary) -> Result<State, String> {
        let limits = p.limits;
        for (id, venue) in p.venues.iter_mut() {
            ensure!(venue.id == *id, "venue {id} is stored under another id");
            ensure!(id.0 < p.next_id, "venue id {id} not below next_id");
            venue.rebuild(&limits).map_err(|e| format!("venue {id}: {e}"))?;
        }
        for (id, ev) in p.events.iter_mut() {
            ensure!(ev.id == *id, "event {id} is stored under another id");
            ensure!(id.0 < p.next_id, "event id {id} not below next_id");
            let venue = p.venues.get(&ev.settings.venue).ok_or(format!("event {id}: unknown venue"))?;
            let layout = &venue.derived;
            ensure!(ev.settings.prices.len() == layout.categories.len(), "event {id}: price list does not fit venue");
            ev.seats = crate::statuses::Statuses::new(layout.capacity, SEAT_AVAILABLE);
            for &seat in &layout.blocked {
                ev.seats.set(seat, SEAT_BLOCKED);
            }
            ev.counts = Vec::new();
            ev.live_holds.clear();
            ev.waitlist.clear();
        }
        let mut ix = Indexes::default();
        // The index is keyed by digests; this is the rule itself, by user id.
        let mut live_by_user = BTreeSet::new();
        for (id, hold) in &p.holds {
            ensure!(hold.id == *id, "hold {id} is stored under another id");
            ensure!(id.0 < p.next_id, "hold id {id} not below next_id");
            let ev = p.events.get_mut(&hold.event).ok_or(format!("hold {id}: unknown event"))?;
            ensure!(!hold.seats.is_empty(), "hold {id} has no seats");
            ensure!(hold.seats.windows(2).all(|w| w[0] < w[1]), "hold {id}: seats not sorted and distinct");
            ensure!(*hold.seats.last().expect("non-empty") < ev.seats.len(), "hold {id}: seat out of range");
            if hold.state == HoldState::Active {
                for &seat in &hold.seats {
                    let status = ev.seats.get(seat);
                    ensure!(status == SEAT_AVAILABLE, "hold {id}: seat {seat} is also in status {status}");
                    ev.seats.set(seat, SEAT_HELD);
                }
                ev.live_holds.insert((hold.expires_at_ms, *id));
                ix.expiry.insert((hold.expires_at_ms, *id));
                ix.user_holds.insert((crate::dedup::user_key(&hold.user), hold.event, *id));
                let first = live_by_user.insert((&*hold.user, hold.event));
                ensure!(first, "user {} has two live holds on event {}", hold.user, hold.event);
            } else {
                ix.finished.insert((hold.finished_at_ms, *id));
            }
            if let Some(booking) = hold.booking {
                if !p.bookings.contains_key(&booking) {
                    ensure!(ix.reserved_bookings.insert(booking, *id).is_none(), "booking id {booking} reserved twice");
                }
            }
        }
        let mut tickets_seen = 0usize;
        for (id, b) in &p.bookings {
            ensure!(b.id == *id, "booking {id} is stored under another id");
            ensure!(id.0 < p.next_id, "booking id {id} not below next_id");
            let ev = p.events.get_mut(&b.event).ok_or(format!("booking {id}: unknown event"))?;
            ensure!(
                b.tickets.len() == b.seats.len() && !b.seats.is_empty(),
                "booking {id}: tickets do not match seats"
            );
            for (ticket_id, &seat) in b.tickets.iter().zip(&b.seats) {
                let t = p.tickets.get(ticket_id).ok_or(format!("booking {id}: unknown ticket {ticket_id}"))?;
                ensure!(t.id == *ticket_id, "ticket {ticket_id} is stored under another id");
                ensure!(
                    t.booking == *id && t.seat == seat && t.event == b.event,
                    "ticket {ticket_id} disagrees with its booking"
                );
                ensure!(seat < ev.seats.len(), "booking {id}: seat out of range");
                match b.status {
                    BookingStatus::Confirmed => {
                        ensure!(t.status != TicketStatus::Cancelled, "confirmed booking {id} has a cancelled ticket");
                        let status = ev.seats.get(seat);
                        ensure!(status == SEAT_AVAILABLE, "booking {id}: seat {seat} is also in status {status}");
                        ev.seats.set(seat, SEAT_BOOKED);
                    }
                    BookingStatus::Cancelled => {
                        ensure!(t.status == TicketStatus::Cancelled, "cancelled booking {id} has a live ticket");
                    }
                }
                tickets_seen += 1;
            }
            ix.user_bookings.insert((crate::dedup::user_key(&b.user), *id));
        }
        ensure!(tickets_seen == p.tickets.len(), "tickets that belong to no booking");
        for (id, w) in &p.waitlist {
            ensure!(w.id == *id, "waitlist entry {id} is stored under another id");
            ensure!(id.0 < p.next_id, "waitlist id {id} not below next_id");
            let ev = p.events.get_mut(&w.event).ok_or(format!("waitlist {id}: unknown event"))?;
            ensure!((w.category as usize) < ev.settings.prices.len(), "waitlist {id}: unknown category");
            ev.waitlist.insert(*id);
            let previous = ix.user_waitlist.insert((w.user.clone(), w.event), *id);
            ensure!(previous.is_none(), "user {} waits twice for event {}", w.user, w.event);
        }
        let mut dedup_order = Vec::with_capacity(p.dedup.len());
        for (key, entry) in &p.dedup {
            ensure!(entry.index <= p.last_index, "remembered request from the future");
            dedup_order.push((entry.index, entry.at_ms, *key));
            ix.dedup_bytes += entry.result.weight();
            // A result kept as ids is rebuilt from the records they name.
            match &entry.result {
                Recorded::Booked(booking) => {
                    ensure!(p.bookings.contains_key(booking), "remembered booking {booking} does not exist");
                }
                Recorded::PaymentStarted { event, .. } => {
                    ensure!(p.events.contains_key(event), "remembered payment of unknown event {event}");
                }
                Recorded::Result(_) => {}
            }
        }
        dedup_order.sort_unstable_by_key(|&(index, _, _)| index);
        if let Some(w) = dedup_order.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("two remembered requests at index {}", w[0].0));
        }
        ix.dedup_order = dedup_order.into();
        let limits = &p.limits;
        ensure!(
            p.dedup.len() <= limits.dedup_entries_max as usize && ix.dedup_bytes <= limits.dedup_bytes_max,
            "the exactly-once table is over its bounds"
        );
        for (key, intent) in &p.intents {
            ensure!(intent.id == *key, "intent {key} is stored under another id");
        }
        for (id, room) in &p.rooms {
            let ev = p.events.get(id).ok_or(format!("waiting room of unknown event {id}"))?;
            ensure!(ev.settings.waiting_room.is_some_and(|w| w.enabled), "event {id} has a room but none enabled");
            room.check().map_err(|e| format!("waiting room of event {id}: {e}"))?;
            ix.room_users += room.users.len() as u64;
        }
        for ev in p.events.values_mut() {
            let layout = &p.venues[&ev.settings.venue].derived;
            ev.counts = vec![Counts::default(); layout.categories.len()];
            for (row_idx, row) in layout.rows.iter().enumerate() {
                let counts = &mut ev.counts[layout.category_of_row(row_idx) as usize];
                for seat in row.first_seat..row.first_seat + row.seats {
                    *counts.slot(ev.seats.get(seat)) += 1;
                }
            }
        }
        Ok(State { p, ix })
    }
}

fn describe_index_difference(have: &Indexes, want: &Indexes) -> String {
    let which = if have.user_holds != want.user_holds {
        "user_holds"
    } else if have.expiry != want.expiry {
        "expiry"
    } else if have.finished != want.finished {
        "finished"
    } else if have.reserved_bookings != want.reserved_bookings {
        "reserved_bookings"
    } else if have.user_bookings != want.user_bookings {
        "user_bookings"
    } else if have.user_waitlist != want.user_waitlist {
        "user_waitlist"
    } else if have.dedup_order != want.dedup_order {
        "dedup_order"
    } else if have.dedup_bytes != want.dedup_bytes {
        "dedup_bytes"
    } else {
        "room_users"
    };
    format!("index {which} differs from a rebuild")
}

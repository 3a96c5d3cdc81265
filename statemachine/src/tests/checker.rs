//! The invariant checker proves itself: each kind of corruption planted
//! directly into a consistent state is reported.

use super::support::*;
use crate::records::{BookingStatus, HoldState, TicketStatus};
use crate::state::{SEAT_AVAILABLE, SEAT_BOOKED, SEAT_HELD};
use crate::*;

/// A state with a live hold, a confirmed booking and a waitlist entry.
fn busy() -> (Harness, EventId) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let held = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let _ = held;
    let to_book = h.hold(event, "bob", &["Floor-B-1"]);
    h.book(to_book.hold, "bob");
    h.state.check_invariants().expect("consistent to start with");
    (h, event)
}

fn assert_caught(mutate: impl FnOnce(&mut State, EventId), what: &str) {
    let (mut h, event) = busy();
    mutate(&mut h.state, event);
    let verdict = h.state.check_invariants();
    assert!(verdict.is_err(), "the checker missed: {what}");
    // A snapshot of a corrupt state must not restore.
    if let Ok(restored) = State::restore(&h.state.snapshot()) {
        // Some corruptions live only in derived data, which a restore
        // rebuilds from the records; the rebuilt state must be consistent.
        restored.check_invariants().expect("a restore rebuilds derived data consistently");
    }
}

#[test]
fn catches_a_counter_that_drifted() {
    assert_caught(|s, e| s.p.events.get_mut(&e).unwrap().counts[0].available += 1, "counter drift");
}

#[test]
fn catches_a_seat_flipped_without_a_record() {
    assert_caught(
        |s, e| {
            let ev = s.p.events.get_mut(&e).unwrap();
            let seat = (0..ev.seats.len()).find(|&s| ev.seats.get(s) == SEAT_AVAILABLE).unwrap();
            ev.seats.set(seat, SEAT_BOOKED);
            ev.counts[0].available -= 1;
            ev.counts[0].booked += 1;
        },
        "a booked seat with no booking",
    );
}

#[test]
fn catches_a_seat_in_two_holds() {
    assert_caught(
        |s, _| {
            let (id, live) = s.p.holds.iter().find(|(_, h)| h.state == HoldState::Active).unwrap();
            let mut twin = live.clone();
            twin.id = HoldId(s.p.next_id);
            twin.user = "mallory".into();
            s.p.next_id += 1;
            let _ = id;
            s.p.holds.insert(twin.id, twin);
        },
        "two live holds on one seat",
    );
}

#[test]
fn catches_a_seat_booked_twice() {
    assert_caught(
        |s, _| {
            let b = s.p.bookings.values().next().unwrap().clone();
            let mut twin = b.clone();
            twin.id = BookingId(s.p.next_id);
            s.p.next_id += 1;
            twin.tickets.clear();
            for &seat in &b.seats {
                let t = TicketId(s.p.next_id);
                s.p.next_id += 1;
                let mut ticket = s.p.tickets[&b.tickets[0]].clone();
                ticket.id = t;
                ticket.booking = twin.id;
                ticket.seat = seat;
                s.p.tickets.insert(t, ticket);
                twin.tickets.push(t);
            }
            s.p.bookings.insert(twin.id, twin);
        },
        "one seat in two confirmed bookings",
    );
}

#[test]
fn catches_a_held_seat_without_a_hold() {
    assert_caught(
        |s, e| {
            let ev = s.p.events.get_mut(&e).unwrap();
            let seat = (0..ev.seats.len()).find(|&s| ev.seats.get(s) == SEAT_HELD).unwrap();
            ev.seats.set(seat, SEAT_AVAILABLE);
        },
        "a held seat whose status byte was cleared",
    );
}

#[test]
fn catches_a_cancelled_booking_with_live_tickets() {
    assert_caught(
        |s, _| {
            let b = s.p.bookings.values_mut().next().unwrap();
            b.status = BookingStatus::Cancelled;
        },
        "a cancelled booking whose tickets are valid",
    );
}

#[test]
fn catches_an_orphan_ticket() {
    assert_caught(
        |s, _| {
            let mut t = s.p.tickets.values().next().unwrap().clone();
            t.id = TicketId(s.p.next_id);
            t.status = TicketStatus::Valid;
            s.p.next_id += 1;
            s.p.tickets.insert(t.id, t);
        },
        "a ticket that belongs to no booking",
    );
}

#[test]
fn catches_a_stale_user_index() {
    assert_caught(
        |s, e| {
            s.ix.user_holds.insert((crate::dedup::user_key("ghost"), e, HoldId(1)));
        },
        "a user index entry with no hold",
    );
}

#[test]
fn catches_an_id_from_the_future() {
    assert_caught(|s, _| s.p.next_id = 1, "ids at or above next_id");
}

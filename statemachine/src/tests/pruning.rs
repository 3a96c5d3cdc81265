//! Pruning: finished holds are forgotten by age and by count, and what
//! only they referred to goes with them.

use super::support::*;
use crate::*;

fn setup_with(limits: Limits) -> (Harness, EventId) {
    let mut h = Harness::with_limits(limits);
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

/// Any command: pruning runs before every entry.
fn tick(h: &mut Harness) {
    h.sweep(0);
}

#[test]
fn finished_holds_are_forgotten_after_their_age() {
    let (mut h, event) = setup_with(Limits { hold_finished_age_secs_max: 60, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    h.advance(60 * SEC - 1);
    tick(&mut h);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Released);
    h.advance(1);
    tick(&mut h);
    assert!(h.state.hold(r.hold, h.now).is_none());
    assert_eq!(h.err(Op::ReleaseHold { hold: r.hold, user: "alice".into() }), Rejection::HoldNotFound);
    assert_eq!(h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 60 }), Rejection::HoldNotFound);
}

#[test]
fn live_holds_are_never_pruned() {
    let (mut h, event) =
        setup_with(Limits { hold_finished_age_secs_max: 1, holds_finished_max: 0, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(599 * SEC);
    tick(&mut h);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
}

#[test]
fn finished_holds_beyond_the_count_bound_are_forgotten_oldest_first() {
    let (mut h, event) = setup_with(Limits { holds_finished_max: 1, ..Limits::default() });
    let first = h.hold(event, "alice", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: first.hold, user: "alice".into() });
    h.advance(SEC);
    let second = h.hold(event, "bob", &["Floor-A-3"]);
    h.ok(Op::ReleaseHold { hold: second.hold, user: "bob".into() });
    tick(&mut h);
    assert!(h.state.hold(first.hold, h.now).is_none());
    assert_eq!(h.hold_status(second.hold), HoldStatus::Released);
    assert_eq!(h.err(Op::ReleaseHold { hold: first.hold, user: "alice".into() }), Rejection::HoldNotFound);
}

#[test]
fn a_forgotten_confirmed_hold_leaves_its_booking() {
    let (mut h, event) = setup_with(Limits { hold_finished_age_secs_max: 60, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let b = h.book(r.hold, "alice");
    h.advance(60 * SEC);
    tick(&mut h);
    assert!(h.state.hold(r.hold, h.now).is_none());
    let view = h.state.booking(b.booking, h.now).expect("bookings are kept");
    assert_eq!(view.status, BookingViewStatus::Confirmed);
    assert_eq!(view.hold, r.hold);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Booked);
    // Its captured intent is kept too: the booking may still be cancelled and refunded.
    assert!(matches!(h.ok(Op::CancelBooking { booking: b.booking, user: "alice".into() }), Outcome::Cancelled { .. }));
}

#[test]
fn a_forgotten_hold_takes_its_declined_intents_and_reserved_booking_along() {
    let (mut h, event) = setup_with(Limits { hold_finished_age_secs_max: 60, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    h.ok(Op::FailPayment { intent: "pi-1".into(), reason: "declined".into(), release_hold: true });
    h.advance(60 * SEC);
    tick(&mut h);
    assert!(h.state.hold(r.hold, h.now).is_none());
    assert!(h.state.booking(booking, h.now).is_none());
    assert_eq!(
        h.err(Op::FailPayment { intent: "pi-1".into(), reason: "declined".into(), release_hold: false }),
        Rejection::PaymentNotFound
    );
}

#[test]
fn a_forgotten_hold_keeps_an_intent_that_still_owes_money() {
    let (mut h, event) = setup_with(Limits { hold_finished_age_secs_max: 60, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.advance(600 * SEC);
    assert!(matches!(h.ok(confirm_op(r.hold, "alice", "pi-1")), Outcome::NotBooked { .. }));
    h.advance(60 * SEC);
    tick(&mut h);
    assert!(h.state.hold(r.hold, h.now).is_none());
    let owed = h.state.payments_needing_action(0, None, 10);
    assert_eq!(owed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec!["pi-1"]);
    assert_eq!(h.ok(Op::RecordRefund { intent: "pi-1".into() }), Outcome::RefundRecorded { amount: 1_500_000 });
    // Nothing refers to the settled intent any more.
    assert!(!h.state.p.intents.contains_key("pi-1"));
}

#[test]
fn a_charge_confirmed_after_its_hold_was_forgotten_is_owed_back() {
    let (mut h, event) = setup_with(Limits { hold_finished_age_secs_max: 60, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    // The charge's outcome stays unknown while the hold runs out and is forgotten.
    h.advance(600 * SEC);
    h.sweep(10);
    h.advance(60 * SEC);
    tick(&mut h);
    assert!(h.state.hold(r.hold, h.now).is_none());
    assert_eq!(h.state.p.intents["pi-1"].state, IntentState::Pending);
    // The provider then reports the charge as taken: the money must be owed back.
    let (outcome, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1"));
    assert_eq!(outcome, Outcome::NotBooked { reason: Rejection::HoldNotFound, refund_due: 1_500_000 });
    assert_eq!(events, vec![DomainEvent::RefundDue { intent: "pi-1".into(), amount: 1_500_000 }]);
    assert_eq!(h.state.p.intents["pi-1"].state, IntentState::RefundDue);
}

#[test]
fn a_pending_intent_of_a_forgotten_hold_can_still_be_failed() {
    let (mut h, event) = setup_with(Limits { hold_finished_age_secs_max: 60, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.advance(600 * SEC);
    h.sweep(10);
    h.advance(60 * SEC);
    tick(&mut h);
    assert!(h.state.hold(r.hold, h.now).is_none());
    assert_eq!(
        h.ok(Op::FailPayment { intent: "pi-1".into(), reason: "not found".into(), release_hold: true }),
        Outcome::PaymentFailed { hold_released: false }
    );
    // Settled with its hold forgotten: nothing keeps it.
    assert!(!h.state.p.intents.contains_key("pi-1"));
}

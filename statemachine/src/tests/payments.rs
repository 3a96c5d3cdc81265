//! The payment saga: payment attempts, confirmation into bookings, declines,
//! charges that cannot become bookings, refunds, and what readers see.

use super::support::*;
use crate::*;

fn setup() -> (Harness, EventId) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

fn fail_op(intent: &str, release_hold: bool) -> Op {
    Op::FailPayment { intent: intent.into(), reason: "card_declined".into(), release_hold }
}

fn intent_state(h: &Harness, intent: &str) -> IntentState {
    h.state.p.intents[intent].state
}

#[test]
fn begin_payment_reserves_a_pending_booking() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let (outcome, events) = h.ok_fx(Op::BeginPayment { hold: r.hold, user: "alice".into(), intent: "pi-1".into() });
    let Outcome::PaymentStarted { booking, amount, currency } = outcome else { panic!("{outcome:?}") };
    assert_eq!(amount, 3_000_000);
    assert_eq!(currency, "INR");
    assert!(events.is_empty());
    let view = h.state.booking(booking, h.now).expect("a pending booking is visible");
    assert_eq!(view.status, BookingViewStatus::Pending);
    assert_eq!(view.hold, r.hold);
    assert_eq!(view.user, "alice");
    assert_eq!(view.seats, r.seats);
    assert_eq!(view.total_price, 3_000_000);
    assert!(view.tickets.is_empty());
    assert_eq!(h.state.hold(r.hold, h.now).unwrap().booking, Some(booking));
    assert_eq!(intent_state(&h, "pi-1"), IntentState::Pending);
    // The hold itself is untouched by the attempt.
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
}

#[test]
fn confirm_makes_a_booking_with_one_ticket_per_seat() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Balcony-1-1"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    let (outcome, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1"));
    let Outcome::Booked(receipt) = outcome else { panic!("{outcome:?}") };
    assert_eq!(receipt.booking, booking, "the booking gets the id reserved by the payment attempt");
    assert_eq!(receipt.event, event);
    assert_eq!(receipt.hold, r.hold);
    assert_eq!(receipt.seats, labels(&["Floor-A-2", "Balcony-1-1"]));
    assert_eq!(receipt.tickets.len(), 2);
    assert_eq!(receipt.tickets.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(), receipt.seats);
    assert_ne!(receipt.tickets[0].0, receipt.tickets[1].0);
    assert_eq!(receipt.total_price, 1_950_000);
    assert_eq!(receipt.currency, "INR");
    assert_eq!(
        events,
        vec![DomainEvent::SeatsBooked { event, booking, user: "alice".into(), seats: receipt.seats.clone() }]
    );
    for (ticket, seat) in &receipt.tickets {
        let t = h.state.ticket(*ticket).unwrap();
        assert_eq!(&t.seat, seat);
        assert_eq!(t.holder, "alice");
        assert_eq!(t.version, 1);
        assert_eq!(t.status, TicketStatus::Valid);
        assert_eq!(t.booking, booking);
        assert_eq!(h.seat_status(event, seat), SeatStatus::Booked);
    }
    assert_eq!(h.counts(event, "premium"), Counts { available: 18, held: 0, booked: 1, blocked: 1 });
    assert_eq!(h.hold_status(r.hold), HoldStatus::Confirmed);
    let view = h.state.booking(booking, h.now).unwrap();
    assert_eq!(view.status, BookingViewStatus::Confirmed);
    assert_eq!(view.tickets, receipt.tickets);
    assert_eq!(h.state.user_bookings("alice", h.now), vec![view]);
    assert_eq!(intent_state(&h, "pi-1"), IntentState::Captured);
    assert!(h.state.payments_needing_action(u64::MAX, None, 10).is_empty());
    assert!(h.state.user_holds("alice", h.now).is_empty());
}

#[test]
fn confirm_of_an_expired_hold_with_free_seats_owes_a_refund() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    h.advance(600 * SEC); // exactly the end of the lease
    let (outcome, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1"));
    assert_eq!(outcome, Outcome::NotBooked { reason: Rejection::HoldExpired, refund_due: 3_000_000 });
    assert_eq!(
        events,
        vec![
            DomainEvent::SeatsExpired { event, hold: r.hold, user: "alice".into(), seats: r.seats.clone() },
            DomainEvent::RefundDue { intent: "pi-1".into(), amount: 3_000_000 },
        ]
    );
    assert_eq!(intent_state(&h, "pi-1"), IntentState::RefundDue);
    let owed = h.state.payments_needing_action(0, None, 10);
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].id, "pi-1");
    assert_eq!(owed[0].state, IntentState::RefundDue);
    assert_eq!(owed[0].refund_amount, 3_000_000);
    assert_eq!(owed[0].hold, r.hold);
    assert_eq!(owed[0].booking, booking);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Failed);
    assert!(h.state.user_bookings("alice", h.now).is_empty());
}

#[test]
fn confirm_after_another_user_took_a_seat_is_seats_lost() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3", "Floor-A-4"]);
    h.begin(r.hold, "alice", "pi-1");
    h.advance(601 * SEC);
    h.hold(event, "bob", &["Floor-A-4", "Floor-A-5"]);
    h.hold(event, "carol", &["Floor-A-2"]);
    let (outcome, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1"));
    let reason = Rejection::SeatsLost { seats: labels(&["Floor-A-2", "Floor-A-4"]) };
    assert_eq!(reason.code(), "seats_lost");
    assert_eq!(outcome, Outcome::NotBooked { reason, refund_due: 4_500_000 });
    assert_eq!(events, vec![DomainEvent::RefundDue { intent: "pi-1".into(), amount: 4_500_000 }]);
    assert_eq!(intent_state(&h, "pi-1"), IntentState::RefundDue);
    assert_eq!(h.seat_status(event, "Floor-A-3"), SeatStatus::Available);
}

#[test]
fn confirm_by_another_user_is_forbidden() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    assert_eq!(h.err(confirm_op(r.hold, "bob", "pi-1")), Rejection::NotOwner);
    assert_eq!(intent_state(&h, "pi-1"), IntentState::Pending);
}

#[test]
fn begin_payment_by_another_user_is_forbidden() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    assert_eq!(
        h.err(Op::BeginPayment { hold: r.hold, user: "bob".into(), intent: "pi-1".into() }),
        Rejection::NotOwner
    );
}

#[test]
fn begin_payment_on_an_unknown_hold_is_not_found() {
    let (mut h, _) = setup();
    assert_eq!(
        h.err(Op::BeginPayment { hold: HoldId(9_999), user: "alice".into(), intent: "pi-1".into() }),
        Rejection::HoldNotFound
    );
}

#[test]
fn begin_payment_on_a_hold_that_is_not_live_is_refused() {
    let (mut h, event) = setup();
    let released = h.hold(event, "alice", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: released.hold, user: "alice".into() });
    assert_eq!(
        h.err(Op::BeginPayment { hold: released.hold, user: "alice".into(), intent: "pi-1".into() }),
        Rejection::HoldReleased
    );
    let booked = h.hold(event, "alice", &["Floor-A-3"]);
    h.book(booked.hold, "alice");
    assert_eq!(
        h.err(Op::BeginPayment { hold: booked.hold, user: "alice".into(), intent: "pi-2".into() }),
        Rejection::HoldConfirmed
    );
    let expired = h.hold(event, "alice", &["Floor-A-4"]);
    h.advance(600 * SEC);
    h.sweep(10);
    assert_eq!(
        h.err(Op::BeginPayment { hold: expired.hold, user: "alice".into(), intent: "pi-3".into() }),
        Rejection::HoldExpired
    );
}

#[test]
fn a_declined_payment_keeps_the_hold_and_a_retry_succeeds() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    let (outcome, events) = h.ok_fx(fail_op("pi-1", false));
    assert_eq!(outcome, Outcome::PaymentFailed { hold_released: false });
    assert!(events.is_empty());
    assert_eq!(intent_state(&h, "pi-1"), IntentState::Declined);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Held);
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Pending);
    // A charge captured on the declined intent after all does not book
    // (the intent no longer pays for the hold): the money is owed back...
    match h.ok(confirm_op(r.hold, "alice", "pi-1")) {
        Outcome::NotBooked { reason: Rejection::PaymentConflict(_), refund_due } => {
            assert_eq!(refund_due, r.total_price)
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(intent_state(&h, "pi-1"), IntentState::RefundDue);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
    // ...and a new attempt on the same hold can, under the same booking id.
    assert_eq!(h.begin(r.hold, "alice", "pi-2"), booking);
    let Outcome::Booked(receipt) = h.ok(confirm_op(r.hold, "alice", "pi-2")) else { panic!() };
    assert_eq!(receipt.booking, booking);
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Confirmed);
}

#[test]
fn fail_payment_with_release_hold_releases_the_hold() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    let (outcome, events) = h.ok_fx(fail_op("pi-1", true));
    assert_eq!(outcome, Outcome::PaymentFailed { hold_released: true });
    assert_eq!(
        events,
        vec![DomainEvent::SeatsReleased {
            event,
            hold: r.hold,
            user: "alice".into(),
            seats: r.seats.clone(),
            reason: ReleaseReason::PaymentFailed,
        }]
    );
    assert_eq!(h.hold_status(r.hold), HoldStatus::Released);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Failed);
}

#[test]
fn failing_a_declined_intent_again_is_an_idempotent_success() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.ok(fail_op("pi-1", false));
    let (outcome, events) = h.ok_fx(fail_op("pi-1", false));
    assert_eq!(outcome, Outcome::PaymentFailed { hold_released: false });
    assert!(events.is_empty());
}

#[test]
fn failing_a_captured_intent_is_a_conflict() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.ok(confirm_op(r.hold, "alice", "pi-1"));
    let err = h.err(fail_op("pi-1", true));
    assert!(matches!(err, Rejection::PaymentConflict(_)), "{err:?}");
    assert_eq!(err.code(), "payment_conflict");
}

#[test]
fn fail_payment_with_an_overlong_reason_is_invalid() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    let reason = "x".repeat(201);
    let err = h.err(Op::FailPayment { intent: "pi-1".into(), reason, release_hold: false });
    assert!(matches!(err, Rejection::InvalidRequest(_)), "{err:?}");
}

#[test]
fn payment_attempts_per_hold_are_bounded() {
    let mut h = Harness::with_limits(Limits { hold_payment_attempts_max: 2, ..Limits::default() });
    let venue = h.venue();
    let event = h.event(venue);
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    for intent in ["pi-1", "pi-2"] {
        h.begin(r.hold, "alice", intent);
        h.ok(fail_op(intent, false));
    }
    let err = h.err(Op::BeginPayment { hold: r.hold, user: "alice".into(), intent: "pi-3".into() });
    assert_eq!(err, Rejection::PaymentAttemptsExceeded { max: 2 });
    assert_eq!(err.code(), "payment_attempts_exceeded");
}

#[test]
fn unknown_intents_are_not_found() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(confirm_op(r.hold, "alice", "pi-missing"));
    assert_eq!(err, Rejection::PaymentNotFound);
    assert_eq!(err.code(), "payment_not_found");
    assert_eq!(h.err(fail_op("pi-missing", false)), Rejection::PaymentNotFound);
    assert_eq!(h.err(Op::RecordRefund { intent: "pi-missing".into() }), Rejection::PaymentNotFound);
}

#[test]
fn confirming_with_the_intent_of_another_hold_is_a_conflict() {
    let (mut h, event) = setup();
    let a = h.hold(event, "alice", &["Floor-A-2"]);
    let venue = h.state.event(event, h.now).unwrap().venue;
    let other = h.event(venue);
    let b = h.hold(other, "alice", &["Floor-A-2"]);
    h.begin(a.hold, "alice", "pi-a");
    let err = h.err(confirm_op(b.hold, "alice", "pi-a"));
    assert!(matches!(err, Rejection::PaymentConflict(ref m) if m.contains("another hold")), "{err:?}");
    assert_eq!(h.hold_status(b.hold), HoldStatus::Active);
}

#[test]
fn a_second_begin_with_an_existing_intent_id_is_a_conflict() {
    let (mut h, event) = setup();
    let a = h.hold(event, "alice", &["Floor-A-2"]);
    let b = h.hold(event, "bob", &["Floor-A-3"]);
    h.begin(a.hold, "alice", "pi-1");
    let err = h.err(Op::BeginPayment { hold: a.hold, user: "alice".into(), intent: "pi-1".into() });
    assert!(matches!(err, Rejection::PaymentConflict(_)), "{err:?}");
    let err = h.err(Op::BeginPayment { hold: b.hold, user: "bob".into(), intent: "pi-1".into() });
    assert!(matches!(err, Rejection::PaymentConflict(_)), "{err:?}");
    assert_eq!(h.state.p.holds[&a.hold].intents, vec!["pi-1".into()]);
    assert!(h.state.p.holds[&b.hold].intents.is_empty());
}

#[test]
fn confirming_a_captured_intent_again_returns_the_same_receipt() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    h.begin(r.hold, "alice", "pi-1");
    let first = h.ok(confirm_op(r.hold, "alice", "pi-1"));
    assert!(matches!(first, Outcome::Booked(_)));
    let before = h.state.snapshot();
    let (again, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1"));
    assert_eq!(again, first);
    assert!(events.is_empty());
    assert_same_domain(&before, &h.state);
    assert_eq!(h.state.p.bookings.len(), 1);
}

#[test]
fn a_second_pending_intent_confirmed_after_the_first_owes_its_refund() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.begin(r.hold, "alice", "pi-2");
    h.ok(confirm_op(r.hold, "alice", "pi-1"));
    let (outcome, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-2"));
    assert_eq!(outcome, Outcome::NotBooked { reason: Rejection::HoldConfirmed, refund_due: 1_500_000 });
    assert_eq!(events, vec![DomainEvent::RefundDue { intent: "pi-2".into(), amount: 1_500_000 }]);
    assert_eq!(intent_state(&h, "pi-1"), IntentState::Captured);
    assert_eq!(intent_state(&h, "pi-2"), IntentState::RefundDue);
}

#[test]
fn record_refund_settles_a_refund_due_and_is_idempotent() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.advance(600 * SEC);
    h.ok(confirm_op(r.hold, "alice", "pi-1"));
    let (outcome, events) = h.ok_fx(Op::RecordRefund { intent: "pi-1".into() });
    assert_eq!(outcome, Outcome::RefundRecorded { amount: 1_500_000 });
    assert!(events.is_empty());
    assert_eq!(intent_state(&h, "pi-1"), IntentState::Refunded);
    assert!(h.state.payments_needing_action(u64::MAX, None, 10).is_empty());
    // A new request recording the same refund changes nothing.
    let before = h.state.snapshot();
    assert_eq!(h.ok(Op::RecordRefund { intent: "pi-1".into() }), Outcome::RefundRecorded { amount: 1_500_000 });
    assert_same_domain(&before, &h.state);
}

#[test]
fn record_refund_on_an_intent_that_owes_nothing_is_a_conflict() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    let err = h.err(Op::RecordRefund { intent: "pi-1".into() });
    assert!(matches!(err, Rejection::PaymentConflict(_)), "{err:?}");
    h.ok(confirm_op(r.hold, "alice", "pi-1"));
    let err = h.err(Op::RecordRefund { intent: "pi-1".into() });
    assert!(matches!(err, Rejection::PaymentConflict(_)), "{err:?}");
}

#[test]
fn a_pending_booking_fails_once_the_hold_is_gone_and_no_charge_is_pending() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    h.advance(600 * SEC);
    // The hold ran out but the charge's outcome is still unknown.
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Pending);
    h.sweep(10);
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Pending);
    let view = h.state.payments_needing_action(h.now, None, 10);
    assert_eq!(view.iter().map(|i| (i.id.as_str(), i.state)).collect::<Vec<_>>(), vec![("pi-1", IntentState::Pending)]);
    h.ok(fail_op("pi-1", false));
    let view = h.state.booking(booking, h.now).unwrap();
    assert_eq!(view.status, BookingViewStatus::Failed);
    assert_eq!(view.status.as_str(), "failed");
}

#[test]
fn a_pending_booking_of_a_live_hold_stays_pending_after_a_decline() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    h.ok(fail_op("pi-1", false));
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Pending);
    h.advance(600 * SEC);
    // Read-time expiry: no command ran, yet the booking can no longer happen.
    assert_eq!(h.state.booking(booking, h.now).unwrap().status, BookingViewStatus::Failed);
}

#[test]
fn pending_charges_need_action_only_once_old_enough() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let started = h.now;
    h.begin(r.hold, "alice", "pi-1");
    assert!(h.state.payments_needing_action(started - 1, None, 10).is_empty());
    let due = h.state.payments_needing_action(started, None, 10);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].amount, 1_500_000);
    assert_eq!(due[0].user, "alice");
    assert_eq!(due[0].updated_at_ms, started);
}

#[test]
fn payment_intents_max_is_enforced() {
    let mut h = Harness::with_limits(Limits { payment_intents_max: 1, ..Limits::default() });
    let venue = h.venue();
    let event = h.event(venue);
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.begin(r.hold, "alice", "pi-1");
    h.ok(fail_op("pi-1", false));
    let err = h.err(Op::BeginPayment { hold: r.hold, user: "alice".into(), intent: "pi-2".into() });
    assert_eq!(err, Rejection::LimitReached("payment_intents_max = 1".into()));
}

#[test]
fn bookings_max_is_enforced_when_paying() {
    let mut h = Harness::with_limits(Limits { bookings_max: 1, ..Limits::default() });
    let venue = h.venue();
    let event = h.event(venue);
    let a = h.hold(event, "alice", &["Floor-A-2"]);
    h.book(a.hold, "alice");
    let b = h.hold(event, "bob", &["Floor-A-3"]);
    let err = h.err(Op::BeginPayment { hold: b.hold, user: "bob".into(), intent: "pi-b".into() });
    assert_eq!(err, Rejection::LimitReached("bookings_max = 1".into()));
}

#[test]
fn bookings_max_reached_between_payment_and_confirmation_owes_a_refund() {
    let mut h = Harness::with_limits(Limits { bookings_max: 1, ..Limits::default() });
    let venue = h.venue();
    let event = h.event(venue);
    let a = h.hold(event, "alice", &["Floor-A-2"]);
    let b = h.hold(event, "bob", &["Floor-A-3"]);
    h.begin(a.hold, "alice", "pi-a");
    h.begin(b.hold, "bob", "pi-b");
    h.ok(confirm_op(a.hold, "alice", "pi-a"));
    let (outcome, events) = h.ok_fx(confirm_op(b.hold, "bob", "pi-b"));
    assert_eq!(
        outcome,
        Outcome::NotBooked { reason: Rejection::LimitReached("bookings_max = 1".into()), refund_due: 1_500_000 }
    );
    assert_eq!(events, vec![DomainEvent::RefundDue { intent: "pi-b".into(), amount: 1_500_000 }]);
    assert_eq!(h.hold_status(b.hold), HoldStatus::Active, "the hold is left for its lease to run out");
}

#[test]
fn an_empty_intent_id_is_invalid() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(Op::BeginPayment { hold: r.hold, user: "alice".into(), intent: String::new() });
    assert!(matches!(err, Rejection::InvalidRequest(_)), "{err:?}");
}

#[test]
fn a_charge_captured_after_its_intent_failed_is_owed_back_through_the_log() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    h.begin(r.hold, "alice", "pi-slow");
    // The reconciler found nothing charged yet and gave the hold up.
    h.ok(fail_op("pi-slow", true));
    assert_eq!(h.hold_status(r.hold), HoldStatus::Released);
    let (outcome, events) = h.ok_fx(confirm_op(r.hold, "alice", "pi-slow"));
    assert_eq!(outcome, Outcome::NotBooked { reason: Rejection::HoldReleased, refund_due: r.total_price });
    assert_eq!(events, vec![DomainEvent::RefundDue { intent: "pi-slow".into(), amount: r.total_price }]);
    let owed = h.state.payments_needing_action(0, None, 10);
    assert_eq!(owed.len(), 1);
    assert_eq!(
        (owed[0].id.as_str(), owed[0].state, owed[0].refund_amount),
        ("pi-slow", IntentState::RefundDue, r.total_price)
    );
    assert_eq!(h.ok(Op::RecordRefund { intent: "pi-slow".into() }), Outcome::RefundRecorded { amount: r.total_price });
    assert!(h.state.payments_needing_action(u64::MAX, None, 10).is_empty());
    // A second confirm finds the refund owed, not a new one.
    assert!(matches!(h.err(confirm_op(r.hold, "alice", "pi-slow")), Rejection::PaymentConflict(_)));
}

#[test]
fn the_reconciler_pages_past_any_number_of_stuck_intents() {
    let mut h = Harness::new();
    let event = h.rows_event(&[200], |_| {});
    let attempts = h.state.limits().hold_payment_attempts_max as usize;
    let mut stuck = 0;
    for u in 0..1000 / attempts {
        let user = format!("m{u}");
        let hold = h.hold(event, &user, &[&format!("S-1-{}", u + 1)]).hold;
        for k in 0..attempts {
            h.begin(hold, &user, &format!("pi-a-{u:04}-{k}"));
            stuck += 1;
        }
    }
    assert_eq!(stuck, 1000);
    let victim = h.hold(event, "victim", &["S-1-200"]).hold;
    h.begin(victim, "victim", "pi-z");
    let first = h.state.payments_needing_action(h.now, None, 100);
    assert!(first.iter().all(|i| i.id != "pi-z"), "the stuck intents fill the first page");
    let (mut after, mut seen, mut pages) = (None::<String>, Vec::new(), 0);
    while pages < 20 {
        let page = h.state.payments_needing_action(h.now, after.as_deref(), 100);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|i| i.id));
        pages += 1;
    }
    assert_eq!(pages, 11);
    assert_eq!(seen.len(), 1001);
    assert_eq!(seen.last().map(String::as_str), Some("pi-z"), "paging reaches the intent behind the stuck ones");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "each intent once, in order");
}

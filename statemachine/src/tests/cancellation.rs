//! Cancellation under the event's refund policy, at the entry's time.

use super::support::*;
use crate::*;

/// An event starting 48 h from now and a booking of two premium seats
/// (3 000 000) made at the start of the test.
fn booked(edit: impl FnOnce(&mut EventSpec)) -> (Harness, EventId, BookingReceipt) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, edit);
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let receipt = h.book(r.hold, "alice");
    (h, event, receipt)
}

fn cancel_op(booking: BookingId, user: &str) -> Op {
    Op::CancelBooking { booking, user: user.into() }
}

/// Lets `h` reach its clock with a command that changes no booking, so that
/// the pruning of finished holds (which time drives) is not mistaken for a
/// change made by the rejection that follows.
fn settle(h: &mut Harness) {
    h.sweep(0);
}

#[test]
fn cancelling_24_hours_or_more_before_the_start_refunds_everything() {
    let (mut h, event, b) = booked(|_| {});
    h.advance(24 * HOUR); // exactly 24 h before the start
    let (outcome, events) = h.ok_fx(cancel_op(b.booking, "alice"));
    assert_eq!(outcome, Outcome::Cancelled { booking: b.booking, refund_percent: 100, refund_amount: 3_000_000 });
    assert_eq!(
        events,
        vec![
            DomainEvent::BookingCancelled {
                event,
                booking: b.booking,
                user: "alice".into(),
                seats: b.seats.clone(),
                refund_amount: 3_000_000,
            },
            DomainEvent::RefundDue { intent: h.state.p.bookings[&b.booking].intent.to_string(), amount: 3_000_000 },
        ]
    );
}

#[test]
fn cancelling_just_under_24_hours_before_refunds_half() {
    let (mut h, _, b) = booked(|_| {});
    h.advance(24 * HOUR + 1);
    assert_eq!(
        h.ok(cancel_op(b.booking, "alice")),
        Outcome::Cancelled { booking: b.booking, refund_percent: 50, refund_amount: 1_500_000 }
    );
}

#[test]
fn cancelling_exactly_2_hours_before_refunds_half() {
    let (mut h, _, b) = booked(|_| {});
    h.advance(46 * HOUR);
    assert_eq!(
        h.ok(cancel_op(b.booking, "alice")),
        Outcome::Cancelled { booking: b.booking, refund_percent: 50, refund_amount: 1_500_000 }
    );
}

#[test]
fn cancelling_under_2_hours_before_is_closed() {
    let (mut h, event, b) = booked(|_| {});
    h.advance(46 * HOUR + 1);
    settle(&mut h);
    let err = h.err(cancel_op(b.booking, "alice"));
    assert_eq!(err, Rejection::CancellationClosed);
    assert_eq!(err.code(), "cancellation_closed");
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Booked);
    assert_eq!(h.state.booking(b.booking, h.now).unwrap().status, BookingViewStatus::Confirmed);
}

#[test]
fn cancelling_after_the_start_is_closed() {
    let (mut h, _, b) = booked(|_| {});
    h.advance(49 * HOUR);
    settle(&mut h);
    assert_eq!(h.err(cancel_op(b.booking, "alice")), Rejection::CancellationClosed);
}

#[test]
fn a_custom_policy_is_applied_and_the_refund_rounds_down() {
    let (mut h, _, b) = booked(|s| {
        s.prices = vec![("premium".into(), 1_001), ("regular".into(), 1)];
        s.refund_policy = Some(vec![
            RefundTier { min_hours_before: 0, percent: 10 },
            RefundTier { min_hours_before: 72, percent: 90 },
            RefundTier { min_hours_before: 6, percent: 25 },
        ]);
    });
    h.advance(38 * HOUR); // 10 h before the start: the 6 h tier
    assert_eq!(
        h.ok(cancel_op(b.booking, "alice")),
        // 25 % of 2002 is 500.5: the refund never exceeds the tier.
        Outcome::Cancelled { booking: b.booking, refund_percent: 25, refund_amount: 500 }
    );
}

#[test]
fn a_zero_hour_tier_allows_cancelling_until_just_before_the_start() {
    let (mut h, _, b) = booked(|s| s.refund_policy = Some(vec![RefundTier { min_hours_before: 0, percent: 10 }]));
    h.advance(48 * HOUR - 1);
    assert_eq!(
        h.ok(cancel_op(b.booking, "alice")),
        Outcome::Cancelled { booking: b.booking, refund_percent: 10, refund_amount: 300_000 }
    );
}

#[test]
fn a_zero_hour_tier_does_not_allow_cancelling_once_the_event_started() {
    let (mut h, _, b) = booked(|s| s.refund_policy = Some(vec![RefundTier { min_hours_before: 0, percent: 10 }]));
    // At the start time the event has started (holds are no longer on sale then).
    h.advance(48 * HOUR);
    settle(&mut h);
    assert_eq!(h.err(cancel_op(b.booking, "alice")), Rejection::CancellationClosed);
}

#[test]
fn an_empty_policy_never_allows_cancelling() {
    let (mut h, _, b) = booked(|s| s.refund_policy = Some(vec![]));
    assert_eq!(h.err(cancel_op(b.booking, "alice")), Rejection::CancellationClosed);
}

#[test]
fn cancelling_frees_the_seats_in_the_same_command() {
    let (mut h, event, b) = booked(|_| {});
    h.ok(cancel_op(b.booking, "alice"));
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.seat_status(event, "Floor-A-3"), SeatStatus::Available);
    assert_eq!(h.counts(event, "premium"), Counts { available: 19, held: 0, booked: 0, blocked: 1 });
    let view = h.state.booking(b.booking, h.now).unwrap();
    assert_eq!(view.status, BookingViewStatus::Cancelled);
    assert_eq!(view.refund_percent, 100);
    assert_eq!(view.refund_amount, 3_000_000);
    for (ticket, _) in &b.tickets {
        assert_eq!(h.state.ticket(*ticket).unwrap().status, TicketStatus::Cancelled);
    }
    // The very next command can take the seats.
    h.hold(event, "bob", &["Floor-A-2", "Floor-A-3"]);
}

#[test]
fn a_refund_leaves_a_refund_due_intent() {
    let (mut h, _, b) = booked(|_| {});
    let intent = h.state.p.bookings[&b.booking].intent.to_string();
    h.ok(cancel_op(b.booking, "alice"));
    let owed = h.state.payments_needing_action(0, None, 10);
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].id, intent);
    assert_eq!(owed[0].state, IntentState::RefundDue);
    assert_eq!(owed[0].refund_amount, 3_000_000);
    assert_eq!(h.ok(Op::RecordRefund { intent: intent.clone() }), Outcome::RefundRecorded { amount: 3_000_000 });
    assert_eq!(h.state.p.intents[intent.as_str()].state, IntentState::Refunded);
    assert!(h.state.payments_needing_action(u64::MAX, None, 10).is_empty());
}

#[test]
fn a_zero_refund_leaves_the_charge_captured() {
    let (mut h, _, b) = booked(|s| s.refund_policy = Some(vec![RefundTier { min_hours_before: 1, percent: 0 }]));
    let intent = h.state.p.bookings[&b.booking].intent.to_string();
    let (outcome, events) = h.ok_fx(cancel_op(b.booking, "alice"));
    assert_eq!(outcome, Outcome::Cancelled { booking: b.booking, refund_percent: 0, refund_amount: 0 });
    assert_eq!(events.len(), 1, "no RefundDue for nothing: {events:?}");
    assert_eq!(h.state.p.intents[intent.as_str()].state, IntentState::Captured);
    assert!(h.state.payments_needing_action(u64::MAX, None, 10).is_empty());
}

#[test]
fn cancelling_twice_is_already_cancelled() {
    let (mut h, _, b) = booked(|_| {});
    h.ok(cancel_op(b.booking, "alice"));
    let err = h.err(cancel_op(b.booking, "alice"));
    assert_eq!(err, Rejection::AlreadyCancelled);
    assert_eq!(err.code(), "already_cancelled");
}

#[test]
fn cancelling_another_users_booking_is_forbidden() {
    let (mut h, _, b) = booked(|_| {});
    assert_eq!(h.err(cancel_op(b.booking, "bob")), Rejection::NotOwner);
}

#[test]
fn cancelling_an_unknown_booking_is_not_found() {
    let (mut h, _, b) = booked(|_| {});
    let err = h.err(cancel_op(BookingId(b.booking.0 + 1000), "alice"));
    assert_eq!(err, Rejection::BookingNotFound);
    assert_eq!(err.code(), "booking_not_found");
}

#[test]
fn a_pending_booking_cannot_be_cancelled() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let booking = h.begin(r.hold, "alice", "pi-1");
    assert_eq!(h.err(cancel_op(booking, "alice")), Rejection::BookingNotFound);
}

#[test]
fn a_checked_in_ticket_blocks_cancellation() {
    let (mut h, _, b) = booked(|_| {});
    h.ok(Op::CheckIn { ticket: b.tickets[1].0, version: 1 });
    let err = h.err(cancel_op(b.booking, "alice"));
    assert_eq!(err, Rejection::TicketUsed);
    assert_eq!(err.code(), "ticket_used");
}

#[test]
fn a_transferred_ticket_blocks_cancellation() {
    let (mut h, _, b) = booked(|_| {});
    h.ok(Op::TransferTicket { ticket: b.tickets[0].0, user: "alice".into(), to_user: "bob".into() });
    let err = h.err(cancel_op(b.booking, "alice"));
    assert_eq!(err, Rejection::TicketTransferred);
    assert_eq!(err.code(), "ticket_transferred");
    // The new holder does not own the booking either.
    assert_eq!(h.err(cancel_op(b.booking, "bob")), Rejection::NotOwner);
}

#[test]
fn a_ticket_transferred_back_no_longer_blocks_cancellation() {
    let (mut h, _, b) = booked(|_| {});
    let ticket = b.tickets[0].0;
    h.ok(Op::TransferTicket { ticket, user: "alice".into(), to_user: "bob".into() });
    h.ok(Op::TransferTicket { ticket, user: "bob".into(), to_user: "alice".into() });
    assert!(matches!(h.ok(cancel_op(b.booking, "alice")), Outcome::Cancelled { refund_percent: 100, .. }));
}

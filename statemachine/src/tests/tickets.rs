//! Tickets: transfer (a new version kills the old code) and check-in.

use super::support::*;
use crate::*;

/// A confirmed booking of Floor-A-2 and Floor-A-3 for alice; returns its tickets.
fn booked() -> (Harness, EventId, BookingReceipt) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let b = h.book(r.hold, "alice");
    (h, event, b)
}

fn transfer_op(ticket: TicketId, user: &str, to_user: &str) -> Op {
    Op::TransferTicket { ticket, user: user.into(), to_user: to_user.into() }
}

#[test]
fn transfer_bumps_the_version_and_changes_the_holder() {
    let (mut h, event, b) = booked();
    let ticket = b.tickets[0].0;
    let (outcome, events) = h.ok_fx(transfer_op(ticket, "alice", "bob"));
    assert_eq!(outcome, Outcome::Transferred { ticket, version: 2 });
    assert_eq!(
        events,
        vec![DomainEvent::TicketTransferred { event, ticket, from: "alice".into(), to: "bob".into(), version: 2 }]
    );
    let view = h.state.ticket(ticket).unwrap();
    assert_eq!(view.holder, "bob");
    assert_eq!(view.version, 2);
    assert_eq!(view.status, TicketStatus::Valid);
    // The other ticket of the booking is untouched.
    let other = h.state.ticket(b.tickets[1].0).unwrap();
    assert_eq!((other.holder.as_str(), other.version), ("alice", 1));
    // The new holder may pass it on.
    assert_eq!(h.ok(transfer_op(ticket, "bob", "carol")), Outcome::Transferred { ticket, version: 3 });
}

#[test]
fn the_old_version_no_longer_checks_in() {
    let (mut h, event, b) = booked();
    let ticket = b.tickets[0].0;
    h.ok(transfer_op(ticket, "alice", "bob"));
    let err = h.err(Op::CheckIn { ticket, version: 1 });
    assert_eq!(err, Rejection::StaleTicket { current: 2 });
    assert_eq!(err.code(), "invalid_ticket");
    assert_eq!(
        h.ok(Op::CheckIn { ticket, version: 2 }),
        Outcome::CheckedIn { ticket, event, seat: "Floor-A-2".into() }
    );
}

#[test]
fn a_version_from_the_future_does_not_check_in() {
    let (mut h, _, b) = booked();
    assert_eq!(h.err(Op::CheckIn { ticket: b.tickets[0].0, version: 2 }), Rejection::StaleTicket { current: 1 });
}

#[test]
fn transfer_by_someone_other_than_the_holder_is_forbidden() {
    let (mut h, _, b) = booked();
    let ticket = b.tickets[0].0;
    assert_eq!(h.err(transfer_op(ticket, "mallory", "bob")), Rejection::NotOwner);
    h.ok(transfer_op(ticket, "alice", "bob"));
    // The booking's owner is no longer the holder.
    assert_eq!(h.err(transfer_op(ticket, "alice", "carol")), Rejection::NotOwner);
}

#[test]
fn transfer_of_a_used_ticket_is_refused() {
    let (mut h, _, b) = booked();
    let ticket = b.tickets[0].0;
    h.ok(Op::CheckIn { ticket, version: 1 });
    let err = h.err(transfer_op(ticket, "alice", "bob"));
    assert_eq!(err, Rejection::TicketUsed);
    assert_eq!(err.code(), "ticket_used");
}

#[test]
fn transfer_of_a_cancelled_ticket_is_refused() {
    let (mut h, _, b) = booked();
    h.ok(Op::CancelBooking { booking: b.booking, user: "alice".into() });
    let err = h.err(transfer_op(b.tickets[0].0, "alice", "bob"));
    assert_eq!(err, Rejection::TicketCancelled);
    assert_eq!(err.code(), "ticket_cancelled");
}

#[test]
fn transfer_to_oneself_is_invalid() {
    let (mut h, _, b) = booked();
    let err = h.err(transfer_op(b.tickets[0].0, "alice", "alice"));
    assert!(matches!(err, Rejection::InvalidRequest(_)), "{err:?}");
}

#[test]
fn transfer_to_an_empty_user_is_invalid() {
    let (mut h, _, b) = booked();
    assert!(matches!(h.err(transfer_op(b.tickets[0].0, "alice", "")), Rejection::InvalidRequest(_)));
}

#[test]
fn check_in_succeeds_once_and_a_second_scan_reports_the_first() {
    let (mut h, event, b) = booked();
    let ticket = b.tickets[1].0;
    h.advance(47 * HOUR);
    let first_scan = h.now;
    let (outcome, events) = h.ok_fx(Op::CheckIn { ticket, version: 1 });
    assert_eq!(outcome, Outcome::CheckedIn { ticket, event, seat: "Floor-A-3".into() });
    assert_eq!(events, vec![DomainEvent::TicketCheckedIn { event, ticket }]);
    let view = h.state.ticket(ticket).unwrap();
    assert_eq!(view.status, TicketStatus::Used);
    assert_eq!(view.checked_in_at_ms, Some(first_scan));
    h.advance(5 * 60 * SEC);
    let err = h.err(Op::CheckIn { ticket, version: 1 });
    assert_eq!(err, Rejection::AlreadyCheckedIn { at_ms: first_scan });
    assert_eq!(err.code(), "already_checked_in");
    // The other ticket of the booking is still good.
    h.ok(Op::CheckIn { ticket: b.tickets[0].0, version: 1 });
}

#[test]
fn check_in_of_a_cancelled_ticket_is_refused() {
    let (mut h, _, b) = booked();
    h.ok(Op::CancelBooking { booking: b.booking, user: "alice".into() });
    assert_eq!(h.err(Op::CheckIn { ticket: b.tickets[0].0, version: 1 }), Rejection::TicketCancelled);
}

#[test]
fn unknown_tickets_are_not_found() {
    let (mut h, _, b) = booked();
    let missing = TicketId(b.tickets[1].0 .0 + 1000);
    let err = h.err(Op::CheckIn { ticket: missing, version: 1 });
    assert_eq!(err, Rejection::TicketNotFound);
    assert_eq!(err.code(), "ticket_not_found");
    assert_eq!(h.err(transfer_op(missing, "alice", "bob")), Rejection::TicketNotFound);
    assert!(h.state.ticket(missing).is_none());
}

//! Domain events: each command emits exactly the right events, in order.

use super::support::*;
use crate::*;

fn setup() -> (Harness, EventId) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

#[test]
fn create_venue_and_event_emit_their_creation() {
    let mut h = Harness::new();
    let (Outcome::VenueCreated { venue, .. }, fx) = h.ok_fx(Op::CreateVenue(small_venue())) else { panic!() };
    assert_eq!(fx, vec![DomainEvent::VenueCreated { venue }]);
    let (Outcome::EventCreated { event }, fx) = h.ok_fx(Op::CreateEvent(event_spec(venue, h.now))) else { panic!() };
    assert_eq!(fx, vec![DomainEvent::EventCreated { event }]);
}

#[test]
fn hold_emits_seats_held() {
    let (mut h, event) = setup();
    let (Outcome::Held(r), fx) = h.ok_fx(best_op(event, "alice", 2, "regular", true)) else { panic!() };
    assert_eq!(
        fx,
        vec![DomainEvent::SeatsHeld {
            event,
            hold: r.hold,
            user: "alice".into(),
            seats: r.seats,
            origin: HoldOrigin::User
        }]
    );
}

#[test]
fn release_emits_seats_released_with_its_reason() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    let (_, fx) = h.ok_fx(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    assert_eq!(
        fx,
        vec![DomainEvent::SeatsReleased {
            event,
            hold: r.hold,
            user: "alice".into(),
            seats: labels(&["Floor-B-5"]),
            reason: ReleaseReason::Released
        }]
    );
}

#[test]
fn a_failed_payment_that_gives_up_the_hold_emits_seats_released_for_payment() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    h.begin(r.hold, "alice", "pi-1");
    let (_, fx) = h.ok_fx(Op::FailPayment { intent: "pi-1".into(), reason: "timeout".into(), release_hold: true });
    assert_eq!(
        fx,
        vec![DomainEvent::SeatsReleased {
            event,
            hold: r.hold,
            user: "alice".into(),
            seats: labels(&["Floor-B-5"]),
            reason: ReleaseReason::PaymentFailed
        }]
    );
}

#[test]
fn expiry_emits_seats_expired_before_the_commands_own_events() {
    let (mut h, event) = setup();
    let a = h.hold(event, "alice", &["Floor-B-5"]);
    h.advance(600 * SEC);
    let (Outcome::Held(b), fx) = h.ok_fx(hold_op(event, "bob", &["Floor-B-6"])) else { panic!() };
    assert_eq!(
        fx,
        vec![
            DomainEvent::SeatsExpired { event, hold: a.hold, user: "alice".into(), seats: labels(&["Floor-B-5"]) },
            DomainEvent::SeatsHeld {
                event,
                hold: b.hold,
                user: "bob".into(),
                seats: labels(&["Floor-B-6"]),
                origin: HoldOrigin::User
            },
        ]
    );
    assert!(fx[0].is_time_driven());
    assert!(!fx[1].is_time_driven());
}

#[test]
fn begin_payment_emits_nothing_and_confirm_emits_seats_booked() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5", "Floor-B-6"]);
    let (_, fx) = h.ok_fx(Op::BeginPayment { hold: r.hold, user: "alice".into(), intent: "pi-1".into() });
    assert!(fx.is_empty());
    let (Outcome::Booked(b), fx) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1")) else { panic!() };
    assert_eq!(
        fx,
        vec![DomainEvent::SeatsBooked { event, booking: b.booking, user: "alice".into(), seats: b.seats.clone() }]
    );
}

#[test]
fn cancel_emits_booking_cancelled_then_refund_due() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    let b = h.book(r.hold, "alice");
    let intent = h.state.p.bookings[&b.booking].intent.to_string();
    h.advance(30 * HOUR); // 18 h before the start: half back
    let (_, fx) = h.ok_fx(Op::CancelBooking { booking: b.booking, user: "alice".into() });
    assert_eq!(
        fx,
        vec![
            DomainEvent::BookingCancelled {
                event,
                booking: b.booking,
                user: "alice".into(),
                seats: labels(&["Floor-B-5"]),
                refund_amount: 750_000
            },
            DomainEvent::RefundDue { intent, amount: 750_000 },
        ]
    );
}

#[test]
fn transfer_and_check_in_emit_their_events() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    let ticket = h.book(r.hold, "alice").tickets[0].0;
    let (_, fx) = h.ok_fx(Op::TransferTicket { ticket, user: "alice".into(), to_user: "bob".into() });
    assert_eq!(
        fx,
        vec![DomainEvent::TicketTransferred { event, ticket, from: "alice".into(), to: "bob".into(), version: 2 }]
    );
    let (_, fx) = h.ok_fx(Op::CheckIn { ticket, version: 2 });
    assert_eq!(fx, vec![DomainEvent::TicketCheckedIn { event, ticket }]);
}

#[test]
fn a_charge_that_cannot_book_emits_refund_due() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    h.begin(r.hold, "alice", "pi-1");
    h.advance(600 * SEC);
    h.sweep(10);
    let (_, fx) = h.ok_fx(confirm_op(r.hold, "alice", "pi-1"));
    assert_eq!(fx, vec![DomainEvent::RefundDue { intent: "pi-1".into(), amount: 1_500_000 }]);
}

#[test]
fn a_release_with_a_waitlist_emits_the_offer_after_the_release() {
    let mut h = Harness::new();
    let event = h.rows_event(&[2], |_| {});
    let a = h.hold(event, "alice", &["S-1-1", "S-1-2"]);
    let (entry, _) = h.join(event, "bob", 1, "std");
    let (_, fx) = h.ok_fx(Op::ReleaseHold { hold: a.hold, user: "alice".into() });
    assert_eq!(fx.len(), 3, "{fx:?}");
    assert!(matches!(fx[0], DomainEvent::SeatsReleased { .. }));
    let DomainEvent::SeatsHeld { hold, ref user, origin: HoldOrigin::Waitlist, .. } = fx[1] else { panic!("{fx:?}") };
    assert_eq!(user, "bob");
    assert_eq!(fx[2], DomainEvent::WaitlistOffered { event, waitlist: entry, user: "bob".into(), hold });
    assert!(fx[1].is_time_driven() && fx[2].is_time_driven());
}

#[test]
fn commands_that_change_no_seats_emit_nothing() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    h.advance(590 * SEC);
    let (_, fx) = h.ok_fx(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 60 });
    assert!(fx.is_empty());
    h.begin(r.hold, "alice", "pi-1");
    let (_, fx) = h.ok_fx(Op::FailPayment { intent: "pi-1".into(), reason: "declined".into(), release_hold: false });
    assert!(fx.is_empty());
    let (_, fx) = h.ok_fx(Op::ExpireHolds { holds_max: 10 });
    assert!(fx.is_empty());
    let mut w = Harness::new();
    let e = w.rows_event(&[1], |_| {});
    w.hold(e, "alice", &["S-1-1"]);
    let (Outcome::WaitlistJoined { waitlist, .. }, fx) =
        w.ok_fx(Op::JoinWaitlist { event: e, user: "bob".into(), count: 1, category: "std".into() })
    else {
        panic!()
    };
    assert!(fx.is_empty());
    let (_, fx) = w.ok_fx(Op::LeaveWaitlist { waitlist, user: "bob".into() });
    assert!(fx.is_empty());
}

#[test]
fn record_refund_emits_nothing() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-B-5"]);
    let b = h.book(r.hold, "alice");
    let intent = h.state.p.bookings[&b.booking].intent.to_string();
    h.ok(Op::CancelBooking { booking: b.booking, user: "alice".into() });
    let (_, fx) = h.ok_fx(Op::RecordRefund { intent });
    assert!(fx.is_empty());
}

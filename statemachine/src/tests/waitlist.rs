//! Waitlists: joining a sold-out event, leaving, and offers of freed seats
//! (FIFO, first fit) made in the same command that frees them.

use super::support::*;
use crate::*;

/// Stalls (`std`, row A of 4 seats) and Box (`vip`, row 1 of 2 seats).
fn venue_spec() -> VenueSpec {
    VenueSpec {
        name: "NCPA".into(),
        city: "Mumbai".into(),
        region: "ap-south".into(),
        sections: vec![
            SectionSpec {
                name: "Stalls".into(),
                category: "std".into(),
                rows: vec![RowSpec { label: "A".into(), seats: 4 }],
            },
            SectionSpec {
                name: "Box".into(),
                category: "vip".into(),
                rows: vec![RowSpec { label: "1".into(), seats: 2 }],
            },
        ],
        blocked_seats: vec![],
        accessible_seats: vec![],
    }
}

const ALL_STALLS: [&str; 4] = ["Stalls-A-1", "Stalls-A-2", "Stalls-A-3", "Stalls-A-4"];

fn setup_with(limits: Limits, edit: impl FnOnce(&mut EventSpec)) -> (Harness, EventId) {
    let mut h = Harness::with_limits(limits);
    let venue = h.venue_with(venue_spec());
    let event = h.event_with(venue, |s| {
        s.prices = vec![("std".into(), 1_000), ("vip".into(), 5_000)];
        edit(s)
    });
    (h, event)
}

fn setup() -> (Harness, EventId) {
    setup_with(Limits::default(), |_| {})
}

fn join_op(event: EventId, user: &str, count: u32, category: &str) -> Op {
    Op::JoinWaitlist { event, user: user.into(), count, category: category.into() }
}

/// The offer events for `user` among `events`: (hold, its seats).
fn offer_to(events: &[DomainEvent], user: &str) -> Option<(HoldId, Vec<String>)> {
    events.iter().find_map(|e| match e {
        DomainEvent::SeatsHeld { hold, user: u, seats, origin: HoldOrigin::Waitlist, .. } if u == user => {
            Some((*hold, seats.clone()))
        }
        _ => None,
    })
}

#[test]
fn joining_needs_the_category_to_be_sold_out() {
    let (mut h, event) = setup();
    let err = h.err(join_op(event, "bob", 1, "std"));
    assert_eq!(err, Rejection::NotSoldOut);
    assert_eq!(err.code(), "not_sold_out");
    h.hold(event, "alice", &ALL_STALLS);
    let (outcome, events) = h.ok_fx(join_op(event, "bob", 1, "std"));
    let Outcome::WaitlistJoined { waitlist, position } = outcome else { panic!("{outcome:?}") };
    assert_eq!(position, 1);
    assert!(events.is_empty());
    // Sold out is per category: the boxes are still free.
    assert_eq!(h.err(join_op(event, "carol", 1, "vip")), Rejection::NotSoldOut);
    let view = h.state.waitlist_entry(waitlist).unwrap();
    assert_eq!((view.user.as_str(), view.count, view.category.as_str(), view.position), ("bob", 1, "std", 1));
    assert_eq!(h.state.event(event, h.now).unwrap().waitlist_len, 1);
}

#[test]
fn joining_is_allowed_when_fewer_seats_are_left_than_wanted() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS[..3]);
    assert_eq!(h.err(join_op(event, "carol", 1, "std")), Rejection::NotSoldOut);
    assert_eq!(h.join(event, "bob", 2, "std").1, 1);
}

#[test]
fn seats_of_an_expired_unswept_hold_count_as_free_when_joining() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    h.advance(600 * SEC);
    let applied = h.run(join_op(event, "bob", 1, "std"));
    assert_eq!(applied.result, Err(Rejection::NotSoldOut));
    assert!(applied.events.iter().all(DomainEvent::is_time_driven), "{:?}", applied.events);
}

#[test]
fn joining_twice_is_refused() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    let (first, _) = h.join(event, "bob", 1, "std");
    let err = h.err(join_op(event, "bob", 2, "std"));
    assert_eq!(err, Rejection::AlreadyWaitlisted { waitlist: first });
    assert_eq!(err.code(), "already_waitlisted");
}

#[test]
fn positions_count_from_one_in_joining_order() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    let (bob, p1) = h.join(event, "bob", 1, "std");
    let (carol, p2) = h.join(event, "carol", 2, "std");
    let (dave, p3) = h.join(event, "dave", 1, "std");
    assert_eq!((p1, p2, p3), (1, 2, 3));
    assert_eq!(h.state.event(event, h.now).unwrap().waitlist_len, 3);
    assert_eq!(h.ok(Op::LeaveWaitlist { waitlist: bob, user: "bob".into() }), Outcome::WaitlistLeft { waitlist: bob });
    assert!(h.state.waitlist_entry(bob).is_none());
    assert_eq!(h.state.waitlist_entry(carol).unwrap().position, 1);
    assert_eq!(h.state.waitlist_entry(dave).unwrap().position, 2);
    assert_eq!(h.join(event, "erin", 1, "std").1, 3);
}

#[test]
fn leaving_someone_elses_entry_is_forbidden() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    let (bob, _) = h.join(event, "bob", 1, "std");
    assert_eq!(h.err(Op::LeaveWaitlist { waitlist: bob, user: "carol".into() }), Rejection::NotOwner);
    assert!(h.state.waitlist_entry(bob).is_some());
}

#[test]
fn leaving_an_unknown_entry_is_not_found() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    let (bob, _) = h.join(event, "bob", 1, "std");
    h.ok(Op::LeaveWaitlist { waitlist: bob, user: "bob".into() });
    let err = h.err(Op::LeaveWaitlist { waitlist: bob, user: "bob".into() });
    assert_eq!(err, Rejection::WaitlistNotFound);
    assert_eq!(err.code(), "waitlist_not_found");
    assert_eq!(
        h.err(Op::LeaveWaitlist { waitlist: WaitlistId(9_999), user: "bob".into() }),
        Rejection::WaitlistNotFound
    );
}

#[test]
fn join_requests_are_checked() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    assert_eq!(h.err(join_op(event, "bob", 0, "std")), Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] });
    assert_eq!(h.err(join_op(event, "bob", 11, "std")), Rejection::TooManySeats { max: 10 });
    assert_eq!(h.err(join_op(event, "bob", 1, "gold")), Rejection::UnknownCategory("gold".into()));
    assert_eq!(h.err(join_op(EventId(event.0 + 1000), "bob", 1, "std")), Rejection::EventNotFound);
    assert!(matches!(h.err(join_op(event, "", 1, "std")), Rejection::InvalidRequest(_)));
}

#[test]
fn joining_after_the_start_is_not_on_sale() {
    let (mut h, event) = setup_with(Limits::default(), |s| s.starts_at_ms = s.sale_opens_at_ms + HOUR);
    h.hold(event, "alice", &ALL_STALLS);
    h.advance(HOUR);
    assert_eq!(h.err(join_op(event, "bob", 1, "std")), Rejection::NotOnSale);
}

#[test]
fn event_waitlist_entries_max_is_enforced() {
    let (mut h, event) = setup_with(Limits { event_waitlist_entries_max: 2, ..Limits::default() }, |_| {});
    h.hold(event, "alice", &ALL_STALLS);
    h.join(event, "bob", 1, "std");
    h.join(event, "carol", 1, "std");
    let err = h.err(join_op(event, "dave", 1, "std"));
    assert_eq!(err, Rejection::LimitReached("event_waitlist_entries_max = 2".into()));
}

#[test]
fn a_release_offers_the_seats_in_fifo_order_in_the_same_command() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS);
    let (bob_entry, _) = h.join(event, "bob", 2, "std");
    let (carol_entry, _) = h.join(event, "carol", 1, "std");
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: alice.hold, user: "alice".into() });
    let (bob_hold, bob_seats) = offer_to(&events, "bob").expect("bob got an offer");
    let (carol_hold, carol_seats) = offer_to(&events, "carol").expect("carol got an offer");
    assert_eq!(bob_seats, labels(&["Stalls-A-1", "Stalls-A-2"]));
    assert_eq!(carol_seats, labels(&["Stalls-A-3"]));
    assert_eq!(
        events,
        vec![
            DomainEvent::SeatsReleased {
                event,
                hold: alice.hold,
                user: "alice".into(),
                seats: labels(&ALL_STALLS),
                reason: ReleaseReason::Released,
            },
            DomainEvent::SeatsHeld {
                event,
                hold: bob_hold,
                user: "bob".into(),
                seats: bob_seats.clone(),
                origin: HoldOrigin::Waitlist,
            },
            DomainEvent::WaitlistOffered { event, waitlist: bob_entry, user: "bob".into(), hold: bob_hold },
            DomainEvent::SeatsHeld {
                event,
                hold: carol_hold,
                user: "carol".into(),
                seats: carol_seats.clone(),
                origin: HoldOrigin::Waitlist,
            },
            DomainEvent::WaitlistOffered { event, waitlist: carol_entry, user: "carol".into(), hold: carol_hold },
        ]
    );
    let offers = h.state.user_holds("bob", h.now);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].id, bob_hold);
    assert_eq!(offers[0].origin, HoldOrigin::Waitlist);
    assert_eq!(offers[0].status, HoldStatus::Active);
    assert_eq!(offers[0].seats, bob_seats);
    assert_eq!(offers[0].expires_at_ms, h.now + 600 * SEC, "an offer has the event's hold TTL");
    assert_eq!(offers[0].total_price, 2_000);
    assert!(h.state.waitlist_entry(bob_entry).is_none(), "the entry is consumed");
    assert!(h.state.waitlist_entry(carol_entry).is_none());
    assert_eq!(h.counts(event, "std"), Counts { available: 1, held: 3, booked: 0, blocked: 0 });
    // An offer is an ordinary hold: it can be paid for.
    let booking = h.book(bob_hold, "bob");
    assert_eq!(booking.seats, bob_seats);
}

#[test]
fn a_lazy_expiry_offers_the_seats_before_the_command_that_found_it() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS);
    let (bob_entry, _) = h.join(event, "bob", 2, "std");
    h.advance(600 * SEC);
    let (outcome, events) = h.ok_fx(hold_op(event, "dave", &["Stalls-A-4"]));
    let Outcome::Held(dave) = outcome else { panic!("{outcome:?}") };
    let (bob_hold, bob_seats) = offer_to(&events, "bob").expect("bob got an offer");
    assert_eq!(bob_seats, labels(&["Stalls-A-1", "Stalls-A-2"]));
    assert_eq!(
        events,
        vec![
            DomainEvent::SeatsExpired { event, hold: alice.hold, user: "alice".into(), seats: labels(&ALL_STALLS) },
            DomainEvent::SeatsHeld {
                event,
                hold: bob_hold,
                user: "bob".into(),
                seats: bob_seats,
                origin: HoldOrigin::Waitlist
            },
            DomainEvent::WaitlistOffered { event, waitlist: bob_entry, user: "bob".into(), hold: bob_hold },
            DomainEvent::SeatsHeld {
                event,
                hold: dave.hold,
                user: "dave".into(),
                seats: labels(&["Stalls-A-4"]),
                origin: HoldOrigin::User
            },
        ]
    );
    assert_eq!(h.state.user_holds("bob", h.now)[0].origin, HoldOrigin::Waitlist);
}

#[test]
fn a_rejected_command_still_makes_the_offers_of_a_lazy_expiry() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS);
    h.join(event, "bob", 2, "std");
    h.advance(600 * SEC);
    // dave wants a seat the expiry just offered to bob.
    let applied = h.run(hold_op(event, "dave", &["Stalls-A-1"]));
    assert_eq!(applied.result, Err(Rejection::SeatsUnavailable { seats: labels(&["Stalls-A-1"]) }));
    assert_eq!(applied.events.len(), 3, "{:?}", applied.events);
    assert!(applied.events.iter().all(DomainEvent::is_time_driven));
    assert!(offer_to(&applied.events, "bob").is_some());
    assert_eq!(h.state.user_holds("bob", h.now).len(), 1);
}

#[test]
fn a_sweep_offers_the_seats() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS);
    let (bob_entry, _) = h.join(event, "bob", 4, "std");
    h.advance(600 * SEC);
    let (holds, _, events) = h.sweep(10);
    assert_eq!(holds, vec![alice.hold]);
    let (bob_hold, bob_seats) = offer_to(&events, "bob").expect("bob got an offer");
    assert_eq!(bob_seats, labels(&ALL_STALLS));
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2],
        DomainEvent::WaitlistOffered { event, waitlist: bob_entry, user: "bob".into(), hold: bob_hold }
    );
    assert_eq!(h.state.user_holds("bob", h.now).iter().map(|v| v.id).collect::<Vec<_>>(), vec![bob_hold]);
}

#[test]
fn a_cancellation_offers_the_seats() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS);
    let b = h.book(alice.hold, "alice");
    let (bob_entry, _) = h.join(event, "bob", 2, "std");
    let (_, events) = h.ok_fx(Op::CancelBooking { booking: b.booking, user: "alice".into() });
    assert!(matches!(events[0], DomainEvent::BookingCancelled { .. }), "{events:?}");
    assert!(matches!(events[1], DomainEvent::RefundDue { .. }), "{events:?}");
    let (bob_hold, _) = offer_to(&events, "bob").expect("bob got an offer");
    assert_eq!(
        events[3],
        DomainEvent::WaitlistOffered { event, waitlist: bob_entry, user: "bob".into(), hold: bob_hold }
    );
    assert_eq!(events.len(), 4);
    assert_eq!(h.counts(event, "std"), Counts { available: 2, held: 2, booked: 0, blocked: 0 });
}

#[test]
fn a_payment_given_up_offers_the_seats() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS);
    h.begin(alice.hold, "alice", "pi-1");
    let (bob_entry, _) = h.join(event, "bob", 1, "std");
    let (_, events) = h.ok_fx(Op::FailPayment { intent: "pi-1".into(), reason: "timeout".into(), release_hold: true });
    assert!(matches!(events[0], DomainEvent::SeatsReleased { reason: ReleaseReason::PaymentFailed, .. }));
    let (bob_hold, _) = offer_to(&events, "bob").expect("bob got an offer");
    assert_eq!(
        events[2],
        DomainEvent::WaitlistOffered { event, waitlist: bob_entry, user: "bob".into(), hold: bob_hold }
    );
}

#[test]
fn an_entry_wanting_more_than_is_free_does_not_block_those_behind_it() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &ALL_STALLS[..3]);
    let eve = h.hold(event, "eve", &ALL_STALLS[3..]);
    let (bob_entry, _) = h.join(event, "bob", 3, "std");
    let (carol_entry, _) = h.join(event, "carol", 1, "std");
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: eve.hold, user: "eve".into() });
    assert!(offer_to(&events, "bob").is_none());
    let (_, carol_seats) = offer_to(&events, "carol").expect("carol got an offer");
    assert_eq!(carol_seats, labels(&["Stalls-A-4"]));
    assert!(h.state.waitlist_entry(carol_entry).is_none());
    assert_eq!(h.state.waitlist_entry(bob_entry).unwrap().position, 1, "bob keeps his place");
}

#[test]
fn a_waiting_user_who_holds_seats_is_skipped_and_keeps_their_place() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS[..3]);
    let bob = h.hold(event, "bob", &ALL_STALLS[3..]);
    let (bob_entry, _) = h.join(event, "bob", 1, "std");
    let (carol_entry, _) = h.join(event, "carol", 1, "std");
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: alice.hold, user: "alice".into() });
    assert!(offer_to(&events, "bob").is_none());
    assert!(offer_to(&events, "carol").is_some());
    assert!(h.state.waitlist_entry(carol_entry).is_none());
    assert_eq!(h.state.waitlist_entry(bob_entry).unwrap().position, 1);
    assert_eq!(h.state.user_holds("bob", h.now).iter().map(|v| v.id).collect::<Vec<_>>(), vec![bob.hold]);
}

#[test]
fn a_waiting_user_at_the_hold_limit_is_skipped() {
    let (mut h, event) = setup_with(Limits { user_holds_live_max: 1, ..Limits::default() }, |_| {});
    let venue = h.state.event(event, h.now).unwrap().venue;
    let other = h.event_with(venue, |s| s.prices = vec![("std".into(), 1_000), ("vip".into(), 5_000)]);
    h.hold(other, "bob", &["Stalls-A-1"]);
    let alice = h.hold(event, "alice", &ALL_STALLS);
    let (bob_entry, _) = h.join(event, "bob", 1, "std");
    h.join(event, "carol", 1, "std");
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: alice.hold, user: "alice".into() });
    assert!(offer_to(&events, "bob").is_none());
    assert!(offer_to(&events, "carol").is_some());
    assert!(h.state.waitlist_entry(bob_entry).is_some());
}

#[test]
fn an_offer_that_runs_out_goes_to_the_next_in_line() {
    let (mut h, event) = setup();
    let alice = h.hold(event, "alice", &ALL_STALLS);
    h.join(event, "bob", 4, "std");
    let (dave_entry, _) = h.join(event, "dave", 4, "std");
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: alice.hold, user: "alice".into() });
    let (bob_hold, _) = offer_to(&events, "bob").unwrap();
    assert!(offer_to(&events, "dave").is_none());
    h.advance(600 * SEC);
    let (holds, _, events) = h.sweep(10);
    assert_eq!(holds, vec![bob_hold]);
    let (dave_hold, _) = offer_to(&events, "dave").expect("dave got the seats next");
    assert_eq!(
        events.last(),
        Some(&DomainEvent::WaitlistOffered { event, waitlist: dave_entry, user: "dave".into(), hold: dave_hold })
    );
}

#[test]
fn no_offers_once_the_event_started() {
    let (mut h, event) = setup_with(Limits::default(), |s| s.starts_at_ms = s.sale_opens_at_ms + HOUR);
    h.advance(50 * 60 * SEC);
    let alice = h.hold(event, "alice", &ALL_STALLS); // runs out at the start
    let (bob_entry, _) = h.join(event, "bob", 1, "std");
    h.advance(10 * 60 * SEC);
    let (holds, _, events) = h.sweep(10);
    assert_eq!(holds, vec![alice.hold]);
    assert_eq!(
        events,
        vec![DomainEvent::SeatsExpired { event, hold: alice.hold, user: "alice".into(), seats: labels(&ALL_STALLS) }]
    );
    assert!(h.state.user_holds("bob", h.now).is_empty());
    assert!(h.state.waitlist_entry(bob_entry).is_some());
}

#[test]
fn no_offers_after_a_release_once_the_event_started() {
    let (mut h, event) = setup_with(Limits::default(), |s| s.starts_at_ms = s.sale_opens_at_ms + HOUR);
    h.advance(55 * 60 * SEC);
    let alice = h.hold(event, "alice", &ALL_STALLS);
    h.join(event, "bob", 1, "std");
    h.advance(5 * 60 * SEC);
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: alice.hold, user: "alice".into() });
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(h.state.user_holds("bob", h.now).is_empty());
}

#[test]
fn the_scan_bound_limits_the_entries_examined() {
    let (mut h, event) = setup_with(Limits { waitlist_scan_entries_max: 1, ..Limits::default() }, |_| {});
    h.hold(event, "alice", &ALL_STALLS[..3]);
    let eve = h.hold(event, "eve", &ALL_STALLS[3..]);
    h.join(event, "bob", 3, "std");
    let (carol_entry, _) = h.join(event, "carol", 1, "std");
    let (_, events) = h.ok_fx(Op::ReleaseHold { hold: eve.hold, user: "eve".into() });
    assert_eq!(events.len(), 1, "only the release: carol is past the scan bound: {events:?}");
    assert!(h.state.waitlist_entry(carol_entry).is_some());
}

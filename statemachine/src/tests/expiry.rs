//! Hold expiry: the lease boundary, expiry on touch, the sweep, and reads
//! of holds that ran out but were not released by a command yet.

use super::support::*;
use crate::*;

fn setup() -> (Harness, EventId) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

#[test]
fn a_hold_is_live_until_just_before_its_expiry() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC - 1);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Held);
    assert_eq!(h.state.user_holds("alice", h.now).len(), 1);
    let err = h.err(hold_op(event, "bob", &["Floor-A-2"]));
    assert_eq!(err, Rejection::SeatsUnavailable { seats: labels(&["Floor-A-2"]) });
    assert_eq!(h.sweep(10).0, Vec::<HoldId>::new());
}

#[test]
fn at_its_expiry_another_user_takes_the_seats_without_a_sweep() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    h.advance(600 * SEC);
    let (outcome, events) = h.ok_fx(hold_op(event, "bob", &["Floor-A-3", "Floor-A-4"]));
    let Outcome::Held(bob) = outcome else { panic!("{outcome:?}") };
    assert_eq!(
        events,
        vec![
            DomainEvent::SeatsExpired {
                event,
                hold: r.hold,
                user: "alice".into(),
                seats: labels(&["Floor-A-2", "Floor-A-3"]),
            },
            DomainEvent::SeatsHeld {
                event,
                hold: bob.hold,
                user: "bob".into(),
                seats: labels(&["Floor-A-3", "Floor-A-4"]),
                origin: HoldOrigin::User,
            },
        ]
    );
    assert_eq!(h.state.p.holds[&r.hold].state, HoldState::Expired);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.counts(event, "premium"), Counts { available: 17, held: 2, booked: 0, blocked: 1 });
}

#[test]
fn an_expired_hold_does_not_block_best_available() {
    let mut h = Harness::new();
    let event = h.rows_event(&[4], |_| {});
    h.hold(event, "alice", &["S-1-1", "S-1-2", "S-1-3", "S-1-4"]);
    assert_eq!(h.err(best_op(event, "bob", 2, "std", false)), Rejection::SoldOut);
    h.advance(600 * SEC);
    let bob = h.hold_best(event, "bob", 4, "std", true);
    assert_eq!(bob.seats, labels(&["S-1-1", "S-1-2", "S-1-3", "S-1-4"]));
}

#[test]
fn reads_show_an_unswept_expired_hold_as_expired_and_its_seats_available() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Balcony-1-1"]);
    h.advance(600 * SEC);
    // Nothing has run since the hold was made: the record is still active.
    assert_eq!(h.state.p.holds[&r.hold].state, HoldState::Active);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Expired);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.seat_status(event, "Balcony-1-1"), SeatStatus::Available);
    assert_eq!(h.counts(event, "premium"), Counts { available: 19, held: 0, booked: 0, blocked: 1 });
    assert_eq!(h.counts(event, "regular"), Counts { available: 24, held: 0, booked: 0, blocked: 0 });
    assert_eq!(h.state.event(event, h.now).unwrap().available(), 43);
    assert!(h.state.user_holds("alice", h.now).is_empty());
    // A read at an earlier time still sees it live.
    let earlier = h.now - 1;
    assert_eq!(h.state.hold(r.hold, earlier).unwrap().status, HoldStatus::Active);
    assert_eq!(h.state.user_holds("alice", earlier).len(), 1);
    let map = h.state.seat_map(event, earlier).unwrap();
    assert_eq!(map.seats.iter().find(|s| s.seat_id == "Floor-A-2").unwrap().status, SeatStatus::Held);
}

#[test]
fn sweep_expires_due_holds_across_events_oldest_first() {
    let mut h = Harness::new();
    let venue = h.venue();
    let e1 = h.event(venue);
    let e2 = h.event(venue);
    let alice = h.hold(e1, "alice", &["Floor-A-2"]);
    h.advance(100 * SEC);
    let bob = h.hold(e2, "bob", &["Floor-B-1"]);
    h.advance(100 * SEC);
    let carol = h.hold(e1, "carol", &["Floor-A-3"]);
    h.advance(550 * SEC); // T0 + 750 s: alice's and bob's leases ran out.
    let (holds, more, events) = h.sweep(10);
    assert_eq!(holds, vec![alice.hold, bob.hold]);
    assert!(!more);
    assert_eq!(
        events,
        vec![
            DomainEvent::SeatsExpired {
                event: e1,
                hold: alice.hold,
                user: "alice".into(),
                seats: labels(&["Floor-A-2"])
            },
            DomainEvent::SeatsExpired { event: e2, hold: bob.hold, user: "bob".into(), seats: labels(&["Floor-B-1"]) },
        ]
    );
    assert_eq!(h.state.p.holds[&alice.hold].state, HoldState::Expired);
    assert_eq!(h.state.p.holds[&bob.hold].state, HoldState::Expired);
    assert_eq!(h.state.p.holds[&carol.hold].state, HoldState::Active);
    assert_eq!(h.counts(e1, "premium").held, 1);
    assert_eq!(h.counts(e2, "premium").held, 0);
}

#[test]
fn sweep_orders_by_lease_end_not_by_creation() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let alice = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(50 * SEC);
    let bob = h.hold(event, "bob", &["Floor-A-3"]); // ends at T0 + 650 s
    h.advance(50 * SEC);
    h.ok(Op::ExtendHold { hold: alice.hold, user: "alice".into(), secs: 600 }); // ends at T0 + 700 s
    h.advance(600 * SEC);
    let (holds, more, _) = h.sweep(1);
    assert_eq!(holds, vec![bob.hold]);
    assert!(more);
    let (holds, more, _) = h.sweep(1);
    assert_eq!(holds, vec![alice.hold]);
    assert!(!more);
}

#[test]
fn sweep_respects_holds_max_and_reports_more() {
    let (mut h, event) = setup();
    let ids: Vec<HoldId> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            h.advance(SEC);
            h.hold(event, u, &[&format!("Floor-B-{}", i + 1)]).hold
        })
        .collect();
    h.advance(600 * SEC);
    let (holds, more, events) = h.sweep(2);
    assert_eq!(holds, ids[..2].to_vec());
    assert!(more);
    assert_eq!(events.len(), 2);
    assert_eq!(h.state.p.holds[&ids[2]].state, HoldState::Active);
    let (holds, more, _) = h.sweep(2);
    assert_eq!(holds, ids[2..].to_vec());
    assert!(!more);
    let (holds, more, events) = h.sweep(2);
    assert!(holds.is_empty() && !more && events.is_empty());
}

#[test]
fn sweep_of_zero_holds_expires_nothing_but_reports_more() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    let (holds, more, events) = h.sweep(0);
    assert!(holds.is_empty());
    assert!(more);
    assert!(events.is_empty());
    assert_eq!(h.state.p.holds[&r.hold].state, HoldState::Active);
}

#[test]
fn sweep_is_capped_by_the_shard_limit() {
    let mut h = Harness::with_limits(Limits { sweep_holds_max: 1, ..Limits::default() });
    let venue = h.venue();
    let event = h.event(venue);
    let a = h.hold(event, "alice", &["Floor-A-2"]);
    let b = h.hold(event, "bob", &["Floor-A-3"]);
    h.advance(600 * SEC);
    let (holds, more, _) = h.sweep(100);
    assert_eq!(holds, vec![a.hold]);
    assert!(more);
    let (holds, more, _) = h.sweep(100);
    assert_eq!(holds, vec![b.hold]);
    assert!(!more);
}

#[test]
fn sweep_leaves_holds_that_are_not_due() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(599 * SEC);
    let (holds, more, events) = h.sweep(10);
    assert!(holds.is_empty() && !more && events.is_empty());
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
}

//! Hold rules: granting (all or nothing), the request checks, the sale
//! window, the per-user and shard bounds, release and extension.

use super::support::*;
use crate::*;

fn setup() -> (Harness, EventId) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

fn seats_op(event: EventId, user: &str, seats: Vec<String>) -> Op {
    Op::Hold { event, user: user.into(), selection: Selection::Seats(seats) }
}

// ---- granting ----

#[test]
fn hold_takes_every_requested_seat() {
    let (mut h, event) = setup();
    let (outcome, events) = h.ok_fx(hold_op(event, "alice", &["Balcony-1-2", "Floor-A-3", "Floor-A-2"]));
    let Outcome::Held(r) = outcome else { panic!("{outcome:?}") };
    // Seats come back in seat (layout) order, whatever the request order.
    assert_eq!(r.seats, vec!["Floor-A-2", "Floor-A-3", "Balcony-1-2"]);
    assert_eq!(r.event, event);
    assert_eq!(r.user, "alice");
    assert_eq!(r.total_price, 2 * 1_500_000 + 450_000);
    assert_eq!(r.currency, "INR");
    assert_eq!(r.origin, HoldOrigin::User);
    assert_eq!(r.expires_at_ms, h.now + 600 * SEC);
    assert_eq!(
        events,
        vec![DomainEvent::SeatsHeld {
            event,
            hold: r.hold,
            user: "alice".into(),
            seats: r.seats.clone(),
            origin: HoldOrigin::User
        }]
    );
    assert_eq!(h.counts(event, "premium"), Counts { available: 17, held: 2, booked: 0, blocked: 1 });
    assert_eq!(h.counts(event, "regular"), Counts { available: 23, held: 1, booked: 0, blocked: 0 });
    for seat in &r.seats {
        assert_eq!(h.seat_status(event, seat), SeatStatus::Held);
    }
    let view = h.state.hold(r.hold, h.now).unwrap();
    assert_eq!(view.status, HoldStatus::Active);
    assert_eq!(view.seats, r.seats);
    assert_eq!(view.booking, None);
    assert_eq!(h.state.user_holds("alice", h.now), vec![view]);
}

#[test]
fn conflict_reports_every_unavailable_seat_and_holds_none() {
    let (mut h, event) = setup();
    h.hold(event, "bob", &["Floor-A-3"]);
    let carol = h.hold(event, "carol", &["Floor-A-5"]);
    h.book(carol.hold, "carol");
    let before = h.counts(event, "premium");
    let err = h.err(hold_op(event, "alice", &["Floor-A-2", "Floor-A-5", "Floor-A-3", "Floor-A-1", "Floor-A-6"]));
    // Held, booked and blocked, in seat order.
    assert_eq!(err, Rejection::SeatsUnavailable { seats: labels(&["Floor-A-1", "Floor-A-3", "Floor-A-5"]) });
    assert_eq!(err.code(), "seats_unavailable");
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.seat_status(event, "Floor-A-6"), SeatStatus::Available);
    assert_eq!(h.counts(event, "premium"), before);
    assert!(h.state.user_holds("alice", h.now).is_empty());
}

#[test]
fn unknown_and_duplicate_seats_are_listed() {
    let (mut h, event) = setup();
    let err = h.err(hold_op(
        event,
        "alice",
        &["Floor-A-2", "Floor-Z-1", "Floor-A-3", "Floor-A-2", "Floor-A-02", "Balcony-1-9", "Floor-A-3"],
    ));
    assert_eq!(
        err,
        Rejection::InvalidSeats {
            unknown: labels(&["Floor-Z-1", "Floor-A-02", "Balcony-1-9"]),
            duplicate: labels(&["Floor-A-2", "Floor-A-3"]),
        }
    );
    assert_eq!(err.code(), "invalid_seats");
}

#[test]
fn a_seat_named_three_times_is_listed_once() {
    let (mut h, event) = setup();
    let err = h.err(hold_op(event, "alice", &["Floor-B-1", "Floor-B-1", "Floor-B-1"]));
    assert_eq!(err, Rejection::InvalidSeats { unknown: vec![], duplicate: labels(&["Floor-B-1"]) });
}

#[test]
fn zero_seats_are_invalid() {
    let (mut h, event) = setup();
    assert_eq!(h.err(hold_op(event, "alice", &[])), Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] });
    assert_eq!(
        h.err(best_op(event, "alice", 0, "premium", false)),
        Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] }
    );
}

#[test]
fn more_seats_than_the_event_allows_per_hold_are_refused() {
    let (mut h, event) = setup();
    let eleven: Vec<String> =
        (1..=8).map(|n| format!("Balcony-1-{n}")).chain((1..=3).map(|n| format!("Balcony-2-{n}"))).collect();
    let err = h.err(seats_op(event, "alice", eleven.clone()));
    assert_eq!(err, Rejection::TooManySeats { max: 10 });
    assert_eq!(err.code(), "too_many_seats");
    assert_eq!(h.err(best_op(event, "alice", 11, "regular", false)), Rejection::TooManySeats { max: 10 });
    // Exactly the limit is fine.
    let r = match h.ok(seats_op(event, "alice", eleven[..10].to_vec())) {
        Outcome::Held(r) => r,
        o => panic!("{o:?}"),
    };
    assert_eq!(r.seats.len(), 10);
}

#[test]
fn the_per_hold_limit_is_the_events_own() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, |s| s.max_seats_per_hold = Some(2));
    assert_eq!(
        h.err(hold_op(event, "alice", &["Floor-B-1", "Floor-B-2", "Floor-B-3"])),
        Rejection::TooManySeats { max: 2 }
    );
    assert_eq!(h.err(best_op(event, "alice", 3, "premium", true)), Rejection::TooManySeats { max: 2 });
    h.hold(event, "alice", &["Floor-B-1", "Floor-B-2"]);
}

#[test]
fn best_available_in_an_unknown_category_is_refused() {
    let (mut h, event) = setup();
    let err = h.err(best_op(event, "alice", 2, "vip", false));
    assert_eq!(err, Rejection::UnknownCategory("vip".into()));
    assert_eq!(err.code(), "invalid_category");
}

#[test]
fn holds_on_an_unknown_event_are_refused() {
    let (mut h, event) = setup();
    let err = h.err(hold_op(EventId(event.0 + 1000), "alice", &["Floor-A-2"]));
    assert_eq!(err, Rejection::EventNotFound);
    assert_eq!(err.code(), "event_not_found");
}

#[test]
fn an_empty_user_id_is_invalid() {
    let (mut h, event) = setup();
    assert!(matches!(h.err(hold_op(event, "", &["Floor-A-2"])), Rejection::InvalidRequest(_)));
}

// ---- the sale window ----

#[test]
fn not_on_sale_before_the_sale_opens() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, |s| s.sale_opens_at_ms += HOUR);
    h.advance(HOUR - 1);
    let err = h.err(hold_op(event, "alice", &["Floor-A-2"]));
    assert_eq!(err, Rejection::NotOnSale);
    assert_eq!(err.code(), "not_on_sale");
    assert_eq!(h.err(best_op(event, "alice", 1, "premium", false)), Rejection::NotOnSale);
    h.advance(1);
    h.hold(event, "alice", &["Floor-A-2"]);
}

#[test]
fn not_on_sale_once_the_sale_closed() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, |s| s.sale_closes_at_ms = Some(s.sale_opens_at_ms + 2 * HOUR));
    h.advance(2 * HOUR - 1);
    h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(1);
    assert_eq!(h.err(hold_op(event, "bob", &["Floor-A-3"])), Rejection::NotOnSale);
}

#[test]
fn not_on_sale_once_the_event_started() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, |s| s.starts_at_ms = s.sale_opens_at_ms + HOUR);
    h.advance(HOUR);
    assert_eq!(h.err(hold_op(event, "alice", &["Floor-A-2"])), Rejection::NotOnSale);
    h.advance(HOUR);
    assert_eq!(h.err(best_op(event, "alice", 1, "premium", false)), Rejection::NotOnSale);
}

// ---- one live hold per user per event ----

#[test]
fn one_live_hold_per_user_per_event() {
    let (mut h, event) = setup();
    let first = h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(hold_op(event, "alice", &["Floor-A-3"]));
    assert_eq!(err, Rejection::HoldLimit { hold: first.hold });
    assert_eq!(err.code(), "hold_limit");
    assert_eq!(h.err(best_op(event, "alice", 1, "regular", false)), Rejection::HoldLimit { hold: first.hold });
    // Another user, or the same user on another event, is unaffected.
    h.hold(event, "bob", &["Floor-A-3"]);
    let venue = h.state.event(event, h.now).unwrap().venue;
    let other = h.event(venue);
    h.hold(other, "alice", &["Floor-A-2"]);
}

#[test]
fn a_user_whose_hold_expired_may_hold_again() {
    let (mut h, event) = setup();
    let first = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    let (outcome, events) = h.ok_fx(hold_op(event, "alice", &["Floor-A-3"]));
    let Outcome::Held(second) = outcome else { panic!("{outcome:?}") };
    assert_eq!(
        events[0],
        DomainEvent::SeatsExpired { event, hold: first.hold, user: "alice".into(), seats: labels(&["Floor-A-2"]) }
    );
    assert_eq!(events.len(), 2);
    assert_eq!(h.hold_status(first.hold), HoldStatus::Expired);
    assert_eq!(h.state.user_holds("alice", h.now).iter().map(|v| v.id).collect::<Vec<_>>(), vec![second.hold]);
}

#[test]
fn a_user_whose_hold_was_released_may_hold_again() {
    let (mut h, event) = setup();
    let first = h.hold(event, "alice", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: first.hold, user: "alice".into() });
    h.hold(event, "alice", &["Floor-A-2"]);
}

#[test]
fn user_holds_live_max_is_enforced_across_events() {
    let mut h = Harness::with_limits(Limits { user_holds_live_max: 2, ..Limits::default() });
    let venue = h.venue();
    let events: Vec<EventId> = (0..3).map(|_| h.event(venue)).collect();
    let a = h.hold(events[0], "alice", &["Floor-A-2"]);
    h.hold(events[1], "alice", &["Floor-A-2"]);
    let err = h.err(hold_op(events[2], "alice", &["Floor-A-2"]));
    assert_eq!(err, Rejection::UserHoldLimit { max: 2 });
    assert_eq!(err.code(), "user_hold_limit");
    h.hold(events[2], "bob", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: a.hold, user: "alice".into() });
    h.hold(events[2], "alice", &["Floor-A-3"]);
}

#[test]
fn expired_holds_on_other_events_do_not_count_against_the_user_limit() {
    let mut h = Harness::with_limits(Limits { user_holds_live_max: 1, ..Limits::default() });
    let venue = h.venue();
    let first = h.event(venue);
    let second = h.event(venue);
    h.hold(first, "alice", &["Floor-A-2"]);
    // The lease ran out; no sweep and no command on `first` has run since.
    h.advance(600 * SEC);
    h.hold(second, "alice", &["Floor-A-2"]);
}

#[test]
fn holds_live_max_is_enforced_shard_wide() {
    let mut h = Harness::with_limits(Limits { holds_live_max: 2, ..Limits::default() });
    let (venue, event) = {
        let v = h.venue();
        (v, h.event(v))
    };
    let other = h.event(venue);
    h.hold(event, "alice", &["Floor-A-2"]);
    let bob = h.hold(other, "bob", &["Floor-A-2"]);
    let err = h.err(hold_op(event, "carol", &["Floor-A-3"]));
    assert_eq!(err, Rejection::LimitReached("holds_live_max = 2".into()));
    h.ok(Op::ReleaseHold { hold: bob.hold, user: "bob".into() });
    h.hold(event, "carol", &["Floor-A-3"]);
}

#[test]
fn expired_holds_do_not_count_against_the_shard_limit() {
    let mut h = Harness::with_limits(Limits { holds_live_max: 1, ..Limits::default() });
    let venue = h.venue();
    let first = h.event(venue);
    let second = h.event(venue);
    h.hold(first, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    h.hold(second, "bob", &["Floor-A-2"]);
}

// ---- release ----

#[test]
fn release_frees_the_seats_at_once() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let (outcome, events) = h.ok_fx(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    assert_eq!(outcome, Outcome::Released { hold: r.hold });
    assert_eq!(
        events,
        vec![DomainEvent::SeatsReleased {
            event,
            hold: r.hold,
            user: "alice".into(),
            seats: labels(&["Floor-A-2", "Floor-A-3"]),
            reason: ReleaseReason::Released,
        }]
    );
    assert_eq!(h.counts(event, "premium"), Counts { available: 19, held: 0, booked: 0, blocked: 1 });
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Released);
    assert!(h.state.user_holds("alice", h.now).is_empty());
    // Another user gets the seats in the very next command, at the same time.
    h.hold(event, "bob", &["Floor-A-2", "Floor-A-3"]);
}

#[test]
fn release_by_another_user_is_forbidden() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(Op::ReleaseHold { hold: r.hold, user: "bob".into() });
    assert_eq!(err, Rejection::NotOwner);
    assert_eq!(err.code(), "forbidden");
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
}

#[test]
fn release_of_an_unknown_hold_is_not_found() {
    let (mut h, _) = setup();
    let err = h.err(Op::ReleaseHold { hold: HoldId(9_999), user: "alice".into() });
    assert_eq!(err, Rejection::HoldNotFound);
    assert_eq!(err.code(), "hold_not_found");
}

#[test]
fn release_of_a_confirmed_hold_is_refused() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.book(r.hold, "alice");
    let err = h.err(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    assert_eq!(err, Rejection::HoldConfirmed);
    assert_eq!(err.code(), "hold_confirmed");
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Booked);
}

#[test]
fn release_twice_is_an_idempotent_success() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    let before = h.state.snapshot();
    let (outcome, events) = h.ok_fx(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    assert_eq!(outcome, Outcome::Released { hold: r.hold });
    assert!(events.is_empty());
    assert_same_domain(&before, &h.state);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Released);
}

#[test]
fn release_of_an_expired_hold_is_an_idempotent_success() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    h.sweep(10);
    let (outcome, events) = h.ok_fx(Op::ReleaseHold { hold: r.hold, user: "alice".into() });
    assert_eq!(outcome, Outcome::Released { hold: r.hold });
    assert!(events.is_empty());
    assert_eq!(h.hold_status(r.hold), HoldStatus::Expired, "the hold keeps its real end");
}

// ---- extension ----

#[test]
fn extension_pushes_the_lease_to_now_plus_the_extension() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(300 * SEC);
    let (outcome, events) = h.ok_fx(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 });
    assert_eq!(outcome, Outcome::Extended { hold: r.hold, expires_at_ms: h.now + 600 * SEC });
    assert!(events.is_empty());
    let view = h.state.hold(r.hold, h.now).unwrap();
    assert_eq!(view.expires_at_ms, r.expires_at_ms + 300 * SEC);
    // The old end no longer expires it.
    h.advance(300 * SEC);
    assert_eq!(h.hold_status(r.hold), HoldStatus::Active);
    assert_eq!(h.sweep(10).0, Vec::<HoldId>::new());
    h.advance(300 * SEC);
    assert_eq!(h.sweep(10).0, vec![r.hold]);
}

#[test]
fn extensions_are_bounded_by_hold_extensions_max() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    assert_eq!(h.state.limits().hold_extensions_max, 2);
    for _ in 0..2 {
        h.advance(60 * SEC);
        h.ok(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 });
    }
    h.advance(60 * SEC);
    let err = h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 });
    assert_eq!(err, Rejection::ExtensionLimit { max: 2 });
    assert_eq!(err.code(), "extension_limit");
}

#[test]
fn extensions_are_bounded_by_the_lifetime_cap() {
    let mut h = Harness::with_limits(Limits { hold_extensions_max: 100, ..Limits::default() });
    let venue = h.venue();
    let event = h.event(venue);
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let created = h.now;
    let cap = created + HOLD_LIFETIME_TTLS_MAX * 600 * SEC;
    h.advance(500 * SEC);
    assert_eq!(
        h.ok(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 }),
        Outcome::Extended { hold: r.hold, expires_at_ms: created + 1_100 * SEC }
    );
    h.advance(500 * SEC);
    // Wanted: now + 600 s = created + 1600 s; the cap is created + 1200 s.
    assert_eq!(
        h.ok(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 }),
        Outcome::Extended { hold: r.hold, expires_at_ms: cap }
    );
    h.advance(100 * SEC);
    assert_eq!(
        h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 }),
        Rejection::ExtensionLimit { max: 100 }
    );
    assert_eq!(h.state.hold(r.hold, h.now).unwrap().expires_at_ms, cap);
}

#[test]
fn extension_of_zero_seconds_is_invalid() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 0 });
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("1..=600")), "{err:?}");
    assert_eq!(err.code(), "invalid_request");
}

#[test]
fn extension_longer_than_the_ttl_is_invalid() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(100 * SEC);
    assert!(matches!(
        h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 601 }),
        Rejection::InvalidRequest(_)
    ));
    h.ok(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 600 });
}

#[test]
fn extension_by_another_user_is_forbidden() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    assert_eq!(h.err(Op::ExtendHold { hold: r.hold, user: "bob".into(), secs: 60 }), Rejection::NotOwner);
}

#[test]
fn extension_of_an_unknown_hold_is_not_found() {
    let (mut h, _) = setup();
    assert_eq!(h.err(Op::ExtendHold { hold: HoldId(9_999), user: "alice".into(), secs: 60 }), Rejection::HoldNotFound);
}

#[test]
fn extension_of_a_swept_hold_is_hold_expired() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    h.sweep(10);
    let err = h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 60 });
    assert_eq!(err, Rejection::HoldExpired);
    assert_eq!(err.code(), "hold_expired");
}

#[test]
fn extension_of_a_hold_that_ran_out_unswept_is_hold_expired() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    let applied = h.run(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 60 });
    assert_eq!(applied.result, Err(Rejection::HoldExpired));
    // The only change is the expiry itself, which time made.
    assert_eq!(
        applied.events,
        vec![DomainEvent::SeatsExpired { event, hold: r.hold, user: "alice".into(), seats: labels(&["Floor-A-2"]) }]
    );
    assert_eq!(h.state.hold(r.hold, h.now).unwrap().expires_at_ms, r.expires_at_ms);
}

#[test]
fn extension_of_an_expired_hold_whose_seats_were_taken_is_seats_lost() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    h.advance(600 * SEC);
    h.hold(event, "bob", &["Floor-A-3"]);
    let err = h.err(Op::ExtendHold { hold: r.hold, user: "alice".into(), secs: 60 });
    assert_eq!(err, Rejection::SeatsLost { seats: labels(&["Floor-A-3"]) });
}

#[test]
fn extension_of_a_released_or_confirmed_hold_is_refused() {
    let (mut h, event) = setup();
    let released = h.hold(event, "alice", &["Floor-A-2"]);
    h.ok(Op::ReleaseHold { hold: released.hold, user: "alice".into() });
    let err = h.err(Op::ExtendHold { hold: released.hold, user: "alice".into(), secs: 60 });
    assert_eq!(err, Rejection::HoldReleased);
    assert_eq!(err.code(), "hold_released");
    let confirmed = h.hold(event, "alice", &["Floor-A-3"]);
    h.book(confirmed.hold, "alice");
    assert_eq!(
        h.err(Op::ExtendHold { hold: confirmed.hold, user: "alice".into(), secs: 60 }),
        Rejection::HoldConfirmed
    );
}

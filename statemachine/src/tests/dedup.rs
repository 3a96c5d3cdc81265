//! Exactly-once: a repeated (client, request) gets the recorded result and
//! changes nothing; the table is bounded by count and by age.

use super::support::*;
use crate::*;

fn setup_with(limits: Limits) -> (Harness, EventId) {
    let mut h = Harness::with_limits(limits);
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

fn setup() -> (Harness, EventId) {
    setup_with(Limits::default())
}

#[test]
fn a_repeated_request_returns_the_recorded_result_and_changes_nothing() {
    let (mut h, event) = setup();
    let first = h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(!first.replayed);
    assert!(matches!(first.result, Ok(Outcome::Held(_))));
    assert_eq!(first.events.len(), 1);
    let before = h.state.snapshot();
    h.advance(SEC);
    let again = h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(again.replayed);
    assert_eq!(again.result, first.result);
    assert!(again.events.is_empty());
    assert_same_domain(&before, &h.state);
    assert_eq!(h.state.p.holds.len(), 1);
}

#[test]
fn a_repeated_rejection_is_replayed_even_when_it_would_now_succeed() {
    let (mut h, event) = setup();
    let bob = h.hold(event, "bob", &["Floor-A-2"]);
    let first = h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert_eq!(first.result, Err(Rejection::SeatsUnavailable { seats: labels(&["Floor-A-2"]) }));
    h.ok(Op::ReleaseHold { hold: bob.hold, user: "bob".into() });
    let before = h.state.snapshot();
    let again = h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(again.replayed);
    assert_eq!(again.result, first.result);
    assert!(again.events.is_empty());
    assert_same_domain(&before, &h.state);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
}

#[test]
fn a_key_reused_for_a_different_op_is_refused() {
    let (mut h, event) = setup();
    h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    let before = h.state.snapshot();
    let other = h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-3"]));
    assert_eq!(other.result, Err(Rejection::IdempotencyKeyReused));
    assert_eq!(Rejection::IdempotencyKeyReused.code(), "idempotency_key_reused");
    assert!(other.replayed);
    assert!(other.events.is_empty());
    assert_same_domain(&before, &h.state);
    assert_eq!(h.seat_status(event, "Floor-A-3"), SeatStatus::Available);
}

#[test]
fn the_same_request_id_from_another_client_is_another_request() {
    let (mut h, event) = setup();
    let a = h.run_keyed("alice", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    let b = h.run_keyed("bob", "k1", hold_op(event, "bob", &["Floor-A-3"]));
    assert!(!b.replayed);
    assert!(matches!(a.result, Ok(Outcome::Held(_))));
    assert!(matches!(b.result, Ok(Outcome::Held(_))));
    assert_eq!(h.seat_status(event, "Floor-A-3"), SeatStatus::Held);
    // Even the very same op from another client is applied again.
    let c = h.run_keyed("carol", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(!c.replayed);
    assert!(matches!(c.result, Err(Rejection::HoldLimit { .. })));
}

#[test]
fn the_table_is_bounded_by_count() {
    let (mut h, _) = setup_with(Limits { dedup_entries_max: 2, ..Limits::default() });
    let first = h.run_keyed("ops", "v1", Op::CreateVenue(small_venue()));
    assert!(matches!(first.result, Ok(Outcome::VenueCreated { .. })));
    // Still remembered while it is among the two newest.
    let again = h.run_keyed("ops", "v1", Op::CreateVenue(small_venue()));
    assert!(again.replayed);
    h.run_keyed("ops", "v2", Op::ExpireHolds { holds_max: 1 });
    h.run_keyed("ops", "x1", Op::RecordRefund { intent: "none".into() });
    h.run_keyed("ops", "x2", Op::RecordRefund { intent: "none".into() });
    assert!(h.state.p.dedup.len() <= 2);
    let venues_before = h.state.venue_ids().count();
    let evicted = h.run_keyed("ops", "v1", Op::CreateVenue(small_venue()));
    assert!(!evicted.replayed, "an evicted key is applied again");
    assert!(matches!(evicted.result, Ok(Outcome::VenueCreated { .. })));
    assert_eq!(h.state.venue_ids().count(), venues_before + 1);
}

#[test]
fn the_table_is_bounded_by_age() {
    let (mut h, _) = setup_with(Limits { dedup_age_secs_max: 60, ..Limits::default() });
    let venues_before = h.state.venue_ids().count();
    h.run_keyed("ops", "v1", Op::CreateVenue(small_venue()));
    h.advance(60 * SEC - 1);
    let again = h.run_keyed("ops", "v1", Op::CreateVenue(small_venue()));
    assert!(again.replayed, "remembered just under the age bound");
    assert_eq!(h.state.venue_ids().count(), venues_before + 1);
    h.advance(1);
    let evicted = h.run_keyed("ops", "v1", Op::CreateVenue(small_venue()));
    assert!(!evicted.replayed, "forgotten at the age bound");
    assert_eq!(h.state.venue_ids().count(), venues_before + 2);
}

#[test]
fn expiry_sweeps_are_not_recorded() {
    let (mut h, event) = setup();
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let first = h.run_keyed("node-1", "sweep", Op::ExpireHolds { holds_max: 10 });
    assert!(!first.replayed);
    assert_eq!(first.result, Ok(Outcome::Swept { holds: vec![], more: false }));
    assert!(!h.state.p.dedup.contains_key(&crate::dedup::request_key("node-1", "sweep")));
    h.advance(600 * SEC);
    // The same key sweeps again, for real.
    let second = h.run_keyed("node-1", "sweep", Op::ExpireHolds { holds_max: 10 });
    assert!(!second.replayed);
    assert_eq!(second.result, Ok(Outcome::Swept { holds: vec![r.hold], more: false }));
    // And a different op under it is not a reuse of a recorded key.
    let third = h.run_keyed("node-1", "sweep", Op::ExpireHolds { holds_max: 1 });
    assert!(!third.replayed);
    assert!(third.result.is_ok());
}

#[test]
fn an_empty_client_id_is_invalid() {
    let (mut h, event) = setup();
    let err = h.err_keyed("", "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("client id")), "{err:?}");
    assert!(!h.state.p.dedup.contains_key(&crate::dedup::request_key("", "k1")), "invalid keys are not recorded");
}

#[test]
fn an_empty_request_id_is_invalid() {
    let (mut h, event) = setup();
    let err = h.err_keyed("alice", "", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("request id")), "{err:?}");
}

#[test]
fn an_oversized_client_or_request_id_is_invalid() {
    let (mut h, event) = setup();
    let long = "k".repeat(129);
    let err = h.err_keyed(&long, "k1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("longer than 128")), "{err:?}");
    let err = h.err_keyed("alice", &long, hold_op(event, "alice", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("longer than 128")), "{err:?}");
    // Exactly the bound is fine.
    let ok = h.run_keyed(&"k".repeat(128), &"r".repeat(128), hold_op(event, "alice", &["Floor-A-2"]));
    assert!(ok.result.is_ok());
}

#[test]
fn a_request_id_with_control_characters_is_invalid() {
    let (mut h, event) = setup();
    let err = h.err_keyed("alice", "k\u{0}1", hold_op(event, "alice", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("control")), "{err:?}");
}

#[test]
fn an_invalid_key_is_refused_before_any_expiry() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(600 * SEC);
    // Nothing happens at all, not even the expiry time made due.
    h.err_keyed("", "k1", hold_op(event, "bob", &["Floor-A-2"]));
}

// ---- bytes ----

/// What a refusal keeps: the table's weight of its record.
fn recorded_weight(h: &Harness) -> u64 {
    let (_, _, key) = *h.state.ix.dedup_order.back().expect("a remembered request");
    h.state.p.dedup[&key].result.weight()
}

#[test]
fn refusals_echo_a_bounded_part_of_the_input() {
    let (mut h, _) = setup();
    let venue = h.state.venue_ids().next().unwrap();
    let event = h.event_with(venue, |s| s.max_seats_per_hold = Some(100));
    // Many unknown labels: a few are named, the hold is refused all the same.
    let unknown: Vec<String> = (0..100).map(|i| format!("Nowhere-{i}-1")).collect();
    let op = Op::Hold { event, user: "u".into(), selection: Selection::Seats(unknown.clone()) };
    let Rejection::InvalidSeats { unknown: named, duplicate } = h.err(op) else { panic!() };
    assert_eq!(named, unknown[..REJECTION_LABELS_MAX]);
    assert!(duplicate.is_empty());
    let twice: Vec<String> = (0..50).flat_map(|_| ["Floor-A-2".to_string(), "Floor-A-3".to_string()]).collect();
    let op = Op::Hold { event, user: "u".into(), selection: Selection::Seats(twice) };
    assert_eq!(h.err(op), Rejection::InvalidSeats { unknown: vec![], duplicate: labels(&["Floor-A-2", "Floor-A-3"]) });
    // A label no venue can have is named by its first bytes only; a
    // category no venue can have is refused without an echo.
    let huge = "X".repeat(65_000);
    let op = Op::Hold { event, user: "u".into(), selection: Selection::Seats(vec![huge.clone()]) };
    let Rejection::InvalidSeats { unknown, .. } = h.err(op) else { panic!() };
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].len() <= 2 * 200 + 12 + '…'.len_utf8() && huge.starts_with(unknown[0].trim_end_matches('…')));
    assert!(recorded_weight(&h) < 1000, "the table keeps {} bytes", recorded_weight(&h));
    let selection = Selection::Best { count: 1, category: huge.clone(), together: false, accessible: false };
    let Rejection::InvalidRequest(msg) = h.err(Op::Hold { event, user: "u".into(), selection }) else { panic!() };
    assert!(msg.len() < 100, "{msg}");
    assert!(recorded_weight(&h) < 500, "the table keeps {} bytes", recorded_weight(&h));
    let wait = Op::JoinWaitlist { event, user: "u".into(), count: 1, category: huge.clone() };
    assert!(matches!(h.err(wait), Rejection::InvalidRequest(ref m) if m.len() < 100));
    // An unknown category within the bound is named.
    let best = Op::Hold {
        event,
        user: "u".into(),
        selection: Selection::Best { count: 1, category: "vip".into(), together: false, accessible: false },
    };
    assert_eq!(h.err(best), Rejection::UnknownCategory("vip".into()));
    // Event and venue refusals echo at most a bounded part.
    for edit in [
        Box::new(|s: &mut EventSpec| s.currency = huge.clone()) as Box<dyn Fn(&mut EventSpec)>,
        Box::new(|s: &mut EventSpec| s.prices.push((huge.clone(), 1))),
    ] {
        let mut spec = event_spec(venue, h.now);
        edit(&mut spec);
        let Rejection::InvalidEvent(msg) = h.err(Op::CreateEvent(spec)) else { panic!() };
        assert!(msg.len() < 300, "{}", msg.len());
    }
    let mut spec = small_venue();
    spec.blocked_seats.push(huge.clone());
    let Rejection::InvalidLayout(msg) = h.err(Op::CreateVenue(spec)) else { panic!() };
    assert!(msg.len() < 300, "{}", msg.len());
}

#[test]
fn the_table_is_bounded_by_bytes_oldest_first() {
    let bytes_max = 20_000;
    let (mut h, event) = setup_with(Limits { dedup_bytes_max: bytes_max, ..Limits::default() });
    let first = h.run_keyed("alice", "k-first", hold_op(event, "alice", &["Nowhere-1-1"]));
    assert!(first.result.is_err());
    let mut max_seen = 0;
    for i in 0..200 {
        let seats: Vec<String> = (0..8).map(|n| format!("Nowhere-{i}-{n}")).collect();
        let op = Op::Hold { event, user: "bob".into(), selection: Selection::Seats(seats) };
        h.run_keyed("bob", &format!("k{i}"), op);
        max_seen = max_seen.max(h.state.ix.dedup_bytes);
        assert!(h.state.ix.dedup_bytes <= bytes_max);
    }
    assert!(max_seen > bytes_max - 1000, "the bound was reached ({max_seen})");
    assert!(h.state.p.dedup.len() < 200, "entries were forgotten for their bytes");
    // The oldest went first: the first request is a new one again.
    let again = h.run_keyed("alice", "k-first", hold_op(event, "alice", &["Nowhere-1-1"]));
    assert!(!again.replayed);
    // The newest is remembered.
    let seats: Vec<String> = (0..8).map(|n| format!("Nowhere-199-{n}")).collect();
    let op = Op::Hold { event, user: "bob".into(), selection: Selection::Seats(seats) };
    assert!(h.run_keyed("bob", "k199", op).replayed);
}

#[test]
fn a_weight_is_about_the_heap_bytes_of_the_record() {
    let (mut h, event) = setup();
    h.hold(event, "alice", &["Floor-A-2", "Floor-A-3", "Floor-A-4", "Floor-A-5"]);
    let held = recorded_weight(&h);
    assert!((300..700).contains(&held), "{held}");
    h.err(Op::ReleaseHold { hold: HoldId(999), user: "bob".into() });
    let small = recorded_weight(&h);
    assert!(small < held, "{small}");
}

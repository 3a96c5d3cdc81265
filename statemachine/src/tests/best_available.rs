//! Best-available selection through `Op::Hold` with `Selection::Best`.

use super::support::*;
use crate::*;

fn accessible_op(event: EventId, user: &str, count: u32, category: &str) -> Op {
    Op::Hold {
        event,
        user: user.into(),
        selection: Selection::Best { count, category: category.into(), together: true, accessible: true },
    }
}

#[test]
fn best_seats_are_together_in_the_best_row_and_centred() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    // Row A has 9 sellable seats (A-1 is blocked); four of them sit centred at A-4..A-7.
    let r = h.hold_best(event, "alice", 4, "premium", true);
    assert_eq!(r.seats, labels(&["Floor-A-4", "Floor-A-5", "Floor-A-6", "Floor-A-7"]));
    assert_eq!(r.total_price, 4 * 1_500_000);
    assert_eq!(r.origin, HoldOrigin::User);
    let r = h.hold_best(event, "bob", 3, "regular", true);
    assert_eq!(r.seats, labels(&["Balcony-1-3", "Balcony-1-4", "Balcony-1-5"]));
}

#[test]
fn best_seats_leave_no_orphan_when_avoidable() {
    let mut h = Harness::new();
    let event = h.rows_event(&[6, 6], |_| {});
    h.hold(event, "bob", &["S-1-1"]);
    // Row 1 has five free seats: any four of them strand one. In row 2 the
    // centred block (S-2-2..5) would strand S-2-1; S-2-1..4 strands nothing.
    let r = h.hold_best(event, "alice", 4, "std", true);
    assert_eq!(r.seats, labels(&["S-2-1", "S-2-2", "S-2-3", "S-2-4"]));
    // Three seats fit row 1 without an orphan (S-1-2..4 leaves S-1-5, S-1-6 together).
    let r = h.hold_best(event, "carol", 3, "std", true);
    assert_eq!(r.seats, labels(&["S-1-2", "S-1-3", "S-1-4"]));
}

#[test]
fn best_seats_take_an_orphaning_block_when_nothing_else_fits() {
    let mut h = Harness::new();
    let event = h.rows_event(&[5], |_| {});
    h.hold(event, "bob", &["S-1-1"]);
    let r = h.hold_best(event, "alice", 3, "std", true);
    assert_eq!(r.seats.len(), 3);
    assert!(!r.seats.contains(&"S-1-1".to_string()));
}

#[test]
fn best_seats_are_deterministic() {
    let run = || {
        let mut h = Harness::new();
        let event = h.rows_event(&[10, 10, 10], |_| {});
        h.hold(event, "bob", &["S-1-5", "S-2-2", "S-2-9"]);
        let first = h.hold_best(event, "alice", 5, "std", false);
        h.ok(Op::ReleaseHold { hold: first.hold, user: "alice".into() });
        let again = h.hold_best(event, "alice", 5, "std", false);
        assert_eq!(first.seats, again.seats, "the same statuses give the same seats");
        again.seats
    };
    assert_eq!(run(), run(), "every replica picks the same seats");
}

#[test]
fn accessible_only_uses_accessible_seats() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let (outcome, _) = h.ok_fx(accessible_op(event, "alice", 2, "regular"));
    let Outcome::Held(r) = outcome else { panic!("{outcome:?}") };
    assert_eq!(r.seats, labels(&["Balcony-3-1", "Balcony-3-2"]));
    // Only two accessible seats exist and both are taken now.
    assert_eq!(h.err(accessible_op(event, "bob", 1, "regular")), Rejection::SoldOut);
    // Premium has no accessible seats at all.
    assert_eq!(h.err(accessible_op(event, "bob", 1, "premium")), Rejection::SoldOut);
}

#[test]
fn too_few_seats_left_is_sold_out() {
    let mut h = Harness::new();
    let event = h.rows_event(&[3, 3], |_| {});
    h.hold(event, "bob", &["S-1-1", "S-1-2", "S-2-3"]);
    let err = h.err(best_op(event, "alice", 4, "std", false));
    assert_eq!(err, Rejection::SoldOut);
    assert_eq!(err.code(), "sold_out");
    assert_eq!(h.err(best_op(event, "alice", 4, "std", true)), Rejection::SoldOut);
    let r = h.hold_best(event, "alice", 3, "std", false);
    assert_eq!(r.seats, labels(&["S-1-3", "S-2-1", "S-2-2"]));
}

#[test]
fn together_fails_when_no_row_fits_but_split_works() {
    let mut h = Harness::new();
    let event = h.rows_event(&[4, 4], |_| {});
    h.hold(event, "bob", &["S-1-2", "S-2-3"]);
    // Free: S-1-1, S-1-3, S-1-4, S-2-1, S-2-2, S-2-4; no three in a row.
    let err = h.err(best_op(event, "alice", 3, "std", true));
    assert_eq!(err, Rejection::NotTogether { count: 3 });
    assert_eq!(err.code(), "not_together");
    // Split: the longest runs first, the better row first among equals.
    let r = h.hold_best(event, "alice", 3, "std", false);
    assert_eq!(r.seats, labels(&["S-1-3", "S-1-4", "S-2-1"]));
}

#[test]
fn best_available_only_looks_at_the_requested_category() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let r = h.hold_best(event, "alice", 10, "regular", false);
    assert!(r.seats.iter().all(|s| s.starts_with("Balcony-")), "{:?}", r.seats);
    assert_eq!(h.counts(event, "premium").held, 0);
    assert_eq!(h.counts(event, "regular").held, 10);
}

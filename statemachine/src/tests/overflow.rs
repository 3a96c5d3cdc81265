//! Nothing a command carries may panic `apply`: prices are bounded when an
//! event is created, and every sum that input reaches is checked, so a
//! state written before those bounds (or a log's extreme times) gets a
//! rejection that changes nothing.

use super::support::*;
use crate::*;

#[test]
fn a_price_above_the_bound_is_refused_and_names_it() {
    let mut h = Harness::new();
    let venue = h.venue();
    for price in [PRICE_MINOR_UNITS_MAX + 1, u64::MAX] {
        let mut spec = event_spec(venue, h.now);
        spec.prices[0].1 = price;
        match h.err(Op::CreateEvent(spec)) {
            Rejection::InvalidEvent(msg) => assert!(msg.contains("price_minor_units_max"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    let event = h.event_with(venue, |s| s.prices[0].1 = PRICE_MINOR_UNITS_MAX);
    let held = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    assert_eq!(held.total_price, 2 * PRICE_MINOR_UNITS_MAX);
}

/// An event as a snapshot made before the price bound may carry it.
fn event_priced(h: &mut Harness, price: u64) -> EventId {
    let venue = h.venue();
    let event = h.event(venue);
    h.state.p.events.get_mut(&event).unwrap().settings.prices[0] = price;
    event
}

#[test]
fn a_hold_whose_total_overflows_is_refused_without_a_trace() {
    let mut h = Harness::new();
    let event = event_priced(&mut h, u64::MAX / 2 + 1);
    h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(hold_op(event, "bob", &["Floor-A-3", "Floor-A-4"]));
    assert_eq!(err, Rejection::InvalidEvent("the seats' total price does not fit 64 bits".into()));
    assert!(matches!(h.err(best_op(event, "bob", 2, "premium", false)), Rejection::InvalidEvent(_)));
}

#[test]
fn a_waitlist_offer_whose_total_overflows_keeps_the_entry_waiting() {
    let mut h = Harness::new();
    let event = event_priced(&mut h, u64::MAX / 2 + 1);
    let floor: Vec<String> = ["A", "B"].iter().flat_map(|r| (1..=10).map(move |n| format!("Floor-{r}-{n}"))).collect();
    let seats: Vec<&str> = floor.iter().map(String::as_str).filter(|s| *s != "Floor-A-1").collect();
    let holds: Vec<HoldId> =
        seats.iter().enumerate().map(|(i, s)| h.hold(event, &format!("u{i}"), &[s]).hold).collect();
    let (entry, _) = h.join(event, "wanda", 2, "premium");
    h.ok(Op::ReleaseHold { hold: holds[0], user: "u0".into() });
    let (_, fx) = h.ok_fx(Op::ReleaseHold { hold: holds[1], user: "u1".into() });
    assert!(!fx.iter().any(|e| matches!(e, DomainEvent::WaitlistOffered { .. })), "{fx:?}");
    assert!(h.state.p.waitlist.contains_key(&entry), "the entry keeps its place");
}

#[test]
fn a_hold_at_the_end_of_time_is_refused() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, |s| s.starts_at_ms = u64::MAX);
    h.now = u64::MAX - 1000;
    let err = h.err(hold_op(event, "alice", &["Floor-A-2"]));
    assert_eq!(err, Rejection::InvalidRequest("the entry's time is out of range".into()));
}

#[test]
fn an_extension_near_the_end_of_time_saturates() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, |s| s.starts_at_ms = u64::MAX);
    h.now = u64::MAX - 700 * SEC;
    let held = h.hold(event, "alice", &["Floor-A-2"]);
    h.advance(500 * SEC);
    match h.ok(Op::ExtendHold { hold: held.hold, user: "alice".into(), secs: 600 }) {
        Outcome::Extended { expires_at_ms, .. } => assert_eq!(expires_at_ms, u64::MAX),
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_ticket_whose_versions_are_used_up_is_not_transferred() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let held = h.hold(event, "alice", &["Floor-A-2"]);
    let booked = h.book(held.hold, "alice");
    let ticket = booked.tickets[0].0;
    h.state.p.tickets.get_mut(&ticket).unwrap().version = u32::MAX;
    let err = h.err(Op::TransferTicket { ticket, user: "alice".into(), to_user: "bob".into() });
    assert_eq!(err.code(), "limit_reached");
}

#[test]
fn commands_are_refused_once_the_id_reserve_is_reached() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    h.state.p.next_id = u64::MAX - 10;
    let err = h.err(hold_op(event, "alice", &["Floor-A-2"]));
    assert_eq!(err.code(), "limit_reached");
}

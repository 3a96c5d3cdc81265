//! Bounds on ids and texts. Bounds on tables are tested with the rules they
//! guard (holds, payments, waitlist, dedup, pruning, catalog).

use super::support::*;
use crate::*;

fn setup_with(limits: Limits) -> (Harness, EventId) {
    let mut h = Harness::with_limits(limits);
    let venue = h.venue();
    let event = h.event(venue);
    (h, event)
}

#[test]
fn a_user_id_over_id_bytes_max_is_invalid() {
    let (mut h, event) = setup_with(Limits { id_bytes_max: 8, ..Limits::default() });
    let err = h.err(hold_op(event, "123456789", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("user is longer than 8 bytes")), "{err:?}");
    h.hold(event, "12345678", &["Floor-A-2"]);
}

#[test]
fn a_user_id_with_control_characters_is_invalid() {
    let (mut h, event) = setup_with(Limits::default());
    let err = h.err(hold_op(event, "al\nice", &["Floor-A-2"]));
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("control characters")), "{err:?}");
}

#[test]
fn an_intent_id_over_id_bytes_max_is_invalid() {
    let (mut h, event) = setup_with(Limits { id_bytes_max: 8, ..Limits::default() });
    let r = h.hold(event, "alice", &["Floor-A-2"]);
    let err = h.err(Op::BeginPayment { hold: r.hold, user: "alice".into(), intent: "pi-123456".into() });
    assert!(matches!(err, Rejection::InvalidRequest(ref m) if m.contains("payment intent")), "{err:?}");
}

#[test]
fn an_event_title_over_text_bytes_max_is_invalid() {
    let mut h = Harness::with_limits(Limits { text_bytes_max: 14, ..Limits::default() });
    let mut spec = small_venue();
    spec.name = "Wankhede".into();
    let venue = h.venue_with(spec);
    let mut event = event_spec(venue, h.now);
    event.title = "A".repeat(15);
    let err = h.err(Op::CreateEvent(event.clone()));
    assert!(matches!(err, Rejection::InvalidEvent(ref m) if m.contains("title is longer than 14 bytes")), "{err:?}");
    event.title = "A".repeat(14);
    h.ok(Op::CreateEvent(event));
}

#[test]
fn the_default_limits_are_the_documented_ones() {
    let l = Limits::default();
    assert_eq!(l.user_holds_live_max, 16);
    assert_eq!(l.hold_extensions_max, 2);
    assert_eq!(l.hold_payment_attempts_max, 8);
    assert_eq!(l.id_bytes_max, 128);
    assert_eq!(l.text_bytes_max, 200);
    assert_eq!(l.dedup_age_secs_max, 24 * 3600);
    assert_eq!(l.hold_finished_age_secs_max, 24 * 3600);
    assert_eq!(HOLD_LIFETIME_TTLS_MAX, 2);
    assert_eq!(REFUND_TIERS_MAX, 8);
}

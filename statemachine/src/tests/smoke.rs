//! The main flow end to end: venue, event, hold, pay, confirm, cancel.

use super::support::*;
use crate::*;

#[test]
fn hold_pay_confirm_cancel() {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    assert_eq!(h.counts(event, "premium"), Counts { available: 19, held: 0, booked: 0, blocked: 1 });
    let hold = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    assert_eq!(hold.total_price, 3_000_000);
    assert_eq!(hold.expires_at_ms, h.now + 600 * SEC);
    assert_eq!(h.counts(event, "premium").held, 2);
    let booking = h.book(hold.hold, "alice");
    assert_eq!(booking.seats, vec!["Floor-A-2", "Floor-A-3"]);
    assert_eq!(h.counts(event, "premium").booked, 2);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Booked);
    let cancelled = h.ok(Op::CancelBooking { booking: booking.booking, user: "alice".into() });
    assert_eq!(
        cancelled,
        Outcome::Cancelled { booking: booking.booking, refund_percent: 100, refund_amount: 3_000_000 }
    );
    assert_eq!(h.counts(event, "premium"), Counts { available: 19, held: 0, booked: 0, blocked: 1 });
    let restored = State::restore(&h.state.snapshot()).unwrap();
    assert_eq!(restored, h.state);
    assert_eq!(restored.snapshot(), h.state.snapshot());
}

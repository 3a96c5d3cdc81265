//! The contract's JSON shapes of the state machine's views. Times are RFC
//! 3339, money integer minor units, ids external.

use serde_json::{json, Map, Value};
use statemachine::{BookingReceipt, BookingView, EventView, HoldReceipt, HoldView, SeatMap, TicketStatus, TicketView};

use super::ids::{BOOKING, EVENT, HOLD, TICKET, VENUE};
use crate::text::rfc3339;

pub(crate) fn availability(e: &EventView) -> Value {
    let mut out = Map::new();
    for (category, c) in &e.availability {
        out.insert(
            category.clone(),
            json!({"total": c.total(), "available": c.available, "held": c.held, "booked": c.booked, "blocked": c.blocked}),
        );
    }
    Value::Object(out)
}

/// One line of the event list.
pub(crate) fn event_summary(group: u64, e: &EventView) -> Value {
    json!({
        "event_id": EVENT.format(group, e.id.0),
        "title": e.title,
        "kind": e.kind.as_str(),
        "city": e.city,
        "region": e.region,
        "venue_name": e.venue_name,
        "starts_at": rfc3339(e.starts_at_ms),
        "min_price": e.min_price(),
        "currency": e.currency,
        "available": e.available(),
    })
}

/// An event's details.
pub(crate) fn event_details(group: u64, e: &EventView) -> Value {
    let prices: Map<String, Value> = e.prices.iter().map(|(c, p)| (c.clone(), json!(p))).collect();
    let refund: Vec<Value> =
        e.refund_policy.iter().map(|t| json!({"min_hours_before": t.min_hours_before, "percent": t.percent})).collect();
    let waiting_room = e.waiting_room.map(|w| {
        json!({"enabled": w.enabled, "admit_per_minute": w.admit_per_minute, "active_max": w.active_max,
               "activate_above_per_sec": w.activate_above_per_sec})
    });
    json!({
        "event_id": EVENT.format(group, e.id.0),
        "venue_id": VENUE.format(group, e.venue.0),
        "venue_name": e.venue_name,
        "city": e.city,
        "region": e.region,
        "title": e.title,
        "kind": e.kind.as_str(),
        "starts_at": rfc3339(e.starts_at_ms),
        "genre": e.genre,
        "language": e.language,
        "currency": e.currency,
        "prices": prices,
        "min_price": e.min_price(),
        "sale_opens_at": rfc3339(e.sale_opens_at_ms),
        "sale_closes_at": rfc3339(e.sale_closes_at_ms),
        "on_sale": e.on_sale,
        "max_seats_per_hold": e.max_seats_per_hold,
        "hold_ttl_secs": e.hold_ttl_secs,
        "refund_policy": refund,
        "waiting_room": waiting_room,
        "waitlist_length": e.waitlist_len,
        "available": e.available(),
        "availability": availability(e),
    })
}

pub(crate) fn seat_map(group: u64, m: &SeatMap) -> Value {
    let seats: Vec<Value> = m
        .seats
        .iter()
        .map(|s| {
            json!({"seat_id": s.seat_id, "section": s.section, "row": s.row, "number": s.number,
                   "category": s.category, "price": s.price, "accessible": s.accessible, "status": s.status.as_str()})
        })
        .collect();
    json!({"event_id": EVENT.format(group, m.event.0), "as_of_index": m.as_of_index, "seats": seats})
}

pub(crate) fn hold_receipt(group: u64, h: &HoldReceipt) -> Value {
    json!({
        "hold_id": HOLD.format(group, h.hold.0),
        "event_id": EVENT.format(group, h.event.0),
        "seat_ids": h.seats,
        "status": "active",
        "expires_at": rfc3339(h.expires_at_ms),
        "total_price": h.total_price,
        "currency": h.currency,
        "origin": origin(h.origin),
    })
}

fn origin(o: statemachine::HoldOrigin) -> &'static str {
    match o {
        statemachine::HoldOrigin::User => "user",
        statemachine::HoldOrigin::Waitlist => "waitlist",
    }
}

pub(crate) fn hold(group: u64, h: &HoldView) -> Value {
    json!({
        "hold_id": HOLD.format(group, h.id.0),
        "event_id": EVENT.format(group, h.event.0),
        "seat_ids": h.seats,
        "status": h.status.as_str(),
        "expires_at": rfc3339(h.expires_at_ms),
        "total_price": h.total_price,
        "currency": h.currency,
        "origin": origin(h.origin),
        "booking_id": h.booking.map(|b| BOOKING.format(group, b.0)),
    })
}

fn tickets(group: u64, tickets: &[(statemachine::TicketId, String)]) -> Vec<Value> {
    tickets.iter().map(|(t, seat)| json!({"ticket_id": TICKET.format(group, t.0), "seat_id": seat})).collect()
}

pub(crate) fn booking_receipt(group: u64, b: &BookingReceipt) -> Value {
    json!({
        "booking_id": BOOKING.format(group, b.booking.0),
        "status": "confirmed",
        "event_id": EVENT.format(group, b.event.0),
        "hold_id": HOLD.format(group, b.hold.0),
        "seat_ids": b.seats,
        "total_price": b.total_price,
        "currency": b.currency,
        "tickets": tickets(group, &b.tickets),
    })
}

pub(crate) fn booking(group: u64, b: &BookingView) -> Value {
    let mut v = json!({
        "booking_id": BOOKING.format(group, b.id.0),
        "status": b.status.as_str(),
        "event_id": EVENT.format(group, b.event.0),
        "hold_id": HOLD.format(group, b.hold.0),
        "seat_ids": b.seats,
        "total_price": b.total_price,
        "currency": b.currency,
        "tickets": tickets(group, &b.tickets),
    });
    if b.status == statemachine::BookingViewStatus::Cancelled {
        v["refund_percent"] = json!(b.refund_percent);
        v["refund_amount"] = json!(b.refund_amount);
    }
    v
}

pub(crate) fn ticket_status(s: TicketStatus) -> &'static str {
    match s {
        TicketStatus::Valid => "valid",
        TicketStatus::Used => "used",
        TicketStatus::Cancelled => "cancelled",
    }
}

pub(crate) fn ticket(group: u64, t: &TicketView, qr_payload: &str) -> Value {
    json!({
        "ticket_id": TICKET.format(group, t.id.0),
        "booking_id": BOOKING.format(group, t.booking.0),
        "event_id": EVENT.format(group, t.event.0),
        "seat_id": t.seat,
        "holder": t.holder,
        "version": t.version,
        "status": ticket_status(t.status),
        "checked_in_at": t.checked_in_at_ms.map(rfc3339),
        "qr_payload": qr_payload,
    })
}

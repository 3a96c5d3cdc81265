//! Venues and events: validation and creation.

use std::collections::BTreeSet;

use crate::command::{EventSpec, RefundTier, VenueSpec};
use crate::ids::{EventId, Millis, VenueId};
use crate::layout::{check_text, Venue};
use crate::limits::{
    EVENT_HOLD_TTL_SECS_DEFAULT, EVENT_HOLD_TTL_SECS_MAX, EVENT_SEATS_PER_HOLD_DEFAULT, EVENT_SEATS_PER_HOLD_MAX,
    PRICE_MINOR_UNITS_MAX, REFUND_TIERS_MAX,
};
use crate::outcome::{DomainEvent, Outcome, Rejection};
use crate::records::{Counts, Event, EventSettings};
use crate::state::{Fx, State, SEAT_AVAILABLE, SEAT_BLOCKED};

/// The contract's default refund policy: 100 % from 24 h before the start,
/// 50 % from 2 h, no cancellation after that.
pub(crate) fn default_refund_policy() -> Vec<RefundTier> {
    vec![RefundTier { min_hours_before: 24, percent: 100 }, RefundTier { min_hours_before: 2, percent: 50 }]
}

/// `s`, or its first bytes (at most `max`, cut at a character) and an
/// ellipsis: what a rejection message may echo of the input.
pub(crate) fn shown(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn bad(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidEvent(msg.into())
}

impl State {
    pub(crate) fn create_venue(&mut self, spec: &VenueSpec, fx: &mut Fx) -> Result<Outcome, Rejection> {
        if self.p.venues.len() >= self.p.limits.venues_max as usize {
            return Err(Rejection::LimitReached(format!("venues_max = {}", self.p.limits.venues_max)));
        }
        // Validate before allocating an id so a rejection changes nothing.
        let mut venue = Venue::build(VenueId(0), spec.clone(), &self.p.limits)?;
        venue.id = VenueId(self.alloc_id());
        let outcome = Outcome::VenueCreated { venue: venue.id, capacity: venue.derived.capacity };
        fx.push(DomainEvent::VenueCreated { venue: venue.id });
        self.p.venues.insert(venue.id, venue);
        Ok(outcome)
    }

    pub(crate) fn create_event(&mut self, spec: &EventSpec, now: Millis, fx: &mut Fx) -> Result<Outcome, Rejection> {
        if self.p.events.len() >= self.p.limits.events_max as usize {
            return Err(Rejection::LimitReached(format!("events_max = {}", self.p.limits.events_max)));
        }
        let venue = self.p.venues.get(&spec.venue).ok_or(Rejection::VenueNotFound)?;
        let settings = validate_event(spec, venue, now, &self.p.limits)?;
        let layout = &venue.derived;
        let mut seats = crate::statuses::Statuses::new(layout.capacity, SEAT_AVAILABLE);
        let mut counts = vec![Counts::default(); layout.categories.len()];
        for (row_idx, row) in layout.rows.iter().enumerate() {
            counts[layout.category_of_row(row_idx) as usize].available += row.seats;
        }
        for &seat in &layout.blocked {
            let c = &mut counts[layout.category_of(seat) as usize];
            c.available -= 1;
            c.blocked += 1;
            seats.set(seat, SEAT_BLOCKED);
        }
        let id = EventId(self.alloc_id());
        let event = Event {
            id,
            settings,
            created_at_ms: now,
            seats,
            counts,
            live_holds: Default::default(),
            waitlist: Default::default(),
        };
        self.p.events.insert(id, event);
        fx.push(DomainEvent::EventCreated { event: id });
        Ok(Outcome::EventCreated { event: id })
    }
}

fn validate_event(
    spec: &EventSpec,
    venue: &Venue,
    now: Millis,
    limits: &crate::limits::Limits,
) -> Result<EventSettings, Rejection> {
    check_text("title", &spec.title, limits).map_err(bad)?;
    check_text("genre", &spec.genre, limits).map_err(bad)?;
    check_text("language", &spec.language, limits).map_err(bad)?;
    if spec.currency.len() != 3 || !spec.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        // Three bytes are echoed at most: the message is kept with the rejection.
        return Err(bad(format!("currency {:?} is not an ISO 4217 code", shown(&spec.currency, 3))));
    }
    let layout = &venue.derived;
    let mut prices = vec![None; layout.categories.len()];
    for (category, price) in &spec.prices {
        let shown = || shown(category, limits.text_bytes_max as usize);
        let idx = layout.category(category).ok_or_else(|| bad(format!("price for unknown category {:?}", shown())))?;
        if *price > PRICE_MINOR_UNITS_MAX {
            return Err(bad(format!(
                "price of category {category:?} is above price_minor_units_max = {PRICE_MINOR_UNITS_MAX}"
            )));
        }
        if prices[idx as usize].replace(*price).is_some() {
            return Err(bad(format!("two prices for category {category:?}")));
        }
    }
    let prices = prices
        .into_iter()
        .zip(&layout.categories)
        .map(|(p, name)| p.ok_or_else(|| bad(format!("no price for category {name:?}"))))
        .collect::<Result<Vec<u64>, _>>()?;
    let max_seats_per_hold = spec.max_seats_per_hold.unwrap_or(EVENT_SEATS_PER_HOLD_DEFAULT);
    if !(1..=EVENT_SEATS_PER_HOLD_MAX).contains(&max_seats_per_hold) {
        return Err(bad(format!("max_seats_per_hold must be 1..={EVENT_SEATS_PER_HOLD_MAX}")));
    }
    let hold_ttl_secs = spec.hold_ttl_secs.unwrap_or(EVENT_HOLD_TTL_SECS_DEFAULT);
    if !(1..=EVENT_HOLD_TTL_SECS_MAX).contains(&hold_ttl_secs) {
        return Err(bad(format!("hold_ttl_secs must be 1..={EVENT_HOLD_TTL_SECS_MAX}")));
    }
    if spec.starts_at_ms <= now {
        return Err(bad("the event must start in the future"));
    }
    let sale_closes_at_ms = spec.sale_closes_at_ms.unwrap_or(spec.starts_at_ms);
    if spec.sale_opens_at_ms >= sale_closes_at_ms {
        return Err(bad("the sale must open before it closes"));
    }
    if sale_closes_at_ms > spec.starts_at_ms {
        return Err(bad("the sale must close no later than the start"));
    }
    let mut refund_policy = spec.refund_policy.clone().unwrap_or_else(default_refund_policy);
    if refund_policy.len() > REFUND_TIERS_MAX {
        return Err(bad(format!("at most {REFUND_TIERS_MAX} refund tiers")));
    }
    refund_policy.sort_by_key(|tier| std::cmp::Reverse(tier.min_hours_before));
    let mut hours = BTreeSet::new();
    for tier in &refund_policy {
        if tier.percent > 100 {
            return Err(bad("refund percent above 100"));
        }
        if !hours.insert(tier.min_hours_before) {
            return Err(bad("two refund tiers with the same min_hours_before"));
        }
    }
    if let Some(room) = &spec.waiting_room {
        if room.enabled && (room.admit_per_minute == 0 || room.active_max == 0) {
            return Err(bad("an enabled waiting room needs admit_per_minute and active_max above 0"));
        }
    }
    Ok(EventSettings {
        venue: venue.id,
        title: spec.title.clone(),
        kind: spec.kind,
        starts_at_ms: spec.starts_at_ms,
        genre: spec.genre.clone(),
        language: spec.language.clone(),
        currency: spec.currency.clone(),
        prices,
        sale_opens_at_ms: spec.sale_opens_at_ms,
        sale_closes_at_ms,
        max_seats_per_hold,
        hold_ttl_secs,
        refund_policy,
        waiting_room: spec.waiting_room,
    })
}

//! Catalog rules: venue layouts, event settings and their defaults, and the
//! shard-wide bounds on venues and events.

use super::support::*;
use crate::*;

/// Creates `small_venue()` edited by `edit` under `limits`; expects
/// `invalid_layout` and returns its message.
fn layout_rejected(limits: Limits, edit: impl FnOnce(&mut VenueSpec)) -> String {
    let mut h = Harness::with_limits(limits);
    let mut spec = small_venue();
    edit(&mut spec);
    let err = h.err(Op::CreateVenue(spec));
    assert_eq!(err.code(), "invalid_layout");
    match err {
        Rejection::InvalidLayout(msg) => msg,
        other => panic!("expected InvalidLayout, got {other:?}"),
    }
}

fn assert_layout_rejected(edit: impl FnOnce(&mut VenueSpec), expected: &str) {
    let msg = layout_rejected(Limits::default(), edit);
    assert!(msg.contains(expected), "message {msg:?} does not mention {expected:?}");
}

/// Creates the harness event edited by `edit`; expects `invalid_event` and
/// returns its message.
fn event_rejected(edit: impl FnOnce(&mut EventSpec)) -> String {
    let mut h = Harness::new();
    let venue = h.venue();
    let mut spec = event_spec(venue, h.now);
    edit(&mut spec);
    let err = h.err(Op::CreateEvent(spec));
    assert_eq!(err.code(), "invalid_event");
    match err {
        Rejection::InvalidEvent(msg) => msg,
        other => panic!("expected InvalidEvent, got {other:?}"),
    }
}

fn assert_event_rejected(edit: impl FnOnce(&mut EventSpec), expected: &str) {
    let msg = event_rejected(edit);
    assert!(msg.contains(expected), "message {msg:?} does not mention {expected:?}");
}

fn assert_event_accepted(edit: impl FnOnce(&mut EventSpec)) -> (Harness, EventId) {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event_with(venue, edit);
    (h, event)
}

// ---- venues ----

#[test]
fn venue_is_created_with_its_capacity_and_layout() {
    let mut h = Harness::new();
    let (outcome, events) = h.ok_fx(Op::CreateVenue(small_venue()));
    let Outcome::VenueCreated { venue, capacity } = outcome else { panic!("{outcome:?}") };
    assert_eq!(capacity, 2 * 10 + 3 * 8);
    assert_eq!(events, vec![DomainEvent::VenueCreated { venue }]);
    let view = h.state.venue(venue).expect("venue is stored");
    assert_eq!(view.capacity, 44);
    assert_eq!(view.spec, small_venue());
    assert_eq!(h.state.venue_ids().collect::<Vec<_>>(), vec![venue]);
    let second = h.venue();
    assert_ne!(second, venue, "each venue gets its own id");
}

#[test]
fn section_names_may_contain_a_dash() {
    let mut h = Harness::new();
    let mut spec = small_venue();
    spec.sections[1].name = "Upper-Tier".into();
    spec.accessible_seats = vec!["Upper-Tier-3-1".into()];
    let venue = h.venue_with(spec);
    let event = h.event(venue);
    let hold = h.hold(event, "alice", &["Upper-Tier-2-8"]);
    assert_eq!(hold.seats, vec!["Upper-Tier-2-8"]);
    assert_eq!(hold.total_price, 450_000);
}

#[test]
fn layout_without_sections_is_invalid() {
    assert_layout_rejected(|s| s.sections.clear(), "no sections");
}

#[test]
fn layout_with_empty_name_is_invalid() {
    assert_layout_rejected(|s| s.name = "  ".into(), "name is empty");
}

#[test]
fn layout_with_empty_city_is_invalid() {
    assert_layout_rejected(|s| s.city = String::new(), "city is empty");
}

#[test]
fn layout_with_empty_region_is_invalid() {
    assert_layout_rejected(|s| s.region = String::new(), "region is empty");
}

#[test]
fn layout_with_control_characters_in_a_name_is_invalid() {
    assert_layout_rejected(|s| s.name = "Arena\n".into(), "name contains control characters");
}

#[test]
fn layout_with_a_name_over_the_text_limit_is_invalid() {
    let limits = Limits { text_bytes_max: 8, ..Limits::default() };
    let msg = layout_rejected(limits, |s| s.name = "123456789".into());
    assert!(msg.contains("name is longer than 8 bytes"), "{msg}");
}

#[test]
fn layout_with_empty_section_name_is_invalid() {
    assert_layout_rejected(|s| s.sections[0].name = String::new(), "section name is empty");
}

#[test]
fn layout_with_empty_category_is_invalid() {
    assert_layout_rejected(|s| s.sections[0].category = String::new(), "category is empty");
}

#[test]
fn layout_with_duplicate_sections_is_invalid() {
    assert_layout_rejected(|s| s.sections[1].name = "Floor".into(), "duplicate section \"Floor\"");
}

#[test]
fn layout_with_a_section_without_rows_is_invalid() {
    assert_layout_rejected(|s| s.sections[1].rows.clear(), "section \"Balcony\" has no rows");
}

#[test]
fn layout_with_duplicate_rows_is_invalid() {
    assert_layout_rejected(|s| s.sections[0].rows[1].label = "A".into(), "duplicate row Floor-A");
}

#[test]
fn layout_with_an_empty_row_label_is_invalid() {
    assert_layout_rejected(|s| s.sections[0].rows[0].label = String::new(), "row label is empty");
}

#[test]
fn layout_with_a_dash_in_a_row_label_is_invalid() {
    assert_layout_rejected(|s| s.sections[0].rows[0].label = "A-1".into(), "contains '-'");
}

#[test]
fn layout_with_a_row_of_zero_seats_is_invalid() {
    assert_layout_rejected(|s| s.sections[0].rows[0].seats = 0, "row Floor-A must have 1..=2000 seats");
}

#[test]
fn layout_with_a_row_over_row_seats_max_is_invalid() {
    let limits = Limits { row_seats_max: 9, ..Limits::default() };
    let msg = layout_rejected(limits, |_| {});
    assert!(msg.contains("row Floor-A must have 1..=9 seats"), "{msg}");
}

#[test]
fn layout_over_venue_seats_max_is_invalid() {
    let limits = Limits { venue_seats_max: 43, ..Limits::default() };
    let msg = layout_rejected(limits, |_| {});
    assert!(msg.contains("more than 43 seats"), "{msg}");
    // Exactly at the bound is fine.
    let mut h = Harness::with_limits(Limits { venue_seats_max: 44, ..Limits::default() });
    h.venue();
}

#[test]
fn layout_over_venue_sections_max_is_invalid() {
    let limits = Limits { venue_sections_max: 1, ..Limits::default() };
    let msg = layout_rejected(limits, |_| {});
    assert!(msg.contains("more than 1 sections"), "{msg}");
}

#[test]
fn layout_over_section_rows_max_is_invalid() {
    let limits = Limits { section_rows_max: 2, ..Limits::default() };
    let msg = layout_rejected(limits, |_| {});
    assert!(msg.contains("section \"Balcony\" has too many rows"), "{msg}");
}

#[test]
fn layout_over_venue_categories_max_is_invalid() {
    let limits = Limits { venue_categories_max: 1, ..Limits::default() };
    let msg = layout_rejected(limits, |_| {});
    assert!(msg.contains("more than 1 categories"), "{msg}");
}

#[test]
fn layout_with_an_unknown_blocked_seat_is_invalid() {
    assert_layout_rejected(|s| s.blocked_seats.push("Floor-Z-1".into()), "blocked_seats: unknown seat \"Floor-Z-1\"");
}

#[test]
fn layout_with_a_blocked_seat_past_the_row_end_is_invalid() {
    assert_layout_rejected(|s| s.blocked_seats.push("Floor-A-11".into()), "blocked_seats: unknown seat");
}

#[test]
fn layout_with_a_duplicate_blocked_seat_is_invalid() {
    assert_layout_rejected(|s| s.blocked_seats.push("Floor-A-1".into()), "blocked_seats: duplicate seats");
}

#[test]
fn layout_with_an_unknown_accessible_seat_is_invalid() {
    assert_layout_rejected(
        |s| s.accessible_seats.push("Balcony-9-1".into()),
        "accessible_seats: unknown seat \"Balcony-9-1\"",
    );
}

#[test]
fn layout_with_a_duplicate_accessible_seat_is_invalid() {
    assert_layout_rejected(|s| s.accessible_seats.push("Balcony-3-1".into()), "accessible_seats: duplicate seats");
}

#[test]
fn venues_max_is_enforced() {
    let mut h = Harness::with_limits(Limits { venues_max: 1, ..Limits::default() });
    h.venue();
    let err = h.err(Op::CreateVenue(small_venue()));
    assert_eq!(err, Rejection::LimitReached("venues_max = 1".into()));
    assert_eq!(err.code(), "limit_reached");
    assert_eq!(h.state.venue_ids().count(), 1);
}

// ---- events ----

#[test]
fn event_is_created_with_the_contract_defaults() {
    let mut h = Harness::new();
    let venue = h.venue();
    let spec = event_spec(venue, h.now);
    let (outcome, events) = h.ok_fx(Op::CreateEvent(spec.clone()));
    let Outcome::EventCreated { event } = outcome else { panic!("{outcome:?}") };
    assert_eq!(events, vec![DomainEvent::EventCreated { event }]);
    let view = h.state.event(event, h.now).expect("event is stored");
    assert_eq!(view.max_seats_per_hold, 10);
    assert_eq!(view.max_seats_per_hold, EVENT_SEATS_PER_HOLD_DEFAULT);
    assert_eq!(view.hold_ttl_secs, 600);
    assert_eq!(view.hold_ttl_secs, EVENT_HOLD_TTL_SECS_DEFAULT);
    assert_eq!(
        view.refund_policy,
        vec![RefundTier { min_hours_before: 24, percent: 100 }, RefundTier { min_hours_before: 2, percent: 50 }]
    );
    assert_eq!(view.sale_closes_at_ms, spec.starts_at_ms, "the sale closes at the start by default");
    assert_eq!(view.sale_opens_at_ms, spec.sale_opens_at_ms);
    assert_eq!(view.waiting_room, None);
    assert_eq!(view.venue, venue);
    assert_eq!(view.venue_name, "Wankhede Arena");
    assert_eq!(view.city, "Mumbai");
    assert_eq!(view.region, "ap-south");
    assert_eq!(view.currency, "INR");
    assert_eq!(view.kind, EventKind::Concert);
    assert_eq!(view.prices, vec![("premium".to_string(), 1_500_000), ("regular".to_string(), 450_000)]);
    assert_eq!(view.min_price(), 450_000);
    assert_eq!(
        view.availability,
        vec![
            ("premium".to_string(), Counts { available: 19, held: 0, booked: 0, blocked: 1 }),
            ("regular".to_string(), Counts { available: 24, held: 0, booked: 0, blocked: 0 }),
        ]
    );
    assert_eq!(view.available(), 43);
    assert_eq!(view.waitlist_len, 0);
    assert_eq!(h.seat_status(event, "Floor-A-1"), SeatStatus::Blocked);
    assert_eq!(h.seat_status(event, "Floor-A-2"), SeatStatus::Available);
}

#[test]
fn event_keeps_explicit_settings_and_sorts_refund_tiers() {
    let (h, event) = assert_event_accepted(|s| {
        s.max_seats_per_hold = Some(4);
        s.hold_ttl_secs = Some(120);
        s.sale_closes_at_ms = Some(s.starts_at_ms - HOUR);
        s.refund_policy = Some(vec![
            RefundTier { min_hours_before: 6, percent: 25 },
            RefundTier { min_hours_before: 72, percent: 90 },
        ]);
        s.waiting_room = Some(WaitingRoomSpec {
            enabled: true,
            admit_per_minute: 2000,
            active_max: 5000,
            activate_above_per_sec: None,
        });
    });
    let view = h.state.event(event, h.now).unwrap();
    assert_eq!(view.max_seats_per_hold, 4);
    assert_eq!(view.hold_ttl_secs, 120);
    assert_eq!(view.sale_closes_at_ms, view.starts_at_ms - HOUR);
    assert_eq!(
        view.refund_policy,
        vec![RefundTier { min_hours_before: 72, percent: 90 }, RefundTier { min_hours_before: 6, percent: 25 }]
    );
    assert_eq!(view.waiting_room.map(|w| w.active_max), Some(5000));
}

#[test]
fn event_missing_a_price_for_a_category_is_invalid() {
    assert_event_rejected(|s| s.prices.retain(|(c, _)| c != "regular"), "no price for category \"regular\"");
}

#[test]
fn event_with_a_price_for_an_unknown_category_is_invalid() {
    assert_event_rejected(|s| s.prices.push(("vip".into(), 1)), "price for unknown category \"vip\"");
}

#[test]
fn event_with_two_prices_for_one_category_is_invalid() {
    assert_event_rejected(|s| s.prices.push(("premium".into(), 1)), "two prices for category \"premium\"");
}

#[test]
fn event_with_zero_seats_per_hold_is_invalid() {
    assert_event_rejected(|s| s.max_seats_per_hold = Some(0), "max_seats_per_hold must be 1..=100");
}

#[test]
fn event_with_101_seats_per_hold_is_invalid() {
    assert_event_rejected(|s| s.max_seats_per_hold = Some(101), "max_seats_per_hold must be 1..=100");
}

#[test]
fn event_seats_per_hold_bounds_are_inclusive() {
    assert_event_accepted(|s| s.max_seats_per_hold = Some(1));
    let (h, event) = assert_event_accepted(|s| s.max_seats_per_hold = Some(EVENT_SEATS_PER_HOLD_MAX));
    assert_eq!(h.state.event(event, h.now).unwrap().max_seats_per_hold, 100);
}

#[test]
fn event_with_zero_hold_ttl_is_invalid() {
    assert_event_rejected(|s| s.hold_ttl_secs = Some(0), "hold_ttl_secs must be 1..=3600");
}

#[test]
fn event_with_hold_ttl_3601_is_invalid() {
    assert_event_rejected(|s| s.hold_ttl_secs = Some(3601), "hold_ttl_secs must be 1..=3600");
}

#[test]
fn event_hold_ttl_bounds_are_inclusive() {
    assert_event_accepted(|s| s.hold_ttl_secs = Some(1));
    let (h, event) = assert_event_accepted(|s| s.hold_ttl_secs = Some(EVENT_HOLD_TTL_SECS_MAX));
    assert_eq!(h.state.event(event, h.now).unwrap().hold_ttl_secs, 3600);
}

#[test]
fn event_whose_sale_opens_after_it_closes_is_invalid() {
    assert_event_rejected(
        |s| {
            s.sale_closes_at_ms = Some(s.sale_opens_at_ms + HOUR);
            s.sale_opens_at_ms += 2 * HOUR;
        },
        "the sale must open before it closes",
    );
}

#[test]
fn event_whose_sale_opens_when_it_closes_is_invalid() {
    assert_event_rejected(|s| s.sale_closes_at_ms = Some(s.sale_opens_at_ms), "the sale must open before it closes");
}

#[test]
fn event_whose_sale_opens_after_the_start_is_invalid() {
    // With no explicit close, the sale closes at the start.
    assert_event_rejected(|s| s.sale_opens_at_ms = s.starts_at_ms + 1, "the sale must open before it closes");
}

#[test]
fn event_whose_sale_closes_after_the_start_is_invalid() {
    assert_event_rejected(
        |s| s.sale_closes_at_ms = Some(s.starts_at_ms + 1),
        "the sale must close no later than the start",
    );
}

#[test]
fn event_with_a_lowercase_currency_is_invalid() {
    assert_event_rejected(|s| s.currency = "inr".into(), "currency \"inr\" is not an ISO 4217 code");
}

#[test]
fn event_with_a_four_letter_currency_is_invalid() {
    assert_event_rejected(|s| s.currency = "INRX".into(), "is not an ISO 4217 code");
}

#[test]
fn event_with_an_empty_title_is_invalid() {
    assert_event_rejected(|s| s.title = " ".into(), "title is empty");
}

#[test]
fn event_with_more_than_eight_refund_tiers_is_invalid() {
    let tiers = |n: u32| (0..n).map(|i| RefundTier { min_hours_before: i, percent: 10 }).collect::<Vec<_>>();
    assert_event_rejected(|s| s.refund_policy = Some(tiers(9)), "at most 8 refund tiers");
    let (h, event) = assert_event_accepted(|s| s.refund_policy = Some(tiers(REFUND_TIERS_MAX as u32)));
    assert_eq!(h.state.event(event, h.now).unwrap().refund_policy.len(), 8);
}

#[test]
fn event_with_a_refund_percent_above_100_is_invalid() {
    assert_event_rejected(
        |s| s.refund_policy = Some(vec![RefundTier { min_hours_before: 24, percent: 101 }]),
        "refund percent above 100",
    );
    assert_event_accepted(|s| s.refund_policy = Some(vec![RefundTier { min_hours_before: 24, percent: 100 }]));
}

#[test]
fn event_with_duplicate_refund_tier_hours_is_invalid() {
    assert_event_rejected(
        |s| {
            s.refund_policy = Some(vec![
                RefundTier { min_hours_before: 24, percent: 100 },
                RefundTier { min_hours_before: 24, percent: 50 },
            ])
        },
        "two refund tiers with the same min_hours_before",
    );
}

#[test]
fn enabled_waiting_room_with_zero_admission_is_invalid() {
    assert_event_rejected(
        |s| {
            s.waiting_room = Some(WaitingRoomSpec {
                enabled: true,
                admit_per_minute: 0,
                active_max: 10,
                activate_above_per_sec: None,
            })
        },
        "an enabled waiting room needs",
    );
}

#[test]
fn enabled_waiting_room_with_zero_active_max_is_invalid() {
    assert_event_rejected(
        |s| {
            s.waiting_room = Some(WaitingRoomSpec {
                enabled: true,
                admit_per_minute: 10,
                active_max: 0,
                activate_above_per_sec: None,
            })
        },
        "an enabled waiting room needs",
    );
}

#[test]
fn disabled_waiting_room_may_have_zeros() {
    let (h, event) = assert_event_accepted(|s| {
        s.waiting_room =
            Some(WaitingRoomSpec { enabled: false, admit_per_minute: 0, active_max: 0, activate_above_per_sec: None })
    });
    assert_eq!(h.state.event(event, h.now).unwrap().waiting_room.map(|w| w.enabled), Some(false));
}

#[test]
fn event_at_an_unknown_venue_is_rejected() {
    let mut h = Harness::new();
    let venue = h.venue();
    let spec = event_spec(VenueId(venue.0 + 1000), h.now);
    let err = h.err(Op::CreateEvent(spec));
    assert_eq!(err, Rejection::VenueNotFound);
    assert_eq!(err.code(), "venue_not_found");
    assert_eq!(h.state.event_ids().count(), 0);
}

#[test]
fn events_max_is_enforced() {
    let mut h = Harness::with_limits(Limits { events_max: 1, ..Limits::default() });
    let venue = h.venue();
    h.event(venue);
    let err = h.err(Op::CreateEvent(event_spec(venue, h.now)));
    assert_eq!(err, Rejection::LimitReached("events_max = 1".into()));
    assert_eq!(h.state.event_ids().count(), 1);
}

#[test]
fn event_that_has_already_started_is_invalid() {
    // The harness clock is the spec's reference time: a start at or before it is in the past.
    assert_event_rejected(
        |s| {
            s.starts_at_ms = s.sale_opens_at_ms;
            s.sale_opens_at_ms -= HOUR;
        },
        "start in the future",
    );
}

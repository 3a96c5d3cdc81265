//! Bounds on everything that grows. The limits are part of the replicated
//! state (and of snapshots) so that every replica enforces the same ones.

use serde::{Deserialize, Serialize};

/// Bounds enforced by the state machine. Units come before `_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Venues per shard.
    pub venues_max: u32,
    /// Events per shard.
    pub events_max: u32,
    /// Seats in one venue.
    pub venue_seats_max: u32,
    /// Seats in one row.
    pub row_seats_max: u32,
    /// Sections in one venue.
    pub venue_sections_max: u32,
    /// Rows in one section.
    pub section_rows_max: u32,
    /// Seat categories in one venue.
    pub venue_categories_max: u32,
    /// Bytes of a name, title, city, genre, label.
    pub text_bytes_max: u32,
    /// Bytes of a user id, client id, request id or payment intent id.
    pub id_bytes_max: u32,
    /// Live holds in the shard.
    pub holds_live_max: u32,
    /// Live holds of one user across all events of the shard.
    pub user_holds_live_max: u32,
    /// How many times one hold may be extended.
    pub hold_extensions_max: u32,
    /// Finished (released, expired, confirmed) holds kept for lookups.
    pub holds_finished_max: u32,
    /// How long a finished hold stays visible to lookups.
    pub hold_finished_age_secs_max: u64,
    /// Payment attempts on one hold.
    pub hold_payment_attempts_max: u32,
    /// Payment intents (all states) in the shard.
    pub payment_intents_max: u32,
    /// Bookings in the shard.
    pub bookings_max: u32,
    /// Waitlist entries of one event.
    pub event_waitlist_entries_max: u32,
    /// Waitlist entries examined when seats free up (bounds one command's work).
    pub waitlist_scan_entries_max: u32,
    /// Remembered request ids (exactly-once table).
    pub dedup_entries_max: u32,
    /// How long a request id is remembered.
    pub dedup_age_secs_max: u64,
    /// Holds one expiry sweep may expire.
    pub sweep_holds_max: u32,
    /// Users in one event's waiting room.
    pub room_users_max: u32,
    /// Users in all waiting rooms of the shard.
    pub rooms_users_max: u64,
    /// Users one join entry may carry.
    pub room_join_users_max: u32,
    /// Admission steps one room keeps apart (older ones merge).
    pub room_steps_max: u32,
    /// Bytes of the exactly-once table, as counted by each entry's weight
    /// (about its heap bytes; see `Recorded::weight`).
    pub dedup_bytes_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            venues_max: 10_000,
            events_max: 100_000,
            venue_seats_max: 200_000,
            row_seats_max: 2_000,
            venue_sections_max: 256,
            section_rows_max: 1_000,
            venue_categories_max: 16,
            text_bytes_max: 200,
            id_bytes_max: 128,
            holds_live_max: 1_000_000,
            user_holds_live_max: 16,
            hold_extensions_max: 2,
            holds_finished_max: 1_000_000,
            hold_finished_age_secs_max: 24 * 3600,
            hold_payment_attempts_max: 8,
            payment_intents_max: 2_000_000,
            bookings_max: 20_000_000,
            event_waitlist_entries_max: 100_000,
            waitlist_scan_entries_max: 1_000,
            dedup_entries_max: DEDUP_ENTRIES_MAX_DEFAULT,
            dedup_age_secs_max: 24 * 3600,
            sweep_holds_max: 10_000,
            room_users_max: 2_000_000,
            rooms_users_max: 10_000_000,
            room_join_users_max: 4_096,
            room_steps_max: 16_384,
            dedup_bytes_max: DEDUP_BYTES_MAX_DEFAULT,
        }
    }
}

/// [`Limits`] as snapshot format 3 wrote them: without `dedup_bytes_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LimitsV3 {
    venues_max: u32,
    events_max: u32,
    venue_seats_max: u32,
    row_seats_max: u32,
    venue_sections_max: u32,
    section_rows_max: u32,
    venue_categories_max: u32,
    text_bytes_max: u32,
    id_bytes_max: u32,
    holds_live_max: u32,
    user_holds_live_max: u32,
    hold_extensions_max: u32,
    holds_finished_max: u32,
    hold_finished_age_secs_max: u64,
    hold_payment_attempts_max: u32,
    payment_intents_max: u32,
    bookings_max: u32,
    event_waitlist_entries_max: u32,
    waitlist_scan_entries_max: u32,
    dedup_entries_max: u32,
    dedup_age_secs_max: u64,
    sweep_holds_max: u32,
    room_users_max: u32,
    rooms_users_max: u64,
    room_join_users_max: u32,
    room_steps_max: u32,
}

impl From<LimitsV3> for Limits {
    /// The format-3 limits, and the default for what format 3 did not have.
    fn from(v3: LimitsV3) -> Limits {
        Limits {
            venues_max: v3.venues_max,
            events_max: v3.events_max,
            venue_seats_max: v3.venue_seats_max,
            row_seats_max: v3.row_seats_max,
            venue_sections_max: v3.venue_sections_max,
            section_rows_max: v3.section_rows_max,
            venue_categories_max: v3.venue_categories_max,
            text_bytes_max: v3.text_bytes_max,
            id_bytes_max: v3.id_bytes_max,
            holds_live_max: v3.holds_live_max,
            user_holds_live_max: v3.user_holds_live_max,
            hold_extensions_max: v3.hold_extensions_max,
            holds_finished_max: v3.holds_finished_max,
            hold_finished_age_secs_max: v3.hold_finished_age_secs_max,
            hold_payment_attempts_max: v3.hold_payment_attempts_max,
            payment_intents_max: v3.payment_intents_max,
            bookings_max: v3.bookings_max,
            event_waitlist_entries_max: v3.event_waitlist_entries_max,
            waitlist_scan_entries_max: v3.waitlist_scan_entries_max,
            dedup_entries_max: v3.dedup_entries_max,
            dedup_age_secs_max: v3.dedup_age_secs_max,
            sweep_holds_max: v3.sweep_holds_max,
            room_users_max: v3.room_users_max,
            rooms_users_max: v3.rooms_users_max,
            room_join_users_max: v3.room_join_users_max,
            room_steps_max: v3.room_steps_max,
            dedup_bytes_max: DEDUP_BYTES_MAX_DEFAULT,
        }
    }
}

/// Highest price of one seat, in minor units (10^12: ten billion in a
/// two-decimal currency). With at most [`EVENT_SEATS_PER_HOLD_MAX`] seats
/// per hold, no sum of prices the state machine makes can overflow.
pub const PRICE_MINOR_UNITS_MAX: u64 = 1_000_000_000_000;
/// Ids kept in reserve at the end of the id space: a command that finds fewer
/// left is refused before it runs, so that no command (which allocates far
/// fewer) ever runs out midway.
pub(crate) const IDS_RESERVED: u64 = 1 << 32;
/// Labels a rejection names at most in each of its lists of unknown or
/// repeated labels: enough for the client's error details, and a bound on
/// what a refused request leaves in the exactly-once table.
pub const REJECTION_LABELS_MAX: usize = 8;
/// Remembered requests by default: 60 s of the replicated benchmark's peak
/// rate (76,000 commands/s per group) fit with room to spare, so a client
/// retrying for a minute still gets its first answer (BENCHMARKS.md,
/// "Exactly-once table").
pub const DEDUP_ENTRIES_MAX_DEFAULT: u32 = 5_000_000;
/// Bytes of the exactly-once table by default, by entry weight (about heap
/// bytes with the allocator's overhead): the default count of entries that
/// remember a 4-seat hold (488 each) fits, so for the usual mix the count
/// binds; entries that are larger (refusals naming many labels) are
/// forgotten sooner instead of growing the table past this.
pub const DEDUP_BYTES_MAX_DEFAULT: u64 = 2_500_000_000;
/// Per-event settings bounds from the API contract.
pub const EVENT_SEATS_PER_HOLD_MAX: u32 = 100;
/// Longest hold lease an event may configure.
pub const EVENT_HOLD_TTL_SECS_MAX: u32 = 3600;
/// Default seats per hold.
pub const EVENT_SEATS_PER_HOLD_DEFAULT: u32 = 10;
/// Default hold lease (the seeds' 10 minutes).
pub const EVENT_HOLD_TTL_SECS_DEFAULT: u32 = 600;
/// Refund tiers one event may have.
pub const REFUND_TIERS_MAX: usize = 8;
/// A hold's total lease may grow to this many times the event's TTL by extensions.
pub const HOLD_LIFETIME_TTLS_MAX: u64 = 2;

//! The contract's request and response bodies.
//!
//! Responses ignore fields they do not know, so a newer gateway that adds
//! fields keeps working with this SDK. Times are RFC 3339 strings in UTC,
//! money is integer minor units, ids are opaque strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A new venue (`POST /v1/admin/venues`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVenue {
    /// Display name.
    pub name: String,
    /// City, used by browse filters.
    pub city: String,
    /// Region, which decides the group that stores the venue and its events.
    pub region: String,
    /// Sections, each with its rows.
    pub sections: Vec<NewSection>,
    /// Seats that are never sold (`Floor-A-1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_seats: Vec<String>,
    /// Seats marked accessible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accessible_seats: Vec<String>,
}

/// A section of a [`NewVenue`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    /// Section name, the first part of its seat ids.
    pub name: String,
    /// Price category of every seat in the section.
    pub category: String,
    /// Rows in order.
    pub rows: Vec<NewRow>,
}

/// A row of a [`NewSection`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRow {
    /// Row label, the middle part of its seat ids.
    pub label: String,
    /// Seats in the row, numbered from 1.
    pub seats: u32,
}

/// The answer to creating a venue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueCreated {
    /// The new venue's id.
    pub venue_id: String,
    /// Seats in the venue, when the gateway reports it.
    #[serde(default)]
    pub capacity: Option<u64>,
}

/// A new event (`POST /v1/admin/events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The venue it takes place in.
    pub venue_id: String,
    /// Title.
    pub title: String,
    /// One of `movie`, `concert`, `sports`, `theater`.
    pub kind: String,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// Genre.
    pub genre: String,
    /// Language.
    pub language: String,
    /// ISO 4217 currency of the prices.
    pub currency: String,
    /// Price in minor units for every seat category of the venue.
    pub prices: BTreeMap<String, u64>,
    /// When holds become possible (RFC 3339).
    pub sale_opens_at: String,
    /// When sales close (RFC 3339); the start by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_closes_at: Option<String>,
    /// Seats one hold may take (1–100, 10 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seats_per_hold: Option<u32>,
    /// Lease of a hold in seconds (1–3600, 600 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ttl_secs: Option<u32>,
    /// Refund tiers; the contract's default policy when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_policy: Option<Vec<RefundTier>>,
    /// The waiting room; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<WaitingRoomSettings>,
}

/// One tier of a refund policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundTier {
    /// The tier applies this many hours or more before the start.
    pub min_hours_before: u32,
    /// Percent of the price refunded.
    pub percent: u8,
}

/// An event's waiting room settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomSettings {
    /// Whether the room runs at all.
    pub enabled: bool,
    /// Users admitted per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit_per_minute: Option<u32>,
    /// Admitted users at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_max: Option<u32>,
    /// Keeps the room idle until hold requests exceed this rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_above_per_sec: Option<u32>,
}

/// The answer to creating an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCreated {
    /// The new event's id.
    pub event_id: String,
}

/// Filters and paging of `GET /v1/events`; empty fields are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventQuery {
    /// Words of the title, venue or genre (one typo tolerated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Kind (`movie`, `concert`, `sports`, `theater`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Genre.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    /// Language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Starting at or after (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Starting at or before (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Page size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One page of events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events of this page.
    pub events: Vec<EventSummary>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// One line of the event list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    /// Id.
    pub event_id: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: String,
    /// City.
    pub city: String,
    /// Venue name.
    pub venue_name: String,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// Lowest price in minor units.
    pub min_price: Option<u64>,
    /// Seats available.
    pub available: u64,
}

/// Seats of one category in each state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// Every seat of the category: `available + held + booked + blocked`.
    pub total: u64,
    /// Free seats.
    pub available: u64,
    /// Seats in live holds.
    pub held: u64,
    /// Seats of confirmed bookings.
    pub booked: u64,
    /// Seats never sold.
    pub blocked: u64,
}

/// An event's details (`GET /v1/events/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventDetails {
    /// Id.
    pub event_id: String,
    /// Venue id.
    pub venue_id: String,
    /// Venue name.
    pub venue_name: String,
    /// City.
    pub city: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: String,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Price per category in minor units.
    pub prices: BTreeMap<String, u64>,
    /// When holds become possible (RFC 3339).
    pub sale_opens_at: String,
    /// Seats one hold may take.
    pub max_seats_per_hold: u32,
    /// Lease of a hold in seconds.
    pub hold_ttl_secs: u32,
    /// Seats per state, per category.
    pub availability: BTreeMap<String, Availability>,
    /// Every other field the gateway sends (genre, refund policy, waiting room, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A seat's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    /// Free.
    Available,
    /// In a live hold.
    Held,
    /// Part of a confirmed booking.
    Booked,
    /// Never sold.
    Blocked,
}

impl SeatStatus {
    /// The contract's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "available",
            SeatStatus::Held => "held",
            SeatStatus::Booked => "booked",
            SeatStatus::Blocked => "blocked",
        }
    }
}

/// A linearizable seat map (`GET /v1/events/{id}/seats`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatMap {
    /// The event.
    pub event_id: String,
    /// The log index the map reflects; a seat stream resumed after it
    /// continues from this map without a gap.
    pub as_of_index: u64,
    /// Every seat.
    pub seats: Vec<Seat>,
}

/// One seat of a [`SeatMap`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seat {
    /// `{section}-{row}-{number}`.
    pub seat_id: String,
    /// Section.
    pub section: String,
    /// Row label.
    pub row: String,
    /// Number in the row.
    pub number: u32,
    /// Price category.
    pub category: String,
    /// Price in minor units.
    pub price: u64,
    /// Accessible seat.
    pub accessible: bool,
    /// State.
    pub status: SeatStatus,
}

/// What to hold: named seats or the best available ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldRequest {
    /// Exactly these seats, all or none.
    SeatIds(Vec<String>),
    /// The best `count` seats of a category.
    BestAvailable(BestAvailable),
}

impl HoldRequest {
    /// Exactly these seats.
    pub fn seats<S: Into<String>>(seats: impl IntoIterator<Item = S>) -> HoldRequest {
        HoldRequest::SeatIds(seats.into_iter().map(Into::into).collect())
    }

    /// The best `count` seats of `category`, next to each other when
    /// `together`.
    pub fn best(count: u32, category: impl Into<String>, together: bool) -> HoldRequest {
        HoldRequest::BestAvailable(BestAvailable { count, category: category.into(), together, accessible: false })
    }
}

/// A best-available selection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BestAvailable {
    /// Seats wanted.
    pub count: u32,
    /// Price category.
    pub category: String,
    /// All in one row, side by side.
    #[serde(default)]
    pub together: bool,
    /// Accessible seats only.
    #[serde(default)]
    pub accessible: bool,
}

/// A hold's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Live until `expires_at`.
    Active,
    /// The lease ran out.
    Expired,
    /// Released by its owner.
    Released,
    /// Became a booking.
    Confirmed,
}

/// A hold: a lease on seats until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Id.
    pub hold_id: String,
    /// The event.
    pub event_id: String,
    /// Seats held.
    pub seat_ids: Vec<String>,
    /// State (`active` for a fresh hold).
    #[serde(default = "active")]
    pub status: HoldStatus,
    /// End of the lease (RFC 3339).
    pub expires_at: String,
    /// Price of every seat in minor units.
    pub total_price: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// `user`, or `waitlist` for a waitlist offer.
    #[serde(default)]
    pub origin: Option<String>,
    /// The booking it became, once confirmed.
    #[serde(default)]
    pub booking_id: Option<String>,
}

fn active() -> HoldStatus {
    HoldStatus::Active
}

/// A booking's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// The charge's outcome is being reconciled.
    Pending,
    /// Paid and confirmed.
    Confirmed,
    /// Cancelled by its owner.
    Cancelled,
}

/// A booking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Id.
    pub booking_id: String,
    /// State.
    pub status: BookingStatus,
    /// The event.
    pub event_id: String,
    /// The hold it came from.
    #[serde(default)]
    pub hold_id: Option<String>,
    /// Seats booked.
    #[serde(default)]
    pub seat_ids: Vec<String>,
    /// Price paid in minor units.
    #[serde(default)]
    pub total_price: u64,
    /// ISO 4217 currency.
    #[serde(default)]
    pub currency: String,
    /// One ticket per seat.
    #[serde(default)]
    pub tickets: Vec<TicketRef>,
    /// Percent refunded, once cancelled.
    #[serde(default)]
    pub refund_percent: Option<u8>,
    /// Amount refunded in minor units, once cancelled.
    #[serde(default)]
    pub refund_amount: Option<u64>,
}

/// A booking's ticket for one seat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// Ticket id.
    pub ticket_id: String,
    /// Its seat.
    pub seat_id: String,
}

/// What paying for a hold gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BookingOutcome {
    /// 201: paid and confirmed.
    Confirmed(Booking),
    /// 202: the provider did not answer in time; the booking becomes
    /// `confirmed`, or the hold is released, once reconciled. Poll
    /// [`Client::booking`](crate::Client::booking).
    Pending {
        /// The booking to poll.
        booking_id: String,
    },
}

/// The answer to a cancellation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The booking.
    pub booking_id: String,
    /// Always `cancelled`.
    pub status: BookingStatus,
    /// Percent refunded.
    pub refund_percent: u8,
    /// Amount refunded in minor units.
    pub refund_amount: u64,
}

/// A ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Id.
    pub ticket_id: String,
    /// Its booking.
    pub booking_id: String,
    /// The event.
    pub event_id: String,
    /// The seat.
    pub seat_id: String,
    /// Current holder (user id).
    pub holder: String,
    /// Bumped by every transfer; older payloads no longer check in.
    pub version: u32,
    /// `valid`, `used` or `cancelled`.
    pub status: String,
    /// Signed payload of the QR code, verifiable offline.
    pub qr_payload: String,
}

/// A ticket as its transfer answers it: the new holder and version, and no
/// QR payload (only the new holder reads it, with [`crate::Client::ticket`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferredTicket {
    /// Id.
    pub ticket_id: String,
    /// Its booking.
    pub booking_id: String,
    /// The event.
    pub event_id: String,
    /// The seat.
    pub seat_id: String,
    /// The new holder (user id).
    pub holder: String,
    /// The new version; payloads of older versions no longer check in.
    pub version: u32,
    /// `valid`.
    pub status: String,
}

/// The answer to a successful check-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// The ticket.
    pub ticket_id: String,
    /// Its seat.
    pub seat_id: String,
    /// The event.
    pub event_id: String,
}

/// The key that verifies ticket payloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `Ed25519`.
    pub algorithm: String,
    /// The key.
    pub public_key: String,
    /// Its encoding (`base64url`).
    pub encoding: String,
}

/// A waitlist entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    /// Id.
    pub waitlist_id: String,
    /// Place in line, from 1.
    pub position: u64,
}

/// The answer to joining a waiting room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTicket {
    /// Proof of the place in line, sent with every status request.
    pub queue_token: String,
    /// Place in line; none while the room has not opened (pre-queue).
    #[serde(default)]
    pub position: Option<u64>,
    /// Users ahead.
    #[serde(default)]
    pub ahead: Option<u64>,
    /// Estimated wait in seconds.
    #[serde(default)]
    pub estimated_wait_secs: Option<u64>,
    /// The room opens at the sale: joined before it.
    #[serde(default)]
    pub pre_queue: bool,
}

/// Where a user stands in a waiting room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum QueueStatus {
    /// Still in line.
    Waiting {
        /// Place in line; none in the pre-queue.
        position: Option<u64>,
        /// Users ahead.
        ahead: Option<u64>,
        /// Estimated wait in seconds.
        estimated_wait_secs: Option<u64>,
        /// Joined before the room opened.
        pre_queue: bool,
        /// Admission is paused (no seats are available right now).
        paused: bool,
    },
    /// Let in: holds on the event need this access token.
    Admitted(Admission),
    /// The user was let in, but the access window ran out before a hold.
    AccessExpired {
        /// The place the user had.
        position: Option<u64>,
    },
}

/// Admission to an event past its waiting room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// Sent as `X-Access-Token` with holds on the event.
    pub access_token: String,
    /// When the admission lapses (RFC 3339), if the gateway says.
    #[serde(default)]
    pub access_expires_at: Option<String>,
}

/// The status body as the gateway sends it; turned into a [`QueueStatus`].
#[derive(Deserialize)]
pub(crate) struct RawQueueStatus {
    #[serde(default)]
    pub(crate) admitted: bool,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
    #[serde(default)]
    pub(crate) access_expires_at: Option<String>,
    #[serde(default)]
    pub(crate) access_expired: bool,
    #[serde(default)]
    pub(crate) position: Option<u64>,
    #[serde(default)]
    pub(crate) ahead: Option<u64>,
    #[serde(default)]
    pub(crate) estimated_wait_secs: Option<u64>,
    #[serde(default)]
    pub(crate) pre_queue: bool,
    #[serde(default)]
    pub(crate) paused: bool,
    /// A replacement queue token (the gateway hands one out once a
    /// pre-queue place is drawn).
    #[serde(default)]
    pub(crate) queue_token: Option<String>,
}

impl RawQueueStatus {
    pub(crate) fn into_status(self) -> Option<QueueStatus> {
        if self.admitted {
            let access_token = self.access_token?;
            Some(QueueStatus::Admitted(Admission { access_token, access_expires_at: self.access_expires_at }))
        } else if self.access_expired {
            Some(QueueStatus::AccessExpired { position: self.position })
        } else {
            Some(QueueStatus::Waiting {
                position: self.position,
                ahead: self.ahead,
                estimated_wait_secs: self.estimated_wait_secs,
                pre_queue: self.pre_queue,
                paused: self.paused,
            })
        }
    }
}

/// The cluster as the gateway sees it (`GET /v1/admin/cluster`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Every node the gateway knows of.
    pub nodes: Vec<NodeInfo>,
    /// Every region group.
    pub groups: Vec<GroupInfo>,
}

/// One node of a [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id, when it answered.
    #[serde(default)]
    pub node_id: Option<u64>,
    /// gRPC address.
    pub addr: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Why it did not.
    #[serde(default)]
    pub error: Option<String>,
}

/// One region group of a [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Region.
    pub region: String,
    /// Group id.
    #[serde(default)]
    pub group_id: Option<u64>,
    /// Leader's node id, if one is known.
    pub leader: Option<u64>,
    /// Term.
    pub term: Option<u64>,
    /// Voting members.
    pub members: Vec<u64>,
    /// Non-voting members.
    #[serde(default)]
    pub learners: Vec<u64>,
    /// Committed index.
    pub commit_index: Option<u64>,
    /// Applied index.
    pub applied_index: Option<u64>,
    /// Index the latest snapshot covers.
    #[serde(default)]
    pub snapshot_index: Option<u64>,
    /// Node ids removed from the group: they never rejoin it (a
    /// replacement node takes a new id).
    #[serde(default)]
    pub retired: Vec<u64>,
}

/// The answer of a cluster operation: the groups it touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterChange {
    /// What was done, per region group.
    pub groups: Vec<GroupChange>,
}

/// One group's part in a [`ClusterChange`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChange {
    /// Region.
    pub region: String,
    /// Group id.
    pub group_id: u64,
    /// Voting members after the change.
    #[serde(default)]
    pub members: Vec<u64>,
    /// Leader after the change, if known.
    #[serde(default)]
    pub leader: Option<u64>,
    /// Nodes that made a snapshot (snapshot only).
    #[serde(default)]
    pub snapshotted: Vec<u64>,
    /// Node ids removed from the group, which never rejoin it.
    #[serde(default)]
    pub retired: Vec<u64>,
}

/// Readiness (`GET /readyz`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// A leader is reachable for every region.
    pub ready: bool,
    /// `ok` or `unavailable`, per region.
    #[serde(default)]
    pub regions: BTreeMap<String, String>,
}

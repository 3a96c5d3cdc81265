//! Reads. Every read takes the time it is made at, so a hold whose lease has
//! run out reads as expired (and its seats as available) even before a
//! command has released it.

use serde::{Deserialize, Serialize};

use crate::command::{EventKind, RefundTier, VenueSpec, WaitingRoomSpec};
use crate::ids::{BookingId, EventId, HoldId, Millis, TicketId, VenueId, WaitlistId};
use crate::outcome::HoldOrigin;
use crate::records::{BookingStatus, Counts, Hold, HoldState, IntentState, TicketStatus};
use crate::state::{State, SEAT_AVAILABLE, SEAT_BLOCKED, SEAT_BOOKED, SEAT_HELD};

/// A venue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueView {
    /// Id.
    pub id: VenueId,
    /// The layout as created.
    pub spec: VenueSpec,
    /// Seats.
    pub capacity: u32,
}

/// An event with its availability at the time of the read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Id.
    pub id: EventId,
    /// Venue.
    pub venue: VenueId,
    /// Venue name.
    pub venue_name: String,
    /// City.
    pub city: String,
    /// Region.
    pub region: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: EventKind,
    /// Start.
    pub starts_at_ms: Millis,
    /// Genre.
    pub genre: String,
    /// Language.
    pub language: String,
    /// Currency.
    pub currency: String,
    /// Price per category.
    pub prices: Vec<(String, u64)>,
    /// Sale opens.
    pub sale_opens_at_ms: Millis,
    /// Sale closes.
    pub sale_closes_at_ms: Millis,
    /// Seats per hold.
    pub max_seats_per_hold: u32,
    /// Hold lease.
    pub hold_ttl_secs: u32,
    /// Refund tiers, largest `min_hours_before` first.
    pub refund_policy: Vec<RefundTier>,
    /// Waiting room settings.
    pub waiting_room: Option<WaitingRoomSpec>,
    /// Seats by status per category.
    pub availability: Vec<(String, Counts)>,
    /// Users on the waitlist.
    pub waitlist_len: u32,
    /// Holds may be taken at the time of the read (the rule holds follow).
    pub on_sale: bool,
}

impl EventView {
    /// Seats available across categories.
    pub fn available(&self) -> u32 {
        self.availability.iter().map(|(_, c)| c.available).sum()
    }

    /// Lowest price across categories.
    pub fn min_price(&self) -> u64 {
        self.prices.iter().map(|(_, p)| *p).min().unwrap_or(0)
    }
}

/// A seat's status as readers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatStatus {
    /// Free.
    Available,
    /// In a live hold.
    Held,
    /// In a confirmed booking.
    Booked,
    /// Never sold.
    Blocked,
}

impl SeatStatus {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "available",
            SeatStatus::Held => "held",
            SeatStatus::Booked => "booked",
            SeatStatus::Blocked => "blocked",
        }
    }

    fn from_byte(b: u8) -> SeatStatus {
        match b {
            SEAT_AVAILABLE => SeatStatus::Available,
            SEAT_HELD => SeatStatus::Held,
            SEAT_BOOKED => SeatStatus::Booked,
            SEAT_BLOCKED => SeatStatus::Blocked,
            other => panic!("invalid seat status {other}"),
        }
    }
}

/// One seat of a seat map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatView {
    /// Label, `{section}-{row}-{number}`.
    pub seat_id: String,
    /// Section name.
    pub section: String,
    /// Row label.
    pub row: String,
    /// Seat number in the row.
    pub number: u32,
    /// Category.
    pub category: String,
    /// Price for this event.
    pub price: u64,
    /// Accessible seat.
    pub accessible: bool,
    /// Status at the time of the read.
    pub status: SeatStatus,
}

/// Every seat of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatMap {
    /// The event.
    pub event: EventId,
    /// The log index the map reflects.
    pub as_of_index: u64,
    /// Seats in layout order.
    pub seats: Vec<SeatView>,
}

/// A hold's status as readers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    /// Live.
    Active,
    /// Lease ran out.
    Expired,
    /// Given back.
    Released,
    /// Became a booking.
    Confirmed,
}

impl HoldStatus {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Expired => "expired",
            HoldStatus::Released => "released",
            HoldStatus::Confirmed => "confirmed",
        }
    }
}

/// A hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    /// Id.
    pub id: HoldId,
    /// Event.
    pub event: EventId,
    /// Owner.
    pub user: String,
    /// Seat labels.
    pub seats: Vec<String>,
    /// Status at the time of the read.
    pub status: HoldStatus,
    /// End of the lease.
    pub expires_at_ms: Millis,
    /// Price.
    pub total_price: u64,
    /// Currency.
    pub currency: String,
    /// Where it came from.
    pub origin: HoldOrigin,
    /// Booking id reserved by a payment attempt, if any.
    pub booking: Option<BookingId>,
}

/// A booking's status as readers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookingViewStatus {
    /// A payment is in progress or its outcome is not known yet.
    Pending,
    /// Paid.
    Confirmed,
    /// Cancelled.
    Cancelled,
    /// The payment never succeeded and the hold is gone.
    Failed,
}

impl BookingViewStatus {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingViewStatus::Pending => "pending",
            BookingViewStatus::Confirmed => "confirmed",
            BookingViewStatus::Cancelled => "cancelled",
            BookingViewStatus::Failed => "failed",
        }
    }
}

/// A booking (or a pending one: a hold with a payment attempt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingView {
    /// Id.
    pub id: BookingId,
    /// Event.
    pub event: EventId,
    /// The hold it came from.
    pub hold: HoldId,
    /// Owner.
    pub user: String,
    /// Status.
    pub status: BookingViewStatus,
    /// Seat labels.
    pub seats: Vec<String>,
    /// (ticket, seat label); empty unless confirmed or cancelled.
    pub tickets: Vec<(TicketId, String)>,
    /// Price.
    pub total_price: u64,
    /// Currency.
    pub currency: String,
    /// Refund percent (cancelled bookings).
    pub refund_percent: u8,
    /// Refund amount (cancelled bookings).
    pub refund_amount: u64,
}

/// A ticket, with what its signed code must carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    /// Id.
    pub id: TicketId,
    /// Booking.
    pub booking: BookingId,
    /// Event.
    pub event: EventId,
    /// Seat label.
    pub seat: String,
    /// Current holder.
    pub holder: String,
    /// Version; a transfer bumps it.
    pub version: u32,
    /// Status.
    pub status: TicketStatus,
    /// First admission.
    pub checked_in_at_ms: Option<Millis>,
}

/// A waitlist entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistView {
    /// Id.
    pub id: WaitlistId,
    /// Event.
    pub event: EventId,
    /// User.
    pub user: String,
    /// Seats wanted.
    pub count: u32,
    /// Category wanted.
    pub category: String,
    /// 1-based position.
    pub position: u32,
}

/// A payment intent that needs the reconciler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentView {
    /// Provider idempotency key.
    pub id: String,
    /// Hold.
    pub hold: HoldId,
    /// Booking id.
    pub booking: BookingId,
    /// Payer.
    pub user: String,
    /// Amount charged (or attempted).
    pub amount: u64,
    /// State.
    pub state: IntentState,
    /// Amount owed back when `RefundDue`.
    pub refund_amount: u64,
    /// Last change.
    pub updated_at_ms: Millis,
}

impl State {
    /// Whether a live hold's lease has run out by `now` (an expiry sweep
    /// would release something).
    pub fn has_due_holds(&self, now: Millis) -> bool {
        self.ix.expiry.first().is_some_and(|&(at, _)| at <= now)
    }

    /// Holds whose lease has not been released by a command yet (some may be
    /// due: reads at a time treat those as expired).
    pub fn live_holds(&self) -> usize {
        self.ix.expiry.len()
    }

    /// Ids of all events, in id order.
    pub fn event_ids(&self) -> impl Iterator<Item = EventId> + '_ {
        self.p.events.keys().copied()
    }

    /// Ids of all venues, in id order.
    pub fn venue_ids(&self) -> impl Iterator<Item = VenueId> + '_ {
        self.p.venues.keys().copied()
    }

    /// A venue.
    pub fn venue(&self, id: VenueId) -> Option<VenueView> {
        let v = self.p.venues.get(&id)?;
        Some(VenueView { id, spec: v.spec.clone(), capacity: v.derived.capacity })
    }

    /// An event and its availability at `now`.
    pub fn event(&self, id: EventId, now: Millis) -> Option<EventView> {
        let ev = self.p.events.get(&id)?;
        let venue = &self.p.venues[&ev.settings.venue];
        let layout = &venue.derived;
        let mut counts = ev.counts.clone();
        for hold in self.due_holds(id, now) {
            for &seat in &hold.seats {
                let c = &mut counts[layout.category_of(seat) as usize];
                c.held -= 1;
                c.available += 1;
            }
        }
        let s = &ev.settings;
        Some(EventView {
            id,
            venue: venue.id,
            venue_name: venue.spec.name.clone(),
            city: venue.spec.city.clone(),
            region: venue.spec.region.clone(),
            title: s.title.clone(),
            kind: s.kind,
            starts_at_ms: s.starts_at_ms,
            genre: s.genre.clone(),
            language: s.language.clone(),
            currency: s.currency.clone(),
            prices: layout.categories.iter().cloned().zip(s.prices.iter().copied()).collect(),
            sale_opens_at_ms: s.sale_opens_at_ms,
            sale_closes_at_ms: s.sale_closes_at_ms,
            max_seats_per_hold: s.max_seats_per_hold,
            hold_ttl_secs: s.hold_ttl_secs,
            refund_policy: s.refund_policy.clone(),
            waiting_room: s.waiting_room,
            availability: layout.categories.iter().cloned().zip(counts).collect(),
            waitlist_len: ev.waitlist.len() as u32,
            on_sale: s.on_sale(now),
        })
    }

    /// Live holds of an event whose lease has run out by `now`.
    fn due_holds(&self, event: EventId, now: Millis) -> impl Iterator<Item = &Hold> + '_ {
        let ev = &self.p.events[&event];
        ev.live_holds.iter().take_while(move |(at, _)| *at <= now).map(|(_, h)| &self.p.holds[h])
    }

    /// Every seat of an event with its status at `now`.
    pub fn seat_map(&self, id: EventId, now: Millis) -> Option<SeatMap> {
        let ev = self.p.events.get(&id)?;
        let venue = &self.p.venues[&ev.settings.venue];
        let layout = &venue.derived;
        let mut status = ev.seats.clone();
        for hold in self.due_holds(id, now) {
            for &seat in &hold.seats {
                status.set(seat, SEAT_AVAILABLE);
            }
        }
        let mut seats = Vec::with_capacity(status.len() as usize);
        for (row_idx, row) in layout.rows.iter().enumerate() {
            let category = layout.category_of_row(row_idx) as usize;
            for seat in row.first_seat..row.first_seat + row.seats {
                let (section, row_label, number) = layout.parts(&venue.spec, seat);
                seats.push(SeatView {
                    seat_id: format!("{section}-{row_label}-{number}"),
                    section: section.to_string(),
                    row: row_label.to_string(),
                    number,
                    category: layout.categories[category].clone(),
                    price: ev.settings.prices[category],
                    accessible: layout.is_accessible(seat),
                    status: SeatStatus::from_byte(status.get(seat)),
                });
            }
        }
        Some(SeatMap { event: id, as_of_index: self.p.last_index, seats })
    }

    /// A hold as of `now`.
    pub fn hold(&self, id: HoldId, now: Millis) -> Option<HoldView> {
        let h = self.p.holds.get(&id)?;
        Some(self.hold_view(h, now))
    }

    fn hold_view(&self, h: &Hold, now: Millis) -> HoldView {
        let status = match h.state {
            HoldState::Active if h.expires_at_ms <= now => HoldStatus::Expired,
            HoldState::Active => HoldStatus::Active,
            HoldState::Expired => HoldStatus::Expired,
            HoldState::Released => HoldStatus::Released,
            HoldState::Confirmed => HoldStatus::Confirmed,
        };
        HoldView {
            id: h.id,
            event: h.event,
            user: h.user.to_string(),
            seats: self.labels(h.event, &h.seats),
            status,
            expires_at_ms: h.expires_at_ms,
            total_price: h.total_price,
            currency: self.p.events[&h.event].settings.currency.clone(),
            origin: h.origin,
            booking: h.booking,
        }
    }

    /// A user's live holds at `now` (waitlist offers included), in hold id order.
    pub fn user_holds(&self, user: &str, now: Millis) -> Vec<HoldView> {
        let mut holds: Vec<HoldView> = self
            .ix
            .user_holds
            .range(user_range(user))
            .map(|(_, _, id)| &self.p.holds[id])
            .filter(|h| *h.user == *user)
            .map(|h| self.hold_view(h, now))
            .filter(|h| h.status == HoldStatus::Active)
            .collect();
        holds.sort_by_key(|h| h.id);
        holds
    }

    /// A booking, or a pending one (a hold with a payment attempt), at `now`.
    pub fn booking(&self, id: BookingId, now: Millis) -> Option<BookingView> {
        if let Some(b) = self.p.bookings.get(&id) {
            let status = match b.status {
                BookingStatus::Confirmed => BookingViewStatus::Confirmed,
                BookingStatus::Cancelled => BookingViewStatus::Cancelled,
            };
            let labels = self.labels(b.event, &b.seats);
            return Some(BookingView {
                id,
                event: b.event,
                hold: b.hold,
                user: b.user.to_string(),
                status,
                seats: labels.clone(),
                tickets: b.tickets.iter().copied().zip(labels).collect(),
                total_price: b.total_price,
                currency: self.p.events[&b.event].settings.currency.clone(),
                refund_percent: b.refund_percent,
                refund_amount: b.refund_amount,
            });
        }
        let hold = &self.p.holds[self.ix.reserved_bookings.get(&id)?];
        let live = hold.state == HoldState::Active && hold.expires_at_ms > now;
        let unknown_charge =
            hold.intents.iter().any(|i| self.p.intents.get(i).is_some_and(|i| i.state == IntentState::Pending));
        let status = if live || unknown_charge { BookingViewStatus::Pending } else { BookingViewStatus::Failed };
        Some(BookingView {
            id,
            event: hold.event,
            hold: hold.id,
            user: hold.user.to_string(),
            status,
            seats: self.labels(hold.event, &hold.seats),
            tickets: Vec::new(),
            total_price: hold.total_price,
            currency: self.p.events[&hold.event].settings.currency.clone(),
            refund_percent: 0,
            refund_amount: 0,
        })
    }

    /// A user's bookings (confirmed and cancelled), in id order.
    pub fn user_bookings(&self, user: &str, now: Millis) -> Vec<BookingView> {
        let key = crate::dedup::user_key(user);
        self.ix
            .user_bookings
            .range((key, BookingId(0))..=(key, BookingId(u64::MAX)))
            .filter(|(_, id)| *self.p.bookings[id].user == *user)
            .filter_map(|(_, id)| self.booking(*id, now))
            .collect()
    }

    /// A ticket.
    pub fn ticket(&self, id: TicketId) -> Option<TicketView> {
        let t = self.p.tickets.get(&id)?;
        Some(TicketView {
            id,
            booking: t.booking,
            event: t.event,
            seat: self.labels(t.event, &[t.seat]).pop().expect("one label"),
            holder: t.holder.to_string(),
            version: t.version,
            status: t.status,
            checked_in_at_ms: t.checked_in_at_ms,
        })
    }

    /// A waitlist entry and its current position.
    pub fn waitlist_entry(&self, id: WaitlistId) -> Option<WaitlistView> {
        let w = self.p.waitlist.get(&id)?;
        let ev = &self.p.events[&w.event];
        let position = ev.waitlist.range(..=id).count() as u32;
        let category = self.p.venues[&ev.settings.venue].derived.categories[w.category as usize].clone();
        Some(WaitlistView { id, event: w.event, user: w.user.clone(), count: w.count, category, position })
    }

    /// Payment intents the reconciler must act on: charges whose outcome has
    /// been unknown since `pending_before_ms` or earlier, and refunds owed.
    /// At most `max`, in intent id order, starting after the intent id
    /// `after` (exclusive; `None` from the first): a reconciler pages through
    /// all of them with the last id of each page, so intents that stay stuck
    /// cannot hide the ones behind them.
    pub fn payments_needing_action(
        &self,
        pending_before_ms: Millis,
        after: Option<&str>,
        max: usize,
    ) -> Vec<IntentView> {
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        self.p
            .intents
            .range::<str, _>((from, std::ops::Bound::Unbounded))
            .map(|(_, intent)| intent)
            .filter(|i| match i.state {
                IntentState::Pending => i.updated_at_ms <= pending_before_ms,
                IntentState::RefundDue => true,
                _ => false,
            })
            .take(max)
            .map(|i| IntentView {
                id: i.id.to_string(),
                hold: i.hold,
                booking: i.booking,
                user: i.user.to_string(),
                amount: i.amount,
                state: i.state,
                refund_amount: i.refund_amount,
                updated_at_ms: i.updated_at_ms,
            })
            .collect()
    }
}

/// The entries of `user` in the live-hold index (and of any user whose id
/// has the same digest).
fn user_range(user: &str) -> std::ops::RangeInclusive<(crate::dedup::UserKey, EventId, HoldId)> {
    let key = crate::dedup::user_key(user);
    (key, EventId(0), HoldId(0))..=(key, EventId(u64::MAX), HoldId(u64::MAX))
}

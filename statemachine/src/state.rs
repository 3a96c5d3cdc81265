//! The replicated state and `apply`. Primary records live in [`Primary`]
//! (the snapshot); everything in [`Indexes`] and the `#[serde(skip)]` fields
//! of records is derived from it and rebuilt on restore.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{Command, Op};
use crate::ids::{BookingId, EventId, HoldId, Millis, TicketId, VenueId, WaitlistId};
use crate::layout::{Layout, Venue};
use crate::limits::Limits;
use crate::outcome::{Applied, ApplyCtx, DomainEvent, Outcome, Rejection};
use crate::planted::{planted, Bug};
use crate::records::{Booking, DedupEntry, Event, Hold, HoldState, Intent, Recorded, SharedId, Ticket, WaitEntry};

pub(crate) const SEAT_AVAILABLE: u8 = 0;
pub(crate) const SEAT_HELD: u8 = 1;
pub(crate) const SEAT_BOOKED: u8 = 2;
pub(crate) const SEAT_BLOCKED: u8 = 3;

/// The snapshot: every primary record, in key order. `L` is the layout of
/// the limits (older snapshot formats decode their own, see `snapshot`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Primary<L = Limits> {
    pub(crate) limits: L,
    pub(crate) last_index: u64,
    pub(crate) clock_ms: Millis,
    pub(crate) next_id: u64,
    pub(crate) venues: BTreeMap<VenueId, Venue>,
    pub(crate) events: BTreeMap<EventId, Event>,
    pub(crate) holds: BTreeMap<HoldId, Hold>,
    pub(crate) bookings: BTreeMap<BookingId, Booking>,
    pub(crate) tickets: BTreeMap<TicketId, Ticket>,
    pub(crate) waitlist: BTreeMap<WaitlistId, WaitEntry>,
    pub(crate) intents: BTreeMap<SharedId, Intent>,
    pub(crate) dedup: BTreeMap<crate::dedup::RequestKey, DedupEntry>,
    pub(crate) rooms: BTreeMap<EventId, crate::queue::Room>,
}

/// Lookup structures derived from [`Primary`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Indexes {
    /// Live holds by user and event (at most one per user and event), the
    /// user by [`crate::dedup::user_key`].
    pub(crate) user_holds: BTreeSet<(crate::dedup::UserKey, EventId, HoldId)>,
    /// Live holds of the shard by expiry.
    pub(crate) expiry: BTreeSet<(Millis, HoldId)>,
    /// Finished holds by the time they finished (for pruning).
    pub(crate) finished: BTreeSet<(Millis, HoldId)>,
    /// Booking ids reserved by a payment attempt that have no booking yet.
    pub(crate) reserved_bookings: BTreeMap<BookingId, HoldId>,
    /// Bookings by user, the user by [`crate::dedup::user_key`].
    pub(crate) user_bookings: BTreeSet<(crate::dedup::UserKey, BookingId)>,
    pub(crate) user_waitlist: BTreeMap<(String, EventId), WaitlistId>,
    /// Remembered requests as (log index that recorded them, time, key),
    /// oldest first, so that pruning needs no lookup in the table itself.
    /// Requests are recorded at increasing indexes and forgotten oldest
    /// first, so a queue keeps this order.
    pub(crate) dedup_order: VecDeque<(u64, Millis, crate::dedup::RequestKey)>,
    /// The exactly-once table's weight: the sum of `Recorded::weight`.
    pub(crate) dedup_bytes: u64,
    /// Users in all waiting rooms.
    pub(crate) room_users: u64,
}

/// The seat-inventory state of one region shard.
///
/// Apply commands with [`State::apply`]; read with the query methods; save
/// and load with [`State::snapshot`] and [`State::restore`]. Same commands in,
/// same state and same snapshot bytes out, on every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub(crate) p: Primary,
    pub(crate) ix: Indexes,
}

/// Domain events collected while a command runs.
pub(crate) type Fx = Vec<DomainEvent>;

impl Default for State {
    fn default() -> Self {
        State::new(Limits::default())
    }
}

impl State {
    /// An empty shard with the given limits.
    pub fn new(limits: Limits) -> State {
        State {
            p: Primary {
                limits,
                last_index: 0,
                clock_ms: 0,
                next_id: 1,
                venues: BTreeMap::new(),
                events: BTreeMap::new(),
                holds: BTreeMap::new(),
                bookings: BTreeMap::new(),
                tickets: BTreeMap::new(),
                waitlist: BTreeMap::new(),
                intents: BTreeMap::new(),
                dedup: BTreeMap::new(),
                rooms: BTreeMap::new(),
            },
            ix: Indexes::default(),
        }
    }

    /// The limits this shard enforces.
    pub fn limits(&self) -> &Limits {
        &self.p.limits
    }

    /// Index of the last applied entry.
    pub fn last_index(&self) -> u64 {
        self.p.last_index
    }

    /// The largest id handed out so far (holds, bookings, tickets and the
    /// rest share one sequence; 0 before any).
    pub fn last_id(&self) -> u64 {
        self.p.next_id - 1
    }

    /// The shard's clock: the largest entry time applied so far.
    pub fn clock_ms(&self) -> Millis {
        self.p.clock_ms
    }

    /// Applies one log entry.
    ///
    /// Panics if `ctx.index` does not increase: the log layer must never
    /// apply an entry twice or out of order, and a replica that does is
    /// broken beyond repair.
    pub fn apply(&mut self, cmd: &Command, ctx: ApplyCtx) -> Applied {
        assert!(ctx.index > self.p.last_index, "log index went from {} to {}", self.p.last_index, ctx.index);
        self.p.last_index = ctx.index;
        // The leader stamps times that never go backward; clamping keeps the
        // clock monotonic even if one entry disagrees, identically everywhere.
        self.p.clock_ms = self.p.clock_ms.max(ctx.time_ms);
        let now = self.p.clock_ms;
        self.prune(now);

        if let Err(why) = self.check_key(&cmd.client, &cmd.request) {
            return Applied { result: Err(why), events: Vec::new(), replayed: false };
        }
        if self.p.next_id > u64::MAX - crate::limits::IDS_RESERVED {
            let why = Rejection::LimitReached("the shard's id space is used up".into());
            return Applied { result: Err(why), events: Vec::new(), replayed: false };
        }
        // Built once, and only for ops the exactly-once table records: the
        // lookup and the record below use the same key and fingerprint.
        let key = cmd
            .op
            .recorded()
            .then(|| (crate::dedup::request_key(&cmd.client, &cmd.request), crate::dedup::fingerprint(&cmd.op)));
        let Some((key, fingerprint)) = key else {
            let (result, events) = self.run(&cmd.op, now);
            return Applied { result, events, replayed: false };
        };
        // The table is moved out while the command runs (commands never
        // read it, and `prune` above already brought it within its bounds at
        // this time), so that one search finds the request or the place to
        // record it.
        let mut dedup = std::mem::take(&mut self.p.dedup);
        let mut weight = 0;
        let applied = match dedup.entry(key) {
            // With the planted bug the table forgets every request at once,
            // so nothing is ever found here.
            std::collections::btree_map::Entry::Occupied(seen) => {
                let seen = seen.get();
                let result = if seen.fingerprint == fingerprint {
                    self.replayed(&seen.result)
                } else {
                    Err(Rejection::IdempotencyKeyReused)
                };
                Applied { result, events: Vec::new(), replayed: true }
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                let (result, events) = self.run(&cmd.op, now);
                let recorded = self.recorded(&cmd.op, &result);
                weight = recorded.weight();
                slot.insert(DedupEntry { index: ctx.index, at_ms: now, fingerprint, result: recorded });
                Applied { result, events, replayed: false }
            }
        };
        self.p.dedup = dedup;
        if !applied.replayed {
            self.remembered(key, ctx.index, now, weight);
        }
        applied
    }

    /// Runs a command that was not answered from the exactly-once table.
    fn run(&mut self, op: &Op, now: Millis) -> (Result<Outcome, Rejection>, Fx) {
        let mut fx = Vec::new();
        let finished_before = self.ix.finished.len();
        let result = self.dispatch(op, now, &mut fx);
        // The command may have finished holds: keep the bounds at this index
        // too. Only finishing a hold adds to them, so a command that finished
        // none leaves them as the prune before it did. Commands never touch
        // the exactly-once table, which that prune also brought within its
        // bounds at this time.
        if self.ix.finished.len() != finished_before {
            self.prune_finished_holds(now);
        }
        if result.is_err() {
            // A rejected command changes nothing it was asked to change. It
            // may still have released holds whose lease ran out (and offered
            // their seats to the waitlist) before deciding: that is time
            // passing, which readers must hear about like any other change.
            assert!(fx.iter().all(DomainEvent::is_time_driven), "a rejected command emitted {fx:?}");
        }
        (result, fx)
    }

    fn dispatch(&mut self, op: &Op, now: Millis, fx: &mut Fx) -> Result<Outcome, Rejection> {
        match op {
            Op::CreateVenue(spec) => self.create_venue(spec, fx),
            Op::CreateEvent(spec) => self.create_event(spec, now, fx),
            Op::Hold { event, user, selection } => self.hold_seats(*event, user, selection, now, fx),
            Op::ReleaseHold { hold, user } => self.release(*hold, user, now, fx),
            Op::ExtendHold { hold, user, secs } => self.extend(*hold, user, *secs, now, fx),
            Op::ExpireHolds { holds_max } => Ok(self.sweep(*holds_max, now, fx)),
            Op::BeginPayment { hold, user, intent } => self.begin_payment(*hold, user, intent, now, fx),
            Op::ConfirmHold { hold, user, intent } => self.confirm(*hold, user, intent, now, fx),
            Op::FailPayment { intent, reason, release_hold } => {
                self.fail_payment(intent, reason, *release_hold, now, fx)
            }
            Op::RecordRefund { intent } => self.record_refund(intent, now),
            Op::CancelBooking { booking, user } => self.cancel(*booking, user, now, fx),
            Op::TransferTicket { ticket, user, to_user } => self.transfer(*ticket, user, to_user, fx),
            Op::CheckIn { ticket, version } => self.check_in(*ticket, *version, now, fx),
            Op::JoinWaitlist { event, user, count, category } => {
                self.join_waitlist(*event, user, *count, category, now, fx)
            }
            Op::LeaveWaitlist { waitlist, user } => self.leave_waitlist(*waitlist, user),
            Op::JoinQueue { event, users, seed } => self.join_queue(*event, users, seed, now),
            Op::ActivateQueue { event } => self.activate_queue(*event, now),
            Op::AdvanceQueues { events_max } => Ok(self.advance_queues(*events_max, now)),
        }
    }

    /// The next id. `apply` refuses a command when fewer than
    /// `IDS_RESERVED` ids are left, far more than one command takes, so
    /// running out here is a broken invariant.
    pub(crate) fn alloc_id(&mut self) -> u64 {
        let id = self.p.next_id;
        self.p.next_id = id.checked_add(1).expect("id space exhausted despite the reserve");
        id
    }

    /// Checks a user, client, request or intent id.
    pub(crate) fn check_id(&self, what: &str, id: &str) -> Result<(), Rejection> {
        if id.is_empty() {
            return Err(Rejection::InvalidRequest(format!("{what} is empty")));
        }
        if id.len() > self.p.limits.id_bytes_max as usize {
            return Err(Rejection::InvalidRequest(format!(
                "{what} is longer than {} bytes",
                self.p.limits.id_bytes_max
            )));
        }
        if has_control(id) {
            return Err(Rejection::InvalidRequest(format!("{what} contains control characters")));
        }
        Ok(())
    }

    fn check_key(&self, client: &str, request: &str) -> Result<(), Rejection> {
        self.check_id("client id", client)?;
        self.check_id("request id", request)
    }

    /// Forgets what has aged out. Runs before every command so that the
    /// bounds hold at every index, identically on every replica.
    pub(crate) fn prune(&mut self, now: Millis) {
        let limits = self.p.limits;
        let dedup_age_ms = limits.dedup_age_secs_max.saturating_mul(1000);
        while let Some(&(_, at_ms, _)) = self.ix.dedup_order.front() {
            if !self.dedup_over_bounds() && at_ms.saturating_add(dedup_age_ms) > now {
                break;
            }
            self.forget_oldest_request();
        }
        // A queue keeps its capacity: give back what a sale's peak left once
        // most of it is forgotten (amortized, like the growth).
        let order = &mut self.ix.dedup_order;
        if order.capacity() > 1024 && order.len() < order.capacity() / 4 {
            order.shrink_to(order.len() * 2);
        }
        self.prune_finished_holds(now);
    }

    /// Forgets finished holds beyond their count or age bound.
    fn prune_finished_holds(&mut self, now: Millis) {
        let limits = self.p.limits;
        let hold_age_ms = limits.hold_finished_age_secs_max.saturating_mul(1000);
        while let Some(&(finished_at, hold_id)) = self.ix.finished.first() {
            let too_many = self.ix.finished.len() > limits.holds_finished_max as usize;
            if !too_many && finished_at.saturating_add(hold_age_ms) > now {
                break;
            }
            self.ix.finished.remove(&(finished_at, hold_id));
            self.forget_hold(hold_id);
        }
    }

    /// Removes a finished hold and whatever only it referred to.
    fn forget_hold(&mut self, hold_id: HoldId) {
        let hold = self.p.holds.remove(&hold_id).expect("finished index names a hold");
        assert_ne!(hold.state, HoldState::Active, "pruning a live hold");
        if let Some(booking) = hold.booking {
            self.ix.reserved_bookings.remove(&booking);
        }
        for intent_id in &hold.intents {
            if let Some(intent) = self.p.intents.get(intent_id) {
                if intent.is_settled() {
                    self.p.intents.remove(intent_id);
                }
            }
        }
    }

    /// Bookkeeping after a request was recorded in the table under `key`
    /// with a record of `weight`: its place in the order of forgetting, and
    /// the table's bounds (oldest first, possibly this one itself if the
    /// bounds allow nothing).
    fn remembered(&mut self, key: crate::dedup::RequestKey, index: u64, now: Millis, weight: u64) {
        if planted(Bug::NoDedup) {
            self.p.dedup.remove(&key);
            return;
        }
        assert!(self.ix.dedup_order.back().is_none_or(|&(last, _, _)| last < index));
        self.ix.dedup_order.push_back((index, now, key));
        self.ix.dedup_bytes += weight;
        while self.dedup_over_bounds() {
            self.forget_oldest_request();
        }
    }

    /// The exactly-once table holds more entries or bytes than its limits.
    fn dedup_over_bounds(&self) -> bool {
        let limits = &self.p.limits;
        self.p.dedup.len() > limits.dedup_entries_max as usize || self.ix.dedup_bytes > limits.dedup_bytes_max
    }

    /// Forgets the oldest remembered request.
    fn forget_oldest_request(&mut self) {
        let (_, _, key) = self.ix.dedup_order.pop_front().expect("the order lists every remembered request");
        let entry = self.p.dedup.remove(&key).expect("the order names remembered requests");
        self.ix.dedup_bytes -= entry.result.weight();
    }

    /// The form in which the exactly-once table keeps `result`, the result of `op`.
    fn recorded(&self, op: &Op, result: &Result<Outcome, Rejection>) -> Recorded {
        let recorded = match (result, op) {
            (Ok(Outcome::Booked(receipt)), _) => Recorded::Booked(receipt.booking),
            (Ok(Outcome::PaymentStarted { booking, amount, .. }), Op::BeginPayment { hold, .. }) => {
                Recorded::PaymentStarted { booking: *booking, amount: *amount, event: self.p.holds[hold].event }
            }
            _ => Recorded::Result(Box::new(result.clone())),
        };
        // The unit, model and property tests check every recorded result
        // against its rebuild.
        #[cfg(test)]
        assert_eq!(&self.replayed(&recorded), result, "a recorded result does not rebuild to itself");
        recorded
    }

    /// The result a remembered request got, rebuilt from its record.
    pub(crate) fn replayed(&self, recorded: &Recorded) -> Result<Outcome, Rejection> {
        match recorded {
            Recorded::Booked(booking) => Ok(Outcome::Booked(self.receipt(*booking))),
            &Recorded::PaymentStarted { booking, amount, event } => Ok(Outcome::PaymentStarted {
                booking,
                amount,
                currency: self.p.events[&event].settings.currency.clone(),
            }),
            Recorded::Result(result) => Result::clone(result),
        }
    }

    /// Moves one seat to a new status, keeping the category counters exact.
    pub(crate) fn set_seat(event: &mut Event, layout: &Layout, seat: u32, to: u8) {
        State::set_seat_of(event, layout.category_of(seat), seat, to);
    }

    /// [`State::set_seat`] for a caller that already knows the seat's category.
    pub(crate) fn set_seat_of(event: &mut Event, category: u16, seat: u32, to: u8) {
        let from = event.seats.get(seat);
        assert_ne!(from, to, "seat {seat} is already in status {to}");
        if planted(Bug::CounterDrift) && from == SEAT_HELD && to == SEAT_AVAILABLE {
            event.seats.set(seat, to);
            return;
        }
        let counts = &mut event.counts[category as usize];
        let slot = counts.slot(from);
        *slot = slot.checked_sub(1).expect("category counter underflow");
        *counts.slot(to) += 1;
        event.seats.set(seat, to);
    }

    /// Labels of seats of an event.
    pub(crate) fn labels(&self, event: EventId, seats: &[u32]) -> Vec<String> {
        let venue = self.venue_of(event);
        venue.derived.labels(&venue.spec, seats)
    }

    pub(crate) fn venue_of(&self, event: EventId) -> &Venue {
        let venue = self.p.events[&event].settings.venue;
        &self.p.venues[&venue]
    }

    /// Prepares an event for a command at `now`: releases its holds whose
    /// lease ran out and offers the freed seats to its waitlist. Because every
    /// command on an event does this first, an expired hold never blocks
    /// anyone, whether or not a sweep has run.
    pub(crate) fn touch(&mut self, event: EventId, now: Millis, fx: &mut Fx) {
        let mut freed = false;
        while !planted(Bug::NoExpiryOnTouch) {
            let ev = &self.p.events[&event];
            let Some(&(expires_at, hold)) = ev.live_holds.first() else { break };
            if expires_at > now {
                break;
            }
            self.finish_hold(hold, HoldState::Expired, now, fx);
            freed = true;
        }
        if freed {
            self.offer_waitlist(event, now, fx);
        }
    }
}

/// Whether `s` has a control character (`char::is_control`: U+0000 to
/// U+001F and U+007F to U+009F), read byte by byte. In UTF-8 the first range
/// and U+007F are single bytes, and U+0080 to U+009F are 0xC2 followed by
/// 0x80 to 0x9F; 0xC2 is never a continuation byte, so no other character
/// matches.
fn has_control(s: &str) -> bool {
    let bytes = s.as_bytes();
    // Printable ASCII, the usual case, eight bytes at a time.
    if printable_ascii(bytes) {
        return false;
    }
    bytes.iter().enumerate().any(|(i, &b)| {
        b < 0x20 || b == 0x7f || (b == 0xc2 && bytes.get(i + 1).is_some_and(|&next| (0x80..=0x9f).contains(&next)))
    })
}

/// Whether every byte is printable ASCII (0x20 to 0x7E). Eight bytes are
/// checked at once: for a word `x` of bytes below 0x80, `x - 0x20…20` borrows
/// into a byte's high bit exactly when that byte is below 0x20, and
/// `x + 0x01…01` carries into it exactly when the byte is 0x7F; bytes of
/// 0x80 and above have the high bit already. No borrow or carry crosses
/// into the next byte unless a byte is already out of range.
fn printable_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let word_ok = |x: u64| (x | x.wrapping_sub(0x20 * ONES) | x.wrapping_add(ONES)) & HIGH == 0;
    let words_ok = words.by_ref().all(|w| word_ok(u64::from_le_bytes(w.try_into().expect("eight bytes"))));
    // The last bytes (all of a short id) as one more word, padded with spaces.
    let rest = words.remainder();
    let mut last = [b' '; 8];
    last[..rest.len()].copy_from_slice(rest);
    words_ok && word_ok(u64::from_le_bytes(last))
}

#[cfg(test)]
mod control_tests {
    #[test]
    fn control_characters_are_found_as_char_is_control_finds_them() {
        let mut samples: Vec<String> = (0u32..0x800).filter_map(char::from_u32).map(|c| format!("a{c}b")).collect();
        samples
            .extend(["", "plain", "\u{a0}", "\u{c2}", "é\u{85}", "\u{2028}", "\u{10ffff}", "日本"].map(String::from));
        for s in samples {
            assert_eq!(super::has_control(&s), s.chars().any(char::is_control), "{s:?}");
        }
    }

    #[test]
    fn printable_ascii_is_checked_word_by_word_as_byte_by_byte() {
        let bytewise = |bytes: &[u8]| bytes.iter().all(|&b| (0x20..=0x7e).contains(&b));
        // Every byte value at every place of words and their remainders,
        // among neighbours at both edges of the printable range.
        for len in 1..=17 {
            for at in 0..len {
                for fill in [b' ', b'~', b'a'] {
                    for b in 0..=255u8 {
                        let mut bytes = vec![fill; len];
                        bytes[at] = b;
                        assert_eq!(super::printable_ascii(&bytes), bytewise(&bytes), "{bytes:?}");
                    }
                }
            }
        }
        assert!(super::printable_ascii(b""));
    }
}

//! Waiting rooms: a FIFO queue per event in front of the hold route.
//!
//! A room's order lives in the event's shard, so it survives any gateway:
//! a gateway batches the joins it receives into one `JoinQueue` entry, and
//! positions are handed out in log order. Any join acknowledged before
//! another join began (at any gateway) has the smaller position.
//!
//! Users who join before the sale opens are in the *pre-queue*. The first
//! join entry of a room carries a random seed from the gateway; it is in the
//! log before the opening, and is shown to nobody until then. At the
//! opening the pre-queue is ordered by `SHA-256(seed ‖ user digest)`, so
//! anyone with the seed and the list of digests can recompute the order.
//! Joins after the opening get the next position in arrival order.
//!
//! Admission is decided here too, by entry time, in `AdvanceQueues` entries
//! the leader proposes: a token bucket gives `admit_per_minute`, no
//! admission happens while `active_max` admitted users are still shopping,
//! and one advance admits no more users than there are free seats. An admitted user may start holds for one
//! hold TTL after admission, until they book. While a room is active, a
//! hold by a user who is not admitted is refused (`QueueRequired`), so the
//! cap holds at the log, not only at the gateways.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{EventId, Millis};
use crate::outcome::{Outcome, Rejection};
use crate::records::{Counts, EventSettings};
use crate::state::State;

/// What a room keys a user by: a 128-bit digest of the user id (xxh3-128).
/// Fixed-size keys keep a million-user room small, and the audit list of a
/// pre-queue names digests, not user ids.
pub type UserDigest = u128;

/// The digest of a user id.
pub fn user_digest(user: &str) -> UserDigest {
    xxhash_rust::xxh3::xxh3_128(user.as_bytes())
}

/// A user's place in the pre-queue draw under `seed`: the first 16 bytes of
/// `SHA-256(seed ‖ digest as 16 little-endian bytes)`, read big-endian.
/// Smaller keys go first; ties (never seen) fall back to the digest.
pub fn prequeue_key(seed: &[u8; 32], digest: UserDigest) -> u128 {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(digest.to_le_bytes());
    let out = h.finalize();
    u128::from_be_bytes(out[..16].try_into().expect("32-byte digest"))
}

/// Admissions closer together than this are folded into the next advance:
/// it bounds the admission steps a room keeps (one per step).
pub const ADMISSION_STEP_MS_MIN: Millis = 250;

/// A user's place in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Place {
    /// 1-based position; 0 while in the pre-queue (before the draw).
    pub(crate) position: u64,
    /// Booked after admission: no longer shopping.
    pub(crate) finished: bool,
}

/// One admission: positions up to `through` were admitted at `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Step {
    pub(crate) through: u64,
    pub(crate) at_ms: Millis,
    /// Users of this step who booked.
    pub(crate) finished: u64,
}

/// One event's waiting room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Room {
    /// The pre-queue seed, set by the first join before the opening.
    pub(crate) seed: Option<[u8; 32]>,
    /// The pre-queue has been drawn (the sale opened).
    pub(crate) opened: bool,
    /// When a threshold room became active.
    pub(crate) activated_at_ms: Option<Millis>,
    /// The next position to give (positions are dense from 1).
    pub(crate) next_position: u64,
    /// Users waiting for the draw.
    pub(crate) pre_queue: u64,
    /// Users the draw ordered (positions 1..=drawn).
    pub(crate) drawn: u64,
    /// Positions up to this one are admitted.
    pub(crate) admitted_through: u64,
    /// Admission tokens, in thousandths of a user.
    pub(crate) tokens_milli: u64,
    pub(crate) refilled_at_ms: Millis,
    /// Admissions in order; only live ones are kept apart (older ones are
    /// merged), so the list is bounded by `Limits::room_steps_max`.
    pub(crate) steps: Vec<Step>,
    pub(crate) users: BTreeMap<UserDigest, Place>,
    /// The sale is over: the room forgot its users.
    pub(crate) closed: bool,
}

impl Room {
    fn new() -> Room {
        Room {
            seed: None,
            opened: false,
            activated_at_ms: None,
            next_position: 1,
            pre_queue: 0,
            drawn: 0,
            admitted_through: 0,
            tokens_milli: 0,
            refilled_at_ms: 0,
            steps: Vec::new(),
            users: BTreeMap::new(),
            closed: false,
        }
    }

    /// Draws the pre-queue order from the seed and opens the room.
    fn open(&mut self, opens_at_ms: Millis) {
        debug_assert!(!self.opened);
        let mut drawn: Vec<(u128, UserDigest)> = match &self.seed {
            Some(seed) => {
                self.users.iter().filter(|(_, p)| p.position == 0).map(|(d, _)| (prequeue_key(seed, *d), *d)).collect()
            }
            None => Vec::new(),
        };
        assert_eq!(drawn.len() as u64, self.pre_queue, "pre-queue count drifted");
        drawn.sort_unstable();
        for (rank, (_, digest)) in drawn.iter().enumerate() {
            let place = self.users.get_mut(digest).expect("drawn from the map");
            place.position = rank as u64 + 1;
        }
        self.drawn = drawn.len() as u64;
        self.next_position = self.drawn + 1;
        self.pre_queue = 0;
        self.opened = true;
        self.refilled_at_ms = opens_at_ms;
    }

    /// The step that admitted `position` (which must be admitted).
    fn step_of(&self, position: u64) -> Option<usize> {
        let i = self.steps.partition_point(|s| s.through < position);
        (i < self.steps.len()).then_some(i)
    }

    fn first_through(&self, i: usize) -> u64 {
        if i == 0 {
            1
        } else {
            self.steps[i - 1].through + 1
        }
    }

    /// Admitted users still shopping at `now`.
    fn active(&self, now: Millis, access_ms: Millis) -> u64 {
        let mut active = 0;
        for i in (0..self.steps.len()).rev() {
            let s = self.steps[i];
            if s.at_ms.saturating_add(access_ms) <= now {
                break;
            }
            active += s.through + 1 - self.first_through(i) - s.finished;
        }
        active
    }

    /// Whether `digest` may start a hold at `now`.
    fn admits(&self, digest: UserDigest, now: Millis, access_ms: Millis) -> bool {
        let Some(place) = self.users.get(&digest) else { return false };
        if place.position == 0 || place.position > self.admitted_through || place.finished {
            return false;
        }
        match self.step_of(place.position) {
            Some(i) => self.steps[i].at_ms.saturating_add(access_ms) > now,
            None => false,
        }
    }

    /// Merges the steps whose access window has closed into one.
    fn compact(&mut self, now: Millis, access_ms: Millis) {
        let dead = self.steps.partition_point(|s| s.at_ms.saturating_add(access_ms) <= now);
        if dead >= 2 {
            let last = self.steps[dead - 1];
            let finished = self.steps[..dead].iter().map(|s| s.finished).sum();
            self.steps.splice(..dead, [Step { through: last.through, at_ms: last.at_ms, finished }]);
        }
    }

    /// Checks the room's own invariants: positions are dense and distinct,
    /// the pre-queue count is exact, admissions are ordered and cover
    /// exactly the admitted positions, and a closed room keeps no users.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.closed && (!self.users.is_empty() || !self.steps.is_empty()) {
            return Err("a closed room keeps users".into());
        }
        let mut positions: Vec<u64> = self.users.values().map(|p| p.position).filter(|p| *p > 0).collect();
        let waiting = (self.users.len() - positions.len()) as u64;
        if waiting != self.pre_queue {
            return Err(format!("{waiting} users wait for the draw, the count says {}", self.pre_queue));
        }
        if self.opened && self.pre_queue != 0 {
            return Err("an opened room still has a pre-queue".into());
        }
        if !self.opened && (self.next_position != 1 || self.admitted_through != 0 || !self.steps.is_empty()) {
            return Err("positions or admissions before the draw".into());
        }
        positions.sort_unstable();
        if !self.closed && positions.iter().enumerate().any(|(i, p)| *p != i as u64 + 1) {
            return Err("positions are not 1..n without gaps".into());
        }
        if !self.closed && positions.len() as u64 + 1 != self.next_position {
            return Err("next position does not follow the last one".into());
        }
        if self.drawn >= self.next_position && !self.closed {
            return Err("more users drawn than placed".into());
        }
        if self.admitted_through >= self.next_position && !self.closed {
            return Err("admitted beyond the last position".into());
        }
        let mut prev = (0, 0);
        for s in &self.steps {
            if s.through <= prev.0 || s.at_ms < prev.1 {
                return Err("admission steps out of order".into());
            }
            if s.finished > s.through - prev.0 {
                return Err("more finished users than a step admitted".into());
            }
            prev = (s.through, s.at_ms);
        }
        if !self.closed && prev.0 != self.admitted_through {
            return Err("admission steps do not end at the admitted position".into());
        }
        let finished = self.users.values().filter(|p| p.finished).count() as u64;
        if !self.closed && finished != self.steps.iter().map(|s| s.finished).sum::<u64>() {
            return Err("finished users disagree with the admission steps".into());
        }
        Ok(())
    }

    /// Forgets the users of a room whose sale is over.
    fn close(&mut self) -> u64 {
        let forgotten = self.users.len() as u64;
        self.users.clear();
        self.steps.clear();
        self.closed = true;
        forgotten
    }
}

/// Where a join put a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueuePlace {
    /// 1-based position in the room.
    Position(u64),
    /// In the pre-queue: the position is drawn when the sale opens.
    PreQueue,
    /// The room is full.
    Full,
    /// The user id is malformed.
    InvalidUser,
}

/// A room's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueuePhase {
    /// Before the sale opens: joins go to the pre-queue.
    PreQueue,
    /// Positions are handed out and users admitted.
    Open,
    /// The sale is over.
    Closed,
}

/// A room at a read time, with one user's place if asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    /// The event.
    pub event: EventId,
    /// Phase at the read time.
    pub phase: QueuePhase,
    /// Holds need admission now.
    pub gate_active: bool,
    /// Every seat is booked or blocked.
    pub sold_out: bool,
    /// No seat is available right now (admission pauses).
    pub none_available: bool,
    /// The pre-queue seed, once the sale opened (before, it is secret).
    pub seed: Option<[u8; 32]>,
    /// Users in the pre-queue (before the draw).
    pub pre_queue: u64,
    /// Positions handed out.
    pub positions: u64,
    /// Positions up to this one are admitted.
    pub admitted_through: u64,
    /// Positions up to this one were admitted so long ago that their access
    /// ended.
    pub expired_through: u64,
    /// Admissions whose access is still open: (through position, at).
    pub live_steps: Vec<(u64, Millis)>,
    /// Admitted users still shopping.
    pub active: u64,
    /// How long an admission lets a user start holds.
    pub access_ms: Millis,
    /// The room's admission rate.
    pub admit_per_minute: u32,
    /// The room's cap on shoppers.
    pub active_max: u32,
    /// When the sale opens.
    pub opens_at_ms: Millis,
    /// A load-activated room: the hold rate above which it activates.
    pub activate_above_per_sec: Option<u32>,
    /// When a load-activated room became active.
    pub activated_at_ms: Option<Millis>,
    /// The user asked about.
    pub user: Option<QueueUserView>,
}

/// One user's place in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueUserView {
    /// The user's digest.
    pub digest: UserDigest,
    /// Joined at all.
    pub joined: bool,
    /// Position, once drawn or given.
    pub position: Option<u64>,
    /// When the user was admitted.
    pub admitted_at_ms: Option<Millis>,
    /// May start holds now.
    pub may_hold: bool,
    /// Booked after admission.
    pub finished: bool,
}

/// One page of a pre-queue draw, for audits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAudit {
    /// The seed (only once the draw happened).
    pub seed: Option<[u8; 32]>,
    /// Users the draw ordered.
    pub drawn: u64,
    /// `(position, digest)` of drawn users with positions after the page
    /// start, in position order.
    pub entries: Vec<(u64, UserDigest)>,
}

/// Settings of an event's room that the rules need.
struct RoomRules {
    admit_per_minute: u64,
    active_max: u64,
    access_ms: Millis,
    threshold: bool,
}

fn rules(settings: &EventSettings) -> Option<RoomRules> {
    let spec = settings.waiting_room.filter(|w| w.enabled)?;
    Some(RoomRules {
        admit_per_minute: u64::from(spec.admit_per_minute),
        active_max: u64::from(spec.active_max),
        access_ms: u64::from(settings.hold_ttl_secs) * 1000,
        threshold: spec.activate_above_per_sec.is_some(),
    })
}

fn none_available(counts: &[Counts]) -> bool {
    counts.iter().all(|c| c.available == 0)
}

fn sold_out(counts: &[Counts]) -> bool {
    counts.iter().all(|c| c.available == 0 && c.held == 0)
}

impl State {
    /// Whether holds on `event` need admission at `now`.
    pub(crate) fn room_gate(&self, event: EventId, now: Millis) -> bool {
        let ev = &self.p.events[&event];
        let Some(r) = rules(&ev.settings) else { return false };
        if !ev.settings.on_sale(now) {
            return false;
        }
        !r.threshold || self.p.rooms.get(&event).is_some_and(|room| room.activated_at_ms.is_some())
    }

    /// Refuses a hold by a user the event's active room has not admitted.
    pub(crate) fn check_admitted(&self, event: EventId, user: &str, now: Millis) -> Result<(), Rejection> {
        if !self.room_gate(event, now) || crate::planted::planted(crate::planted::Bug::RoomSkipsGate) {
            return Ok(());
        }
        let access_ms = rules(&self.p.events[&event].settings).expect("gate implies a room").access_ms;
        match self.p.rooms.get(&event) {
            Some(room) if room.admits(user_digest(user), now, access_ms) => Ok(()),
            _ => Err(Rejection::QueueRequired),
        }
    }

    /// A booking by an admitted user ends their turn.
    pub(crate) fn room_user_booked(&mut self, event: EventId, user: &str) {
        let Some(room) = self.p.rooms.get_mut(&event) else { return };
        let digest = user_digest(user);
        let Some(place) = room.users.get(&digest).copied() else { return };
        if place.finished || place.position == 0 || place.position > room.admitted_through {
            return;
        }
        if let Some(i) = room.step_of(place.position) {
            room.steps[i].finished += 1;
            room.users.get_mut(&digest).expect("looked up").finished = true;
        }
    }

    pub(crate) fn join_queue(
        &mut self,
        event: EventId,
        users: &[String],
        seed: &[u8; 32],
        now: Millis,
    ) -> Result<Outcome, Rejection> {
        let limits = self.p.limits;
        if users.is_empty() || users.len() > limits.room_join_users_max as usize {
            return Err(Rejection::InvalidRequest(format!("a join names 1 to {} users", limits.room_join_users_max)));
        }
        let ev = self.p.events.get(&event).ok_or(Rejection::EventNotFound)?;
        if rules(&ev.settings).is_none() {
            return Err(Rejection::NoWaitingRoom);
        }
        if ev.settings.sale_over(now) {
            return Err(Rejection::NotOnSale);
        }
        // Nobody joins a room that can sell nothing more; waiting users
        // learn it from the room's view.
        if sold_out(&ev.counts) {
            return Err(Rejection::SoldOut);
        }
        let opens_at = ev.settings.sale_opens_at_ms;
        let valid: Vec<bool> = users.iter().map(|u| self.check_id("user", u).is_ok()).collect();
        if !self.p.rooms.contains_key(&event) && self.p.rooms.len() >= limits.events_max as usize {
            return Err(Rejection::LimitReached("waiting rooms".into()));
        }
        let mut total = self.ix.room_users;
        let room = self.p.rooms.entry(event).or_insert_with(Room::new);
        if now >= opens_at && !room.opened {
            room.open(opens_at);
        }
        if !room.opened && room.seed.is_none() {
            room.seed = Some(*seed);
        }
        let mut places = Vec::with_capacity(users.len());
        for (user, ok) in users.iter().zip(valid) {
            if !ok {
                places.push(QueuePlace::InvalidUser);
                continue;
            }
            let digest = user_digest(user);
            let place = match room.users.get(&digest) {
                Some(p) if p.position == 0 => QueuePlace::PreQueue,
                Some(p) => QueuePlace::Position(p.position),
                None if room.users.len() >= limits.room_users_max as usize || total >= limits.rooms_users_max => {
                    QueuePlace::Full
                }
                None if !room.opened => {
                    room.users.insert(digest, Place { position: 0, finished: false });
                    room.pre_queue += 1;
                    total += 1;
                    QueuePlace::PreQueue
                }
                None => {
                    let position = room.next_position;
                    room.next_position += 1;
                    room.users.insert(digest, Place { position, finished: false });
                    total += 1;
                    QueuePlace::Position(position)
                }
            };
            places.push(place);
        }
        self.ix.room_users = total;
        Ok(Outcome::QueueJoined { places })
    }

    pub(crate) fn activate_queue(&mut self, event: EventId, now: Millis) -> Result<Outcome, Rejection> {
        let ev = self.p.events.get(&event).ok_or(Rejection::EventNotFound)?;
        let r = rules(&ev.settings).ok_or(Rejection::NoWaitingRoom)?;
        if !r.threshold {
            return Err(Rejection::InvalidRequest("the room is not load-activated".into()));
        }
        if ev.settings.sale_over(now) {
            return Err(Rejection::NotOnSale);
        }
        if !self.p.rooms.contains_key(&event) && self.p.rooms.len() >= self.p.limits.events_max as usize {
            return Err(Rejection::LimitReached("waiting rooms".into()));
        }
        let room = self.p.rooms.entry(event).or_insert_with(Room::new);
        let at_ms = *room.activated_at_ms.get_or_insert(now);
        Ok(Outcome::QueueActivated { at_ms })
    }

    /// Draws, admits and closes rooms by the entry's time.
    pub(crate) fn advance_queues(&mut self, events_max: u32, now: Millis) -> Outcome {
        let limits = self.p.limits;
        let mut admitted = 0;
        let mut closed = 0;
        let ids: Vec<EventId> = self.p.rooms.iter().filter(|(_, r)| !r.closed).map(|(id, _)| *id).collect();
        for id in ids.into_iter().take(events_max.max(1) as usize) {
            let ev = &self.p.events[&id];
            let Some(r) = rules(&ev.settings) else { continue };
            let settings = &ev.settings;
            let room = self.p.rooms.get_mut(&id).expect("listed");
            if settings.sale_over(now) {
                closed += room.close();
                continue;
            }
            if now < settings.sale_opens_at_ms {
                continue;
            }
            if !room.opened {
                room.open(settings.sale_opens_at_ms);
            }
            // Two seconds of admissions at most accumulate: an idle or full
            // room does not save up a stampede.
            let cap_milli = (r.admit_per_minute * 2000 / 60).max(1000);
            let elapsed = now.saturating_sub(room.refilled_at_ms).min(120_000);
            room.tokens_milli = (room.tokens_milli + elapsed * r.admit_per_minute / 60).min(cap_milli);
            room.refilled_at_ms = room.refilled_at_ms.max(now);
            if none_available(&ev.counts) {
                continue;
            }
            if room.steps.last().is_some_and(|s| now < s.at_ms.saturating_add(ADMISSION_STEP_MS_MIN)) {
                continue;
            }
            if room.steps.len() >= limits.room_steps_max as usize {
                room.compact(now, r.access_ms);
                if room.steps.len() >= limits.room_steps_max as usize {
                    continue;
                }
            }
            let waiting = room.next_position - 1 - room.admitted_through;
            let mut room_left = r.active_max.saturating_sub(room.active(now, r.access_ms));
            if crate::planted::planted(crate::planted::Bug::RoomIgnoresCap) {
                room_left = u64::MAX;
            }
            // More newcomers than free seats would only race for them.
            let free: u64 = ev.counts.iter().map(|c| u64::from(c.available)).sum();
            let n = (room.tokens_milli / 1000).min(room_left).min(waiting).min(free);
            if n == 0 {
                continue;
            }
            room.admitted_through += n;
            room.tokens_milli -= n * 1000;
            room.steps.push(Step { through: room.admitted_through, at_ms: now, finished: 0 });
            admitted += n;
        }
        self.ix.room_users -= closed;
        Outcome::QueuesAdvanced { admitted }
    }

    /// Whether an `AdvanceQueues` at `now` would change anything.
    pub fn queues_due(&self, now: Millis) -> bool {
        self.p.rooms.iter().filter(|(_, r)| !r.closed).any(|(id, room)| {
            let ev = &self.p.events[id];
            let Some(r) = rules(&ev.settings) else { return false };
            if ev.settings.sale_over(now) || (now >= ev.settings.sale_opens_at_ms && !room.opened) {
                return true;
            }
            room.opened
                && room.admitted_through + 1 < room.next_position
                && !none_available(&ev.counts)
                && room.steps.last().is_none_or(|s| now >= s.at_ms.saturating_add(ADMISSION_STEP_MS_MIN))
                && r.active_max > room.active(now, r.access_ms)
        })
    }

    /// An event's room at `now`, with `user`'s place if given. `None` when
    /// the event has no enabled room.
    pub fn queue(&self, event: EventId, user: Option<&str>, now: Millis) -> Option<QueueView> {
        let ev = self.p.events.get(&event)?;
        let spec = ev.settings.waiting_room.filter(|w| w.enabled)?;
        let r = rules(&ev.settings)?;
        let empty = Room::new();
        let room = self.p.rooms.get(&event).unwrap_or(&empty);
        let phase = if ev.settings.sale_over(now) || room.closed {
            QueuePhase::Closed
        } else if now < ev.settings.sale_opens_at_ms {
            QueuePhase::PreQueue
        } else {
            QueuePhase::Open
        };
        let dead = room.steps.partition_point(|s| s.at_ms.saturating_add(r.access_ms) <= now);
        let expired_through = if dead == 0 { 0 } else { room.steps[dead - 1].through };
        let user = user.map(|u| {
            let digest = user_digest(u);
            let place = room.users.get(&digest);
            let position = place.map(|p| p.position).filter(|p| *p > 0);
            let admitted_at_ms = position
                .filter(|p| *p <= room.admitted_through)
                .and_then(|p| room.step_of(p))
                .map(|i| room.steps[i].at_ms);
            QueueUserView {
                digest,
                joined: place.is_some(),
                position,
                admitted_at_ms,
                may_hold: room.admits(digest, now, r.access_ms),
                finished: place.is_some_and(|p| p.finished),
            }
        });
        Some(QueueView {
            event,
            phase,
            gate_active: self.room_gate(event, now),
            sold_out: sold_out(&ev.counts),
            none_available: none_available(&ev.counts),
            seed: if room.opened { room.seed } else { None },
            pre_queue: room.pre_queue,
            positions: room.next_position - 1,
            admitted_through: room.admitted_through,
            expired_through,
            live_steps: room.steps[dead..].iter().map(|s| (s.through, s.at_ms)).collect(),
            active: room.active(now, r.access_ms),
            access_ms: r.access_ms,
            admit_per_minute: spec.admit_per_minute,
            active_max: spec.active_max,
            opens_at_ms: ev.settings.sale_opens_at_ms,
            activate_above_per_sec: spec.activate_above_per_sec,
            activated_at_ms: room.activated_at_ms,
            user,
        })
    }

    /// A page of the pre-queue draw of `event`: users drawn into positions
    /// after `after`, at most `limit`.
    pub fn queue_audit(&self, event: EventId, after: u64, limit: usize) -> Option<QueueAudit> {
        let room = self.p.rooms.get(&event)?;
        if !room.opened {
            return Some(QueueAudit { seed: None, drawn: 0, entries: Vec::new() });
        }
        // Drawn users hold positions 1..=drawn; later joins follow them.
        let drawn = room.drawn;
        let mut entries: Vec<(u64, UserDigest)> = room
            .users
            .iter()
            .filter(|(_, p)| p.position > after && p.position <= drawn)
            .map(|(d, p)| (p.position, *d))
            .collect();
        entries.sort_unstable();
        entries.truncate(limit);
        Some(QueueAudit { seed: room.seed, drawn, entries })
    }
}

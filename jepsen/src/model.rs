//! The sequential model of one event's seats, for the linearizability search.
//!
//! The state is one status byte per hold the history mentions (its *slot*):
//! not yet made, active, released, expired, confirmed (its booking stands),
//! or cancelled (its booking was cancelled). Seat statuses follow: a seat is
//! held when an active hold covers it, booked when a confirmed one does.
//!
//! Expiry is decided by log time, which the checker does not see, so it is
//! a nondeterministic step bounded in real time: a hold may expire only
//! once the operation that observes it could have been linearized after
//! `lower` (the hold's invocation plus its TTL, minus the largest forward
//! clock skew injected), and must have expired for an operation invoked
//! after `upper` (the expiry the reply stated, plus rounding and the
//! largest backward skew). Expiry is applied lazily, when an observation
//! needs it: postponing an allowed expiry never forbids a later step.

// Slots are indexes into two parallel vectors (states and their holds).
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

use crate::history::{Call, OpType, SeatStatus, F};

/// Not made yet (or an unknown outcome not taken effect).
pub(crate) const NOT_YET: u8 = 0;
/// A live hold.
pub(crate) const ACTIVE: u8 = 1;
/// Released by its owner.
pub(crate) const RELEASED: u8 = 2;
/// Ran out.
pub(crate) const EXPIRED: u8 = 3;
/// Became a booking that stands.
pub(crate) const CONFIRMED: u8 = 4;
/// Its booking was cancelled.
pub(crate) const CANCELLED: u8 = 5;
/// A hold of unknown outcome, linearized: it may take effect at any later
/// moment (or never). Taking effect is lazy too, when a read needs it, so
/// where the search places such a call does not matter and it never
/// backtracks over it.
pub(crate) const PENDING: u8 = 6;

/// Seats per event the model handles (one bit each).
pub(crate) const SEATS_MAX: usize = 64;

/// What the model knows of a hold.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) mask: u64,
    pub(crate) user: String,
    /// Real time (ms since start) before which it cannot have expired.
    pub(crate) lower_ms: u64,
    /// Real time after which it must have expired (`u64::MAX`: unknown).
    pub(crate) upper_ms: u64,
    /// Whether a release, confirmation or cancellation names it. A hold
    /// nobody names (an unknown outcome) that is no longer active can never
    /// change again, so it goes back to `NOT_YET` rather than `EXPIRED`:
    /// "never took effect" and "took effect and ran out" are one state, and
    /// the set of states the search carries does not double per such hold.
    pub(crate) named: bool,
}

/// How a call ended, for the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Out {
    Ok,
    Fail(String),
    Info,
}

/// A call on the event in model terms.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Hold { slot: usize },
    Release { slot: usize },
    Confirm { slot: usize },
    Cancel { slot: usize },
    Read { held: u64, booked: u64 },
}

/// One call of the event's history.
#[derive(Clone, Debug)]
pub(crate) struct EvOp {
    /// Index into the history's calls.
    pub(crate) call: usize,
    pub(crate) inv_ms: u64,
    /// `None`: unknown outcome, may take effect at any time after `inv_ms`.
    pub(crate) ret_ms: Option<u64>,
    /// The Raft log index the reply named: the entry a write was applied
    /// at, the index a read was made at.
    pub(crate) index: Option<u64>,
    pub(crate) kind: Kind,
    pub(crate) out: Out,
}

/// An event's calls and holds.
#[derive(Clone, Debug)]
pub(crate) struct EventModel {
    pub(crate) slots: Vec<Slot>,
    pub(crate) ops: Vec<EvOp>,
}

/// Bounds of the clock the model allows for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tolerance {
    /// Largest forward skew injected on any node, plus slack.
    pub(crate) fwd_ms: u64,
    /// Largest backward skew injected on any node, plus slack.
    pub(crate) back_ms: u64,
}

/// `expires_at` in replies has whole seconds; the true expiry is up to this
/// much later.
const EXPIRY_ROUNDING_MS: u64 = 1_000;

fn mask_of(seats: &[String], index: &BTreeMap<&str, usize>) -> Option<u64> {
    let mut m = 0u64;
    for s in seats {
        m |= 1u64 << *index.get(s.as_str())?;
    }
    Some(m)
}

/// Builds the model of `event` from the calls: `seats` are its seats in
/// bit order, `ttl_ms` its hold TTL, `start_epoch_ms` the wall time of the
/// run's time 0, `booking_holds` the hold of every booking id known.
pub(crate) fn build(
    calls: &[Call],
    event: &str,
    seats: &[String],
    ttl_ms: u64,
    start_epoch_ms: u64,
    booking_holds: &BTreeMap<String, String>,
    tol: Tolerance,
) -> EventModel {
    assert!(seats.len() <= SEATS_MAX, "the model handles {SEATS_MAX} seats per event");
    let index: BTreeMap<&str, usize> = seats.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut slots: Vec<Slot> = Vec::new();
    let mut hold_slot: BTreeMap<String, usize> = BTreeMap::new();
    let mut ops = Vec::new();
    let mine = |c: &Call| c.invoke.value.event.as_deref() == Some(event);
    // Attempts of one request (same function, user and idempotency key)
    // are one operation: it took effect at most once, somewhere between
    // the first invocation and the acknowledged reply.
    let mut attempts: BTreeMap<(F, &str, &str), Vec<usize>> = BTreeMap::new();
    for (i, c) in calls.iter().enumerate() {
        if let (true, Some(u), Some(k)) = (mine(c), c.invoke.value.user.as_deref(), c.invoke.value.key.as_deref()) {
            attempts.entry((c.invoke.f, u, k)).or_default().push(i);
        }
    }
    let mut skip: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    let mut first_inv: BTreeMap<usize, u64> = BTreeMap::new();
    for group in attempts.values().filter(|g| g.len() > 1) {
        let rank = |i: &usize| match calls[*i].outcome() {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        let rep = *group.iter().min_by_key(|i| (rank(i), **i)).expect("a group has calls");
        first_inv.insert(rep, group.iter().map(|i| calls[*i].inv_ms()).min().unwrap_or(0));
        for i in group.iter().filter(|i| **i != rep) {
            skip.insert(*i);
        }
    }
    let inv_of = |i: usize| first_inv.get(&i).copied().unwrap_or_else(|| calls[i].inv_ms());
    // Pass 1: a slot per hold call.
    let mut call_slot: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, c) in calls.iter().enumerate() {
        if c.invoke.f != F::Hold || !mine(c) || skip.contains(&i) {
            continue;
        }
        let Some(mask) = mask_of(&c.invoke.value.seats, &index) else { continue };
        let upper_ms = match (c.outcome(), c.result().expires_at_ms) {
            (OpType::Ok, Some(e)) => {
                e.saturating_sub(start_epoch_ms).saturating_add(EXPIRY_ROUNDING_MS).saturating_add(tol.back_ms)
            }
            _ => u64::MAX,
        };
        let slot = slots.len();
        slots.push(Slot {
            mask,
            user: c.invoke.value.user.clone().unwrap_or_default(),
            lower_ms: (inv_of(i) + ttl_ms).saturating_sub(tol.fwd_ms),
            upper_ms,
            named: false,
        });
        call_slot.insert(i, slot);
        if c.outcome() == OpType::Ok {
            if let Some(h) = &c.result().hold {
                hold_slot.insert(h.clone(), slot);
            }
        }
    }
    // Pass 2: the calls.
    for (i, c) in calls.iter().enumerate() {
        if !mine(c) || skip.contains(&i) {
            continue;
        }
        let out = match c.outcome() {
            OpType::Ok => Out::Ok,
            OpType::Fail => Out::Fail(c.error().unwrap_or("").to_string()),
            _ => Out::Info,
        };
        let hold_of = |h: &Option<String>| h.as_ref().and_then(|h| hold_slot.get(h).copied());
        let kind = match c.invoke.f {
            F::Hold => match call_slot.get(&i) {
                Some(&slot) => Kind::Hold { slot },
                None => continue,
            },
            F::Release => match hold_of(&c.invoke.value.hold) {
                Some(slot) => Kind::Release { slot },
                None => continue,
            },
            F::Confirm => match hold_of(&c.invoke.value.hold) {
                Some(slot) => Kind::Confirm { slot },
                None => continue,
            },
            F::Cancel => {
                let hold = c.invoke.value.booking.as_ref().and_then(|b| booking_holds.get(b)).cloned();
                match hold_of(&hold) {
                    Some(slot) => Kind::Cancel { slot },
                    None => continue,
                }
            }
            F::Read => {
                if out != Out::Ok {
                    continue; // a read that failed or is unknown says nothing
                }
                let Some(map) = &c.result().seat_map else { continue };
                let (mut held, mut booked) = (0u64, 0u64);
                for (seat, status) in map {
                    let Some(&bit) = index.get(seat.as_str()) else { continue };
                    match status {
                        SeatStatus::Held => held |= 1 << bit,
                        SeatStatus::Booked => booked |= 1 << bit,
                        _ => {}
                    }
                }
                Kind::Read { held, booked }
            }
            _ => continue,
        };
        if let Kind::Release { slot } | Kind::Confirm { slot } | Kind::Cancel { slot } = kind {
            slots[slot].named = true;
        }
        if constrains(&kind, &out) {
            let index = c.complete.as_ref().and_then(|d| d.index);
            ops.push(EvOp { call: i, inv_ms: inv_of(i), ret_ms: c.ret_ms(), index, kind, out });
        }
    }
    EventModel { slots, ops }
}

/// Whether a call can change or constrain the state (others are dropped
/// before the search, which is exponential in concurrent calls).
fn constrains(kind: &Kind, out: &Out) -> bool {
    match (kind, out) {
        (_, Out::Ok | Out::Info) => true,
        (Kind::Hold { .. }, Out::Fail(c)) => refusal(c),
        (Kind::Release { .. }, Out::Fail(c)) => c == "hold_confirmed",
        (Kind::Confirm { .. }, Out::Fail(c)) => matches!(c.as_str(), "hold_expired" | "seats_lost" | "hold_confirmed"),
        _ => false,
    }
}

/// Hold failures that say something about the seats or the user's holds.
fn refusal(code: &str) -> bool {
    matches!(code, "seats_unavailable" | "hold_limit" | "sold_out")
}

impl EventModel {
    /// The initial state: no hold made.
    pub(crate) fn init(&self) -> Vec<u8> {
        vec![NOT_YET; self.slots.len()]
    }

    fn union(&self, st: &[u8], status: u8) -> u64 {
        st.iter().zip(&self.slots).filter(|(s, _)| **s == status).fold(0, |m, (_, slot)| m | slot.mask)
    }

    /// The status of a hold that ran out.
    fn gone(&self, slot: usize) -> u8 {
        if self.slots[slot].named {
            EXPIRED
        } else {
            NOT_YET
        }
    }

    fn eligible(&self, slot: usize, op: &EvOp) -> bool {
        op.ret_ms.is_none_or(|r| self.slots[slot].lower_ms <= r)
    }

    /// Expires every active hold whose `upper` the op's invocation passed.
    fn force_expiry(&self, st: &mut [u8], op: &EvOp) {
        for i in 0..st.len() {
            if st[i] == ACTIVE && self.slots[i].upper_ms <= op.inv_ms {
                st[i] = self.gone(i);
            }
        }
    }

    /// Frees the seats of `mask` by expiring the active holds on them, if
    /// they may have expired; a booked seat cannot be freed.
    fn free(&self, st: &mut [u8], mask: u64, op: &EvOp) -> bool {
        if self.union(st, CONFIRMED) & mask != 0 {
            return false;
        }
        for i in 0..st.len() {
            if st[i] == ACTIVE && self.slots[i].mask & mask != 0 {
                if !self.eligible(i, op) {
                    return false;
                }
                st[i] = self.gone(i);
            }
        }
        true
    }

    /// The state after `op` took effect with the result it reported.
    fn effect(&self, st: &[u8], op: &EvOp) -> Option<Vec<u8>> {
        let mut st = st.to_vec();
        match op.kind {
            Kind::Hold { slot } => {
                if !self.free(&mut st, self.slots[slot].mask, op) {
                    return None;
                }
                // One live hold per user and event.
                for i in 0..st.len() {
                    if i != slot && st[i] == ACTIVE && self.slots[i].user == self.slots[slot].user {
                        if !self.eligible(i, op) {
                            return None;
                        }
                        st[i] = self.gone(i);
                    }
                }
                st[slot] = ACTIVE;
            }
            Kind::Release { slot } => match st[slot] {
                ACTIVE => st[slot] = RELEASED,
                RELEASED | EXPIRED => {}
                _ => return None,
            },
            Kind::Confirm { slot } => match st[slot] {
                ACTIVE => st[slot] = CONFIRMED,
                // A retry of a confirmation that went through.
                CONFIRMED if op.out == Out::Ok => {}
                _ => return None,
            },
            Kind::Cancel { slot } => match st[slot] {
                CONFIRMED => st[slot] = CANCELLED,
                CANCELLED => {}
                _ => return None,
            },
            Kind::Read { held, booked } => {
                // Seats read held that no active hold covers: a pending hold
                // took effect. The one that may run out first is the most
                // permissive choice, as nothing else tells them apart.
                let mut uncovered = held & !self.union(&st, ACTIVE);
                let mut pending: Vec<usize> = (0..st.len()).filter(|&i| st[i] == PENDING).collect();
                pending.sort_by_key(|&i| self.slots[i].lower_ms);
                for i in pending {
                    let m = self.slots[i].mask;
                    if uncovered != 0 && m & uncovered != 0 && m & !uncovered == 0 {
                        st[i] = ACTIVE;
                        uncovered &= !m;
                    }
                }
                for i in 0..st.len() {
                    let m = self.slots[i].mask;
                    if st[i] == ACTIVE && m & held != m {
                        // A hold is all its seats or none: seen free, it ran out.
                        if m & held != 0 || m & booked != 0 || !self.eligible(i, op) {
                            return None;
                        }
                        st[i] = self.gone(i);
                    }
                }
                if self.union(&st, ACTIVE) != held || self.union(&st, CONFIRMED) != booked {
                    return None;
                }
            }
        }
        Some(st)
    }

    /// Every state `op` can lead to from `st`; empty when it cannot be
    /// linearized there.
    pub(crate) fn step(&self, st: &[u8], op: &EvOp) -> Vec<Vec<u8>> {
        let mut st = st.to_vec();
        self.force_expiry(&mut st, op);
        match &op.out {
            Out::Ok => self.effect(&st, op).into_iter().collect(),
            Out::Info if matches!(op.kind, Kind::Hold { .. }) => {
                let Kind::Hold { slot } = op.kind else { unreachable!() };
                st[slot] = PENDING;
                vec![st]
            }
            Out::Info => {
                let mut out = vec![st.clone()];
                if let Some(e) = self.effect(&st, op) {
                    if e != st {
                        out.push(e);
                    }
                }
                out
            }
            Out::Fail(code) => {
                let ok = match op.kind {
                    Kind::Hold { slot } => {
                        let s = &self.slots[slot];
                        let busy = self.union(&st, ACTIVE) | self.union(&st, CONFIRMED) | self.union(&st, PENDING);
                        let taken = busy & s.mask != 0;
                        let limit = st.iter().zip(&self.slots).any(|(x, o)| *x == ACTIVE && o.user == s.user);
                        !refusal(code) || taken || limit
                    }
                    Kind::Release { slot } => code != "hold_confirmed" || matches!(st[slot], CONFIRMED | CANCELLED),
                    Kind::Confirm { slot } => match code.as_str() {
                        "hold_confirmed" => matches!(st[slot], CONFIRMED | CANCELLED),
                        "hold_expired" | "seats_lost" => match st[slot] {
                            ACTIVE if self.eligible(slot, op) => {
                                st[slot] = EXPIRED;
                                true
                            }
                            RELEASED | EXPIRED => true,
                            _ => false,
                        },
                        _ => true,
                    },
                    _ => true,
                };
                if ok {
                    vec![st]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

//! Checkers: pure functions over a history (and what the runner measured
//! besides, such as replica digests), each answering valid, invalid or
//! unknown. Unknown fails a run like invalid: a checker that could not
//! decide (it ran out of time, or the final reads never succeeded) has
//! proved nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::history::{Call, OpType, SeatStatus, F};
use crate::model::{self, Tolerance};
use crate::wgl::{self, Lin};

/// Errors listed per checker (the rest are counted).
const ERRORS_LISTED_MAX: usize = 20;

/// One event of the workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventSetup {
    /// Event id.
    pub event: String,
    /// Every seat, in a fixed order.
    pub seats: Vec<String>,
    /// Hold TTL.
    pub ttl_ms: u64,
}

/// What the checkers need to know of the run besides the history.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Setup {
    /// Wall-clock time (ms since the epoch) of history time 0.
    pub start_epoch_ms: u64,
    /// The events.
    pub events: Vec<EventSetup>,
    /// Largest forward clock skew the nemesis injected on any node, ms.
    pub clock_fwd_ms_max: u64,
    /// Largest backward clock skew the nemesis injected on any node, ms.
    pub clock_back_ms_max: u64,
}

/// A replica's state digest at an applied index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Node id.
    pub node: u64,
    /// Region group.
    pub group: u64,
    /// Applied log index.
    pub index: u64,
    /// Hash of the state's snapshot encoding.
    pub hash: String,
}

/// Measurements of the run that are not operations.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    /// Replica digests; `None` when not measurable (an existing cluster).
    pub digests: Option<Vec<Digest>>,
    /// Nodes that exited without being told to, with how.
    pub crashes: Vec<String>,
}

/// A checker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// Checked and found correct.
    Valid,
    /// A violation.
    Invalid,
    /// Could not decide; fails the run.
    Unknown,
    /// Not applicable to this run (said why in the notes); does not fail it.
    Skipped,
}

/// One checker's report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    /// Checker name.
    pub name: String,
    /// Its answer.
    pub valid: Validity,
    /// The first violations, in words.
    pub errors: Vec<String>,
    /// Violations found in all.
    pub error_count: u64,
    /// What was checked.
    pub notes: Vec<String>,
}

impl CheckResult {
    fn new(name: &str) -> CheckResult {
        CheckResult { name: name.into(), valid: Validity::Valid, errors: Vec::new(), error_count: 0, notes: Vec::new() }
    }

    fn error(&mut self, e: String) {
        self.valid = Validity::Invalid;
        self.error_count += 1;
        if self.errors.len() < ERRORS_LISTED_MAX {
            self.errors.push(e);
        }
    }

    fn unknown(&mut self, why: String) {
        if self.valid == Validity::Valid {
            self.valid = Validity::Unknown;
        }
        self.notes.push(why);
    }
}

/// Every checker's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// True when every checker is valid or skipped.
    pub valid: bool,
    /// Per checker.
    pub results: Vec<CheckResult>,
}

impl Verdict {
    /// The checkers that failed the run.
    pub fn failed(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| matches!(r.valid, Validity::Invalid | Validity::Unknown))
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// Runs every checker; the linearizability search gets `check_secs_max`.
pub fn check_all(calls: &[Call], setup: &Setup, observed: &Observed, check_secs_max: u64) -> Verdict {
    let results = vec![
        sold_once(calls),
        no_lost_confirmations(calls, setup),
        linearizable(calls, setup, Duration::from_secs(check_secs_max)),
        hold_expiry(calls, setup),
        conservation(calls, setup),
        idempotency(calls),
        convergence(observed),
        liveness(calls, observed),
        waiting_room(calls),
    ];
    let valid = results.iter().all(|r| matches!(r.valid, Validity::Valid | Validity::Skipped));
    Verdict { valid, results }
}

fn client_calls(calls: &[Call]) -> impl Iterator<Item = &Call> {
    calls.iter().filter(|c| c.invoke.f != F::Nemesis)
}

/// The final bookings reads that succeeded, and whether every one did.
fn final_bookings(calls: &[Call]) -> (Vec<&Call>, bool) {
    let finals: Vec<&Call> = calls.iter().filter(|c| c.invoke.f == F::Bookings && c.invoke.value.last).collect();
    let ok: Vec<&Call> = finals.iter().copied().filter(|c| c.outcome() == OpType::Ok).collect();
    let all = !finals.is_empty() && ok.len() == finals.len();
    (ok, all)
}

/// Booking ids on which a cancel may have taken effect.
fn maybe_cancelled(calls: &[Call]) -> BTreeSet<String> {
    client_calls(calls)
        .filter(|c| c.invoke.f == F::Cancel && c.outcome() != OpType::Fail)
        .filter_map(|c| c.invoke.value.booking.clone())
        .collect()
}

/// No seat is in two bookings that stand at the end, nor in two confirmed
/// bookings acknowledged without a cancellation of either.
pub fn sold_once(calls: &[Call]) -> CheckResult {
    let mut r = CheckResult::new("sold-once");
    let (finals, all) = final_bookings(calls);
    if !all {
        r.unknown("the final bookings reads did not all succeed".into());
    }
    let mut owner: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut standing = 0u64;
    for c in &finals {
        for b in c.result().bookings.iter().flatten() {
            if b.status != "confirmed" || !seen.insert(b.booking.clone()) {
                continue;
            }
            standing += 1;
            for seat in &b.seats {
                if let Some(other) = owner.insert((b.event.clone(), seat.clone()), b.booking.clone()) {
                    r.error(format!("seat {seat} of {} is in bookings {other} and {}", b.event, b.booking));
                }
            }
        }
    }
    // Acknowledged confirmations, independently of the final read.
    let cancelled = maybe_cancelled(calls);
    let mut acked: BTreeMap<(String, String), String> = BTreeMap::new();
    for c in client_calls(calls).filter(|c| c.invoke.f == F::Confirm && c.outcome() == OpType::Ok) {
        let v = c.result();
        let (Some(event), Some(booking)) = (&v.event, &v.booking) else { continue };
        if cancelled.contains(booking) {
            continue;
        }
        for seat in &v.seats {
            if let Some(other) = acked.insert((event.clone(), seat.clone()), booking.clone()) {
                if &other != booking {
                    r.error(format!("seat {seat} of {event} was confirmed in {other} and in {booking}"));
                }
            }
        }
    }
    r.notes.push(format!("{standing} bookings stand at the end; {} acknowledged seats", acked.len()));
    r
}

/// Every acknowledged confirmation that was never (maybe) cancelled is in
/// its user's bookings at the end and its seats read booked.
pub fn no_lost_confirmations(calls: &[Call], setup: &Setup) -> CheckResult {
    let mut r = CheckResult::new("no-lost-confirmations");
    let (finals, all) = final_bookings(calls);
    if !all {
        r.unknown("the final bookings reads did not all succeed".into());
    }
    let mut final_status: BTreeMap<String, String> = BTreeMap::new();
    let mut users_read: BTreeSet<String> = BTreeSet::new();
    for c in &finals {
        users_read.extend(c.invoke.value.user.clone());
        for b in c.result().bookings.iter().flatten() {
            final_status.insert(b.booking.clone(), b.status.clone());
        }
    }
    let mut final_maps: BTreeMap<String, BTreeMap<String, SeatStatus>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.invoke.f == F::Read && c.invoke.value.last && c.outcome() == OpType::Ok) {
        if let (Some(e), Some(m)) = (&c.invoke.value.event, &c.result().seat_map) {
            final_maps.insert(e.clone(), m.clone());
        }
    }
    for e in &setup.events {
        if !final_maps.contains_key(&e.event) {
            r.unknown(format!("no final seat map of {}", e.event));
        }
    }
    let cancelled = maybe_cancelled(calls);
    let mut checked = 0u64;
    for c in client_calls(calls).filter(|c| c.invoke.f == F::Confirm && c.outcome() == OpType::Ok) {
        let v = c.result();
        let (Some(booking), Some(user)) = (&v.booking, &c.invoke.value.user) else { continue };
        if cancelled.contains(booking) {
            continue;
        }
        checked += 1;
        if users_read.contains(user) {
            match final_status.get(booking) {
                Some(s) if s == "confirmed" => {}
                Some(s) => r.error(format!("acknowledged booking {booking} of {user} is {s} at the end")),
                None => r.error(format!("acknowledged booking {booking} of {user} is missing at the end")),
            }
        } else {
            r.unknown(format!("user {user} was not read at the end"));
        }
        if let Some(map) = v.event.as_ref().and_then(|e| final_maps.get(e)) {
            for seat in &v.seats {
                if map.get(seat) != Some(&SeatStatus::Booked) {
                    r.error(format!(
                        "seat {seat} of acknowledged booking {booking} reads {:?} at the end",
                        map.get(seat)
                    ));
                }
            }
        }
    }
    r.notes.push(format!("{checked} acknowledged confirmations checked"));
    r
}

/// The hold of every booking id the history names.
fn booking_holds(calls: &[Call]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in calls {
        let v = c.result();
        if c.invoke.f == F::Confirm && c.outcome() == OpType::Ok {
            if let (Some(b), Some(h)) = (&v.booking, &c.invoke.value.hold) {
                out.insert(b.clone(), h.clone());
            }
        }
        if c.invoke.f == F::Bookings && c.outcome() == OpType::Ok {
            for b in v.bookings.iter().flatten() {
                out.insert(b.booking.clone(), b.hold.clone());
            }
        }
    }
    out
}

fn tolerance(setup: &Setup) -> Tolerance {
    // Slack for scheduling: a reply's time and the entry's stamp are taken
    // on one machine but not at one instant.
    const SLACK_MS: u64 = 250;
    Tolerance { fwd_ms: setup.clock_fwd_ms_max + SLACK_MS, back_ms: setup.clock_back_ms_max + SLACK_MS }
}

/// Per event: seat-map reads are ordered by their log index as they are in
/// real time, then a linearization of every call exists: the calls in log
/// index order when that order is one (the fast replay), else by search.
pub fn linearizable(calls: &[Call], setup: &Setup, budget: Duration) -> CheckResult {
    let mut r = CheckResult::new("linearizable");
    let deadline = Instant::now() + budget;
    let bh = booking_holds(calls);
    let tol = tolerance(setup);
    let (mut ops_total, mut events_ok, mut replayed) = (0usize, 0usize, 0usize);
    let mut replay_notes = Vec::new();
    for e in &setup.events {
        // Log order against real time: a call that began after another
        // ended has a later log index (a read may share the index of the
        // last write it saw). Reads showing an older index than a read or
        // write before them are stale; a write ordered before one that
        // ended before it began means the log disagrees with real time.
        let mut indexed: Vec<(u64, u64, u64, bool, usize)> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.invoke.value.event.as_deref() == Some(&e.event))
            .filter(|(_, c)| matches!(c.outcome(), OpType::Ok | OpType::Fail))
            .filter(|(_, c)| matches!(c.invoke.f, F::Read | F::Hold | F::Release | F::Confirm | F::Cancel))
            .filter_map(|(i, c)| Some((c.inv_ms(), c.ret_ms()?, c.complete.as_ref()?.index?, c.invoke.f == F::Read, i)))
            .collect();
        indexed.sort_unstable();
        let mut by_ret: Vec<(u64, u64, usize)> = indexed.iter().map(|(_, ret, idx, _, i)| (*ret, *idx, *i)).collect();
        by_ret.sort_unstable();
        let (mut k, mut max_before, mut max_call) = (0, 0u64, 0usize);
        for (inv, _, idx, is_read, i) in &indexed {
            while k < by_ret.len() && by_ret[k].0 < *inv {
                if by_ret[k].1 > max_before {
                    max_before = by_ret[k].1;
                    max_call = by_ret[k].2;
                }
                k += 1;
            }
            let (line, earlier) = (calls[*i].pos + 1, calls[max_call].pos + 1);
            if *is_read && *idx < max_before {
                r.error(format!(
                    "{}: stale read: the read at line {line} shows index {idx} after the call at line {earlier} had index {max_before}",
                    e.event
                ));
            } else if !*is_read && *idx <= max_before && max_before > 0 {
                r.error(format!(
                    "{}: log order contradicts real time: the write at line {line} has index {idx}, not after index \
                     {max_before} of the call at line {earlier}, which ended before it began",
                    e.event
                ));
            }
        }
        let m = model::build(calls, &e.event, &e.seats, e.ttl_ms, setup.start_epoch_ms, &bh, tol);
        ops_total += m.ops.len();
        match wgl::replay(&m) {
            Ok(()) => {
                events_ok += 1;
                replayed += 1;
                continue;
            }
            Err(why) if replay_notes.len() < 5 => replay_notes.push(format!("{}: {why}", e.event)),
            Err(_) => {}
        }
        match wgl::check(&m, deadline) {
            Lin::Ok => events_ok += 1,
            Lin::Timeout => r.unknown(format!("{}: the search ran out of time ({} calls)", e.event, m.ops.len())),
            Lin::Illegal { depth, stuck } => {
                let lines: Vec<String> = stuck
                    .iter()
                    .rev()
                    .take(4)
                    .map(|&o| {
                        let c = &calls[m.ops[o].call];
                        format!("line {} ({:?} by process {})", c.pos + 1, c.invoke.f, c.invoke.process)
                    })
                    .collect();
                r.error(format!(
                    "{}: not linearizable: {depth} of {} calls linearized, then none of [{}] fits",
                    e.event,
                    m.ops.len(),
                    lines.join(", ")
                ));
            }
        }
    }
    r.notes.push(format!(
        "{events_ok} of {} events linearizable ({replayed} by replay in log order, the rest by search); {ops_total} calls",
        setup.events.len()
    ));
    r.notes.extend(replay_notes.into_iter().map(|n| format!("replay fell back to the search: {n}")));
    r
}

/// A confirmation succeeds only while its hold is live, and a seat is never
/// held for another user before a hold on it could have expired (unless
/// that hold was released or its booking cancelled first).
pub fn hold_expiry(calls: &[Call], setup: &Setup) -> CheckResult {
    let mut r = CheckResult::new("hold-expiry");
    let tol = tolerance(setup);
    let ttl: BTreeMap<&str, u64> = setup.events.iter().map(|e| (e.event.as_str(), e.ttl_ms)).collect();
    let holds: Vec<&Call> =
        client_calls(calls).filter(|c| c.invoke.f == F::Hold && c.outcome() == OpType::Ok).collect();
    let by_id: BTreeMap<&str, &Call> = holds.iter().filter_map(|c| Some((c.result().hold.as_deref()?, *c))).collect();
    // When a hold stopped blocking: released, or its booking cancelled.
    let bh = booking_holds(calls);
    let mut freed_at: BTreeMap<String, u64> = BTreeMap::new();
    for c in client_calls(calls).filter(|c| c.outcome() != OpType::Fail) {
        let hold = match c.invoke.f {
            F::Release => c.invoke.value.hold.clone(),
            F::Cancel => c.invoke.value.booking.as_ref().and_then(|b| bh.get(b)).cloned(),
            _ => None,
        };
        if let Some(h) = hold {
            let t = freed_at.entry(h).or_insert(u64::MAX);
            *t = (*t).min(c.inv_ms());
        }
    }
    // Confirmations of holds that must have run out.
    for c in client_calls(calls).filter(|c| c.invoke.f == F::Confirm && c.outcome() == OpType::Ok) {
        let Some(h) = c.invoke.value.hold.as_deref().and_then(|h| by_id.get(h)) else { continue };
        let Some(exp) = h.result().expires_at_ms else { continue };
        let upper = exp.saturating_sub(setup.start_epoch_ms) + 1_000 + tol.back_ms;
        if c.inv_ms() > upper {
            r.error(format!(
                "booking at line {} confirmed hold {} {} ms after it expired",
                c.pos + 1,
                h.result().hold.as_deref().unwrap_or("?"),
                c.inv_ms() - upper
            ));
        }
    }
    // A retry with the same key is the same request: its hold may date from
    // the first attempt.
    let mut first_inv: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for c in client_calls(calls).filter(|c| c.invoke.f == F::Hold) {
        if let (Some(u), Some(k)) = (c.invoke.value.user.as_deref(), c.invoke.value.key.as_deref()) {
            let t = first_inv.entry((u, k)).or_insert(u64::MAX);
            *t = (*t).min(c.inv_ms());
        }
    }
    // Seats given away early.
    let mut pairs = 0u64;
    for (i, a) in holds.iter().enumerate() {
        let (Some(event), Some(a_ret)) = (a.invoke.value.event.as_deref(), a.ret_ms()) else { continue };
        let Some(&ttl_ms) = ttl.get(event) else { continue };
        let a_inv = match (a.invoke.value.user.as_deref(), a.invoke.value.key.as_deref()) {
            (Some(u), Some(k)) => first_inv.get(&(u, k)).copied().unwrap_or(a.inv_ms()),
            _ => a.inv_ms(),
        };
        let lower = (a_inv + ttl_ms).saturating_sub(tol.fwd_ms);
        let a_id = a.result().hold.clone().unwrap_or_default();
        let freed = freed_at.get(&a_id).copied().unwrap_or(u64::MAX);
        for b in holds.iter().skip(i + 1) {
            if b.invoke.value.event.as_deref() != Some(event) || b.invoke.value.user == a.invoke.value.user {
                continue;
            }
            let Some(b_ret) = b.ret_ms() else { continue };
            let shared: Vec<&String> =
                b.invoke.value.seats.iter().filter(|s| a.invoke.value.seats.contains(s)).collect();
            if shared.is_empty() || b.inv_ms() <= a_ret || freed <= b_ret {
                continue;
            }
            pairs += 1;
            if b_ret < lower {
                r.error(format!(
                    "seat {} of {event}: hold {a_id} (line {}) was live until at least {lower} ms, yet hold {} (line {}) got it by {b_ret} ms",
                    shared[0],
                    a.pos + 1,
                    b.result().hold.as_deref().unwrap_or("?"),
                    b.pos + 1
                ));
            }
        }
    }
    r.notes.push(format!("{} holds, {pairs} later holds on their seats checked", holds.len()));
    r
}

/// Every seat map lists each seat of the event exactly once, and the
/// availability counters add up to every category's total and to the
/// event's capacity.
pub fn conservation(calls: &[Call], setup: &Setup) -> CheckResult {
    let mut r = CheckResult::new("conservation");
    let seats: BTreeMap<&str, BTreeSet<&str>> =
        setup.events.iter().map(|e| (e.event.as_str(), e.seats.iter().map(String::as_str).collect())).collect();
    let mut n = 0u64;
    for c in client_calls(calls).filter(|c| c.outcome() == OpType::Ok) {
        let Some(event) = c.invoke.value.event.as_deref() else { continue };
        let Some(expected) = seats.get(event) else { continue };
        if let Some(map) = &c.result().seat_map {
            n += 1;
            let got: BTreeSet<&str> = map.keys().map(String::as_str).collect();
            if &got != expected {
                r.error(format!(
                    "line {}: seat map of {event} lists {} seats, not the {}",
                    c.pos + 1,
                    got.len(),
                    expected.len()
                ));
            }
        }
        if let Some(counts) = &c.result().counts {
            n += 1;
            let mut total = 0u64;
            for (cat, k) in counts {
                total += k.total;
                if k.available + k.held + k.booked + k.blocked != k.total {
                    r.error(format!(
                        "line {}: {event} {cat}: {} available + {} held + {} booked + {} blocked != {} total",
                        c.pos + 1,
                        k.available,
                        k.held,
                        k.booked,
                        k.blocked,
                        k.total
                    ));
                }
            }
            if total != expected.len() as u64 {
                r.error(format!("line {}: {event} has {total} seats in all, not {}", c.pos + 1, expected.len()));
            }
        }
    }
    r.notes.push(format!("{n} seat maps and counters checked"));
    r
}

/// A request id is applied at most once: every acknowledged reply to one
/// idempotency key names the same hold or booking, distinct keys never
/// share one, and no hold became two bookings.
pub fn idempotency(calls: &[Call]) -> CheckResult {
    let mut r = CheckResult::new("idempotency");
    let mut by_key: BTreeMap<(String, String, F), String> = BTreeMap::new();
    let mut by_result: BTreeMap<(F, String), (String, String)> = BTreeMap::new();
    for c in client_calls(calls).filter(|c| c.outcome() == OpType::Ok) {
        let v = &c.invoke.value;
        let result = match c.invoke.f {
            F::Hold => c.result().hold.clone(),
            F::Confirm => c.result().booking.clone(),
            _ => None,
        };
        let (Some(key), Some(user), Some(result)) = (&v.key, &v.user, result) else { continue };
        let k = (user.clone(), key.clone(), c.invoke.f);
        if let Some(first) = by_key.get(&k) {
            if first != &result {
                r.error(format!("key {key} of {user}: line {} got {result}, an earlier reply {first}", c.pos + 1));
            }
        } else {
            by_key.insert(k, result.clone());
        }
        let rk = (c.invoke.f, result.clone());
        if let Some((u, k0)) = by_result.get(&rk) {
            if (u, k0) != (user, key) {
                r.error(format!("{result} was answered to key {k0} of {u} and to key {key} of {user}"));
            }
        } else {
            by_result.insert(rk, (user.clone(), key.clone()));
        }
    }
    let (finals, _) = final_bookings(calls);
    let mut hold_booking: BTreeMap<String, String> = BTreeMap::new();
    for c in finals {
        for b in c.result().bookings.iter().flatten() {
            if let Some(other) = hold_booking.insert(b.hold.clone(), b.booking.clone()) {
                if other != b.booking {
                    r.error(format!("hold {} became bookings {other} and {}", b.hold, b.booking));
                }
            }
        }
    }
    r.notes.push(format!("{} keys checked", by_key.len()));
    r
}

/// Replicas at equal applied index have equal state.
pub fn convergence(observed: &Observed) -> CheckResult {
    let mut r = CheckResult::new("convergence");
    let Some(digests) = &observed.digests else {
        r.valid = Validity::Skipped;
        r.notes.push("replica digests are not observable on this cluster".into());
        return r;
    };
    let mut at: BTreeMap<(u64, u64), BTreeMap<String, Vec<u64>>> = BTreeMap::new();
    for d in digests {
        at.entry((d.group, d.index)).or_default().entry(d.hash.clone()).or_default().push(d.node);
    }
    let mut compared = 0u64;
    for ((group, index), hashes) in &at {
        let nodes: BTreeSet<u64> = hashes.values().flatten().copied().collect();
        if nodes.len() < 2 {
            continue;
        }
        compared += 1;
        if hashes.len() > 1 {
            let parts: Vec<String> = hashes.iter().map(|(h, n)| format!("{n:?} have {h}")).collect();
            r.error(format!("group {group} at index {index}: {}", parts.join("; ")));
        }
    }
    if compared == 0 {
        r.unknown("no two replicas reported a digest at the same index".into());
    }
    r.notes.push(format!("{compared} (group, index) points compared"));
    r
}

/// After the faults healed, every probe (a hold and confirmation on a fresh
/// event through each gateway) succeeded, and no node died on its own.
pub fn liveness(calls: &[Call], observed: &Observed) -> CheckResult {
    let mut r = CheckResult::new("liveness");
    let probes: Vec<&Call> = calls.iter().filter(|c| c.invoke.f == F::Probe).collect();
    if probes.is_empty() {
        r.unknown("no probe ran after healing".into());
    }
    for c in &probes {
        if c.outcome() != OpType::Ok {
            r.error(format!(
                "probe at line {} through node {:?} did not succeed: {}",
                c.pos + 1,
                c.invoke.value.node,
                c.error().unwrap_or("no answer")
            ));
        }
    }
    for crash in &observed.crashes {
        r.error(format!("node died: {crash}"));
    }
    r.notes.push(format!("{} probes", probes.len()));
    r
}

/// How stale a waiting-room status may be: the gateway answers from a
/// summary at most 300 ms old, whose linearizable read may itself have
/// taken up to the gateway's cluster budget (4 s in test clusters).
pub const STATUS_STALE_MS_MAX: u64 = 5_000;

/// Waiting-room fairness, per event: one place per user (every join and
/// status of a user names the same position, and the final rejoin after
/// healing too: no place is lost); no two users share a position; FIFO
/// (a user whose join was acknowledged before another user's first join
/// began is ahead of them); admission in order (no user is seen waiting
/// after one behind them was seen admitted, later than a status can be
/// stale).
pub fn waiting_room(calls: &[Call]) -> CheckResult {
    let mut r = CheckResult::new("waiting-room");
    type Key<'a> = (&'a str, &'a str);
    // (event, user) -> (first invocation, first acknowledged return, position)
    let mut users: BTreeMap<Key, (u64, Option<u64>, Option<u64>)> = BTreeMap::new();
    let (mut joins, mut finals_ok, mut finals) = (0usize, 0usize, 0usize);
    for c in calls.iter().filter(|c| c.invoke.f == F::Join) {
        let (Some(ev), Some(user)) = (c.invoke.value.event.as_deref(), c.invoke.value.user.as_deref()) else {
            continue;
        };
        let e = users.entry((ev, user)).or_insert((c.inv_ms(), None, None));
        e.0 = e.0.min(c.inv_ms());
        if c.invoke.value.last {
            finals += 1;
        }
        if c.outcome() != OpType::Ok {
            continue;
        }
        joins += 1;
        if c.invoke.value.last {
            finals_ok += 1;
        }
        let Some(pos) = c.result().position else { continue };
        if let Some(ret) = c.ret_ms() {
            e.1 = Some(e.1.map_or(ret, |x: u64| x.min(ret)));
        }
        match e.2 {
            None => e.2 = Some(pos),
            Some(p) if p != pos => r.error(format!(
                "{ev}: {user} was given position {p}, then {pos} (line {}{})",
                c.pos + 1,
                if c.invoke.value.last { ", the rejoin after healing" } else { "" }
            )),
            Some(_) => {}
        }
    }
    for c in calls.iter().filter(|c| c.invoke.f == F::QueueStatus && c.outcome() == OpType::Ok) {
        let (Some(ev), Some(user)) = (c.invoke.value.event.as_deref(), c.invoke.value.user.as_deref()) else {
            continue;
        };
        if let (Some(pos), Some((_, _, Some(p)))) = (c.result().position, users.get(&(ev, user))) {
            if pos != *p {
                r.error(format!("{ev}: the status at line {} shows {user} at {pos}, not at {p}", c.pos + 1));
            }
        }
    }
    // Per event: (user, first invocation, first acknowledgement, position).
    type Placed<'a> = (&'a str, u64, Option<u64>, u64);
    let mut events: BTreeMap<&str, Vec<Placed>> = BTreeMap::new();
    for ((ev, user), (inv, ret, pos)) in &users {
        if let Some(pos) = pos {
            events.entry(ev).or_default().push((user, *inv, *ret, *pos));
        }
    }
    for (ev, list) in &events {
        let mut by_pos: BTreeMap<u64, &str> = BTreeMap::new();
        for (user, _, _, pos) in list {
            if let Some(other) = by_pos.insert(*pos, user) {
                r.error(format!("{ev}: {other} and {user} share position {pos}"));
            }
        }
        // FIFO: sweep users by first invocation, with the largest position
        // of those acknowledged before it.
        let mut by_inv: Vec<(u64, u64, &str)> = list.iter().map(|(u, inv, _, pos)| (*inv, *pos, *u)).collect();
        by_inv.sort_unstable();
        let mut by_ret: Vec<(u64, u64, &str)> =
            list.iter().filter_map(|(u, _, ret, pos)| Some(((*ret)?, *pos, *u))).collect();
        by_ret.sort_unstable();
        let (mut k, mut max_pos, mut max_user) = (0, None::<u64>, "");
        for (inv, pos, user) in &by_inv {
            while k < by_ret.len() && by_ret[k].0 < *inv {
                if max_pos.is_none_or(|m| by_ret[k].1 > m) {
                    max_pos = Some(by_ret[k].1);
                    max_user = by_ret[k].2;
                }
                k += 1;
            }
            if let Some(m) = max_pos.filter(|m| *pos < *m) {
                r.error(format!(
                    "{ev}: not FIFO: {user} joined after {max_user} was placed at {m}, but got position {pos}"
                ));
            }
        }
    }
    // Admission in order: a status saying "waiting" at position p, asked
    // for later than a status can be stale after another showed a user
    // behind p admitted.
    let status = |c: &&Call, state: &str| {
        c.invoke.f == F::QueueStatus && c.outcome() == OpType::Ok && c.result().queue_state.as_deref() == Some(state)
    };
    let mut admitted: BTreeMap<&str, Vec<(u64, u64, &str)>> = BTreeMap::new();
    for c in calls.iter().filter(|c| status(c, "admitted")) {
        let (Some(ev), Some(user)) = (c.invoke.value.event.as_deref(), c.invoke.value.user.as_deref()) else {
            continue;
        };
        if let (Some((_, _, Some(pos))), Some(ret)) = (users.get(&(ev, user)), c.ret_ms()) {
            admitted.entry(ev).or_default().push((ret, *pos, user));
        }
    }
    admitted.values_mut().for_each(|v| v.sort_unstable());
    let mut waiting = 0usize;
    for c in calls.iter().filter(|c| status(c, "waiting")) {
        let (Some(ev), Some(user)) = (c.invoke.value.event.as_deref(), c.invoke.value.user.as_deref()) else {
            continue;
        };
        let Some(pos) = c.result().position else { continue };
        waiting += 1;
        let seen = admitted.get(ev).map(Vec::as_slice).unwrap_or_default();
        if let Some((ret, p, other)) =
            seen.iter().take_while(|(ret, _, _)| ret + STATUS_STALE_MS_MAX < c.inv_ms()).find(|(_, p, _)| *p > pos)
        {
            r.error(format!(
                "{ev}: admitted out of order: {other} (position {p}) was admitted by {ret} ms, but {user} \
                 (position {pos}) was still waiting at line {} ({} ms)",
                c.pos + 1,
                c.inv_ms()
            ));
        }
    }
    if finals > finals_ok {
        r.unknown(format!("{} of {finals} rejoins after healing did not succeed", finals - finals_ok));
    }
    let admitted_total: usize = admitted.values().map(Vec::len).sum();
    r.notes.push(format!(
        "{joins} joins acknowledged for {} users in {} rooms; {waiting} waiting and {admitted_total} admitted statuses",
        users.len(),
        events.len()
    ));
    if users.is_empty() {
        r.valid = Validity::Skipped;
        r.notes.push("the run made no waiting-room joins".into());
    } else if joins == 0 {
        r.unknown("no waiting-room join was acknowledged".into());
    }
    r
}

//! The seat-contention workload: logical processes hold, confirm, release
//! and cancel seats of a few small events with short holds, and read seat
//! maps and counters, through every gateway. Choices come from a seeded
//! RNG per process; the timing of the cluster does the rest.
//!
//! Each event takes a bounded number of operations (`ops_per_event_max`)
//! and then the workload moves on to a fresh one, which keeps every
//! linearizability search small. A process whose call ended `info` never
//! calls again (its successor gets a new process id and a new user); half
//! the time the successor first retries the unknown call with the same
//! user and idempotency key, which is what the idempotency checker needs.
//!
//! Beside it runs the waiting-room workload (`queue_worker`): buyers join
//! rooms that are always on, poll until admitted, and buy one seat each.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::{Endpoint, Gateway, Joined, Reply, Standing};
use crate::history::{Op, OpType, Value, F};

/// Pause between two calls of a thread.
const THINK_MS_MIN: u64 = 50;
/// Pause between two calls of a thread.
const THINK_MS_MAX: u64 = 150;
/// Calls per second a thread makes at most (one per mean think time).
pub(crate) const CALLS_PER_SEC_PER_THREAD: u64 = 1000 / ((THINK_MS_MIN + THINK_MS_MAX) / 2);

/// Records operations with times relative to the run's start.
pub(crate) struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
    ops_max: usize,
}

impl Recorder {
    pub(crate) fn new(start: Instant, ops_max: usize) -> Recorder {
        Recorder { start, ops: Mutex::new(Vec::new()), ops_max }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Whether the history has room for another call.
    pub(crate) fn has_room(&self) -> bool {
        self.ops.lock().expect("history lock").len() + 2 <= self.ops_max
    }

    pub(crate) fn invoke(&self, f: F, process: u64, value: Value) {
        let op = Op::invoke(f, process, self.now_ns(), value);
        self.ops.lock().expect("history lock").push(op);
    }

    pub(crate) fn complete(
        &self,
        ty: OpType,
        f: F,
        process: u64,
        value: Value,
        index: Option<u64>,
        error: Option<String>,
    ) {
        let op = Op { ty, f, process, time: self.now_ns(), index, value, error };
        self.ops.lock().expect("history lock").push(op);
    }

    pub(crate) fn len(&self) -> usize {
        self.ops.lock().expect("history lock").len()
    }

    pub(crate) fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().expect("history lock"))
    }
}

/// The events the workload runs through, each with a budget of calls.
pub(crate) struct Events {
    pub(crate) ids: Vec<String>,
    pub(crate) seats: Vec<String>,
    used: Vec<AtomicUsize>,
    live: usize,
    per_event_max: usize,
}

impl Events {
    pub(crate) fn new(ids: Vec<String>, seats: Vec<String>, live: usize, per_event_max: usize) -> Events {
        let used = ids.iter().map(|_| AtomicUsize::new(0)).collect();
        Events { ids, seats, used, live, per_event_max }
    }

    /// Takes one call's budget of a live event (one of the first `live`
    /// events with budget left), or `None` when all are spent.
    fn pick(&self, rng: &mut StdRng) -> Option<usize> {
        let open: Vec<usize> = (0..self.ids.len())
            .filter(|&i| self.used[i].load(Ordering::Relaxed) < self.per_event_max)
            .take(self.live)
            .collect();
        if open.is_empty() {
            return None;
        }
        let i = open[rng.gen_range(0..open.len())];
        self.used[i].fetch_add(1, Ordering::Relaxed);
        Some(i)
    }

    /// Charges a call on event `i` (one already chosen).
    fn charge(&self, i: usize) -> bool {
        self.used[i].fetch_add(1, Ordering::Relaxed) < self.per_event_max
    }
}

/// What one process knows of its holds and bookings.
#[derive(Default)]
struct Mine {
    /// (event index, hold id, expiry as wall ms if stated)
    holds: Vec<(usize, String)>,
    /// (event index, booking id)
    bookings: Vec<(usize, String)>,
}

/// A call to retry after an unknown outcome.
#[derive(Clone)]
enum Retry {
    Hold { event: usize, seats: Vec<String>, key: String },
    Confirm { event: usize, hold: String, key: String },
}

/// Shared by the processes.
pub(crate) struct Shared {
    pub(crate) gateways: Vec<Endpoint>,
    pub(crate) tokens: Mutex<std::collections::BTreeMap<String, String>>,
    pub(crate) events: Events,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) next_process: AtomicU64,
    pub(crate) deadline: Instant,
}

impl Shared {
    /// A token for `user` from any gateway that answers, cached.
    pub(crate) async fn token(&self, user: &str) -> Option<String> {
        if let Some(t) = self.tokens.lock().expect("tokens lock").get(user) {
            return Some(t.clone());
        }
        for gw in &self.gateways {
            if let Ok(t) = gw.http.token(user, &[]).await {
                self.tokens.lock().expect("tokens lock").insert(user.to_string(), t.clone());
                return Some(t);
            }
            if Instant::now() > self.deadline {
                break;
            }
        }
        None
    }
}

fn value(event: &str, user: &str, node: usize) -> Value {
    Value {
        event: Some(event.to_string()),
        user: Some(user.to_string()),
        node: Some(node as u64 + 1),
        ..Value::default()
    }
}

/// A thread that only reads seat maps, always through gateway `thread`:
/// one per gateway, so every gateway is read from even while writes
/// through it hang (a cut-off gateway's answers are what a stale read
/// looks like).
async fn reader(shared: Arc<Shared>, thread: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(7_000_003).wrapping_add(thread));
    let node = thread as usize;
    let rec = Arc::clone(&shared.recorder);
    while Instant::now() < shared.deadline && rec.has_room() {
        let Some(event) = shared.events.pick(&mut rng) else { break };
        let ev = shared.events.ids[event].clone();
        let v = value(&ev, &format!("reader-{thread}"), node);
        rec.invoke(F::Read, thread, v.clone());
        match shared.gateways[node].seat_map(&ev).await {
            Reply::Ok(map) => {
                let mut done = v;
                done.seat_map = Some(map.seats);
                rec.complete(OpType::Ok, F::Read, thread, done, map.as_of_index, None);
            }
            Reply::Fail(e) | Reply::Info(e) => rec.complete(OpType::Fail, F::Read, thread, v, None, Some(e)),
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(THINK_MS_MIN..=THINK_MS_MAX))).await;
    }
}

/// Runs one worker thread of the workload until the deadline: a sequence
/// of logical processes. The first threads (one per gateway) only read.
pub(crate) async fn worker(shared: Arc<Shared>, thread: u64, seed: u64) {
    let readers = shared.gateways.len() as u64;
    if thread < readers {
        return reader(shared, thread, seed).await;
    }
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(thread));
    let mut process = thread;
    let mut user = format!("u{process}");
    let mut mine = Mine::default();
    let mut retry: Option<Retry> = None;
    let rec = Arc::clone(&shared.recorder);
    while Instant::now() < shared.deadline && rec.has_room() {
        let Some(token) = shared.token(&user).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Each thread keeps to one gateway: a gateway cut off by a partition
        // then stalls only its own threads, and the rest of the workload
        // (and the reads that show what the cut-off side serves) goes on.
        let node = (thread as usize) % shared.gateways.len();
        let gw = &shared.gateways[node];
        let mut unknown: Option<Retry> = None;
        if let Some(r) = retry.take() {
            match r {
                Retry::Hold { event, seats, key } => {
                    if shared.events.charge(event) {
                        unknown =
                            hold(&rec, gw, process, &user, &token, &shared.events, event, seats, key, node, &mut mine)
                                .await;
                    }
                }
                Retry::Confirm { event, hold, key } => {
                    if shared.events.charge(event) {
                        unknown = confirm(
                            &rec,
                            gw,
                            process,
                            &user,
                            &token,
                            &shared.events,
                            event,
                            hold,
                            key,
                            node,
                            &mut mine,
                        )
                        .await;
                    }
                }
            }
        } else {
            let Some(event) = shared.events.pick(&mut rng) else { break };
            let ev = shared.events.ids[event].clone();
            let mine_here: Vec<String> =
                mine.holds.iter().filter(|(e, _)| *e == event).map(|(_, h)| h.clone()).collect();
            let roll = rng.gen_range(0..100);
            let key = format!("{user}-{}", rng.gen::<u64>());
            if roll < 30 {
                let v = value(&ev, &user, node);
                rec.invoke(F::Read, process, v.clone());
                match gw.seat_map(&ev).await {
                    Reply::Ok(map) => {
                        let mut done = v;
                        done.seat_map = Some(map.seats);
                        rec.complete(OpType::Ok, F::Read, process, done, map.as_of_index, None);
                    }
                    Reply::Fail(e) => rec.complete(OpType::Fail, F::Read, process, v, None, Some(e)),
                    Reply::Info(e) => rec.complete(OpType::Fail, F::Read, process, v, None, Some(e)),
                }
            } else if roll < 38 {
                let v = value(&ev, &user, node);
                rec.invoke(F::Counts, process, v.clone());
                match gw.counts(&ev).await {
                    Reply::Ok(c) => {
                        let mut done = v;
                        done.counts = Some(c);
                        rec.complete(OpType::Ok, F::Counts, process, done, None, None);
                    }
                    Reply::Fail(e) | Reply::Info(e) => rec.complete(OpType::Fail, F::Counts, process, v, None, Some(e)),
                }
            } else if let (Some(h), true) = (mine_here.first(), roll < 75) {
                // Confirm about half the holds; release or let run out the rest.
                if roll < 55 {
                    unknown = confirm(
                        &rec,
                        gw,
                        process,
                        &user,
                        &token,
                        &shared.events,
                        event,
                        h.clone(),
                        key,
                        node,
                        &mut mine,
                    )
                    .await;
                } else {
                    let mut v = value(&ev, &user, node);
                    v.hold = Some(h.clone());
                    v.key = Some(key.clone());
                    rec.invoke(F::Release, process, v.clone());
                    let (r, index) = gw.release(&token, h, &key).await;
                    mine.holds.retain(|(_, x)| x != h);
                    match r {
                        Reply::Ok(()) => rec.complete(OpType::Ok, F::Release, process, v, index, None),
                        Reply::Fail(e) => rec.complete(OpType::Fail, F::Release, process, v, index, Some(e)),
                        Reply::Info(e) => {
                            rec.complete(OpType::Info, F::Release, process, v, index, Some(e));
                            unknown = Some(Retry::Hold { event, seats: Vec::new(), key: String::new() });
                        }
                    }
                }
            } else if let (Some((_, b)), true) = (mine.bookings.iter().find(|(e, _)| *e == event).cloned(), roll >= 88)
            {
                let mut v = value(&ev, &user, node);
                v.booking = Some(b.clone());
                v.key = Some(key.clone());
                rec.invoke(F::Cancel, process, v.clone());
                let (r, index) = gw.cancel(&token, &b, &key).await;
                mine.bookings.retain(|(_, x)| *x != b);
                match r {
                    Reply::Ok(()) => rec.complete(OpType::Ok, F::Cancel, process, v, index, None),
                    Reply::Fail(e) => rec.complete(OpType::Fail, F::Cancel, process, v, index, Some(e)),
                    Reply::Info(e) => {
                        rec.complete(OpType::Info, F::Cancel, process, v, index, Some(e));
                        unknown = Some(Retry::Hold { event, seats: Vec::new(), key: String::new() });
                    }
                }
            } else {
                let n = shared.events.seats.len();
                let count = rng.gen_range(1..=2.min(n));
                let first = rng.gen_range(0..n);
                let seats: Vec<String> = (0..count).map(|k| shared.events.seats[(first + k) % n].clone()).collect();
                unknown =
                    hold(&rec, gw, process, &user, &token, &shared.events, event, seats, key, node, &mut mine).await;
            }
        }
        if let Some(r) = unknown {
            // A process with an unknown outcome is done. Half the time its
            // successor (same user) retries the call with the same key.
            process = shared.next_process.fetch_add(1, Ordering::Relaxed);
            let retryable = match &r {
                Retry::Hold { seats, .. } => !seats.is_empty(),
                Retry::Confirm { .. } => true,
            };
            if retryable && rng.gen_bool(0.5) {
                retry = Some(r);
            } else {
                user = format!("u{process}");
                mine = Mine::default();
            }
        }
        // Think time keeps the rate near what the events were made for
        // (`CALLS_PER_SEC_PER_THREAD`), so faults meet a running workload.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(THINK_MS_MIN..=THINK_MS_MAX))).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn hold(
    rec: &Recorder,
    gw: &Endpoint,
    process: u64,
    user: &str,
    token: &str,
    events: &Events,
    event: usize,
    seats: Vec<String>,
    key: String,
    node: usize,
    mine: &mut Mine,
) -> Option<Retry> {
    let ev = &events.ids[event];
    let mut v = value(ev, user, node);
    v.seats = seats.clone();
    v.key = Some(key.clone());
    rec.invoke(F::Hold, process, v.clone());
    let (r, index) = gw.hold(token, ev, &seats, &key).await;
    match r {
        Reply::Ok(h) => {
            let mut done = v;
            done.hold = Some(h.hold.clone());
            done.expires_at_ms = h.expires_at_ms;
            rec.complete(OpType::Ok, F::Hold, process, done, index, None);
            mine.holds.retain(|(e, _)| *e != event);
            mine.holds.push((event, h.hold));
            None
        }
        Reply::Fail(e) => {
            rec.complete(OpType::Fail, F::Hold, process, v, index, Some(e));
            None
        }
        Reply::Info(e) => {
            rec.complete(OpType::Info, F::Hold, process, v, index, Some(e));
            Some(Retry::Hold { event, seats, key })
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn confirm(
    rec: &Recorder,
    gw: &Endpoint,
    process: u64,
    user: &str,
    token: &str,
    events: &Events,
    event: usize,
    hold: String,
    key: String,
    node: usize,
    mine: &mut Mine,
) -> Option<Retry> {
    let ev = &events.ids[event];
    let mut v = value(ev, user, node);
    v.hold = Some(hold.clone());
    v.key = Some(key.clone());
    rec.invoke(F::Confirm, process, v.clone());
    let (r, index) = gw.confirm(token, &hold, &key).await;
    mine.holds.retain(|(_, h)| *h != hold);
    match r {
        Reply::Ok(b) => {
            let mut done = v;
            done.booking = Some(b.booking.clone());
            done.seats = b.seats;
            rec.complete(OpType::Ok, F::Confirm, process, done, index, None);
            mine.bookings.push((event, b.booking));
            None
        }
        Reply::Fail(e) => {
            rec.complete(OpType::Fail, F::Confirm, process, v, index, Some(e));
            None
        }
        Reply::Info(e) => {
            rec.complete(OpType::Info, F::Confirm, process, v, index, Some(e));
            Some(Retry::Confirm { event, hold, key })
        }
    }
}

/// Waiting-room events and the users sent to each.
pub(crate) struct QueueEvents {
    pub(crate) ids: Vec<String>,
    pub(crate) seats: Vec<String>,
    /// Users that joined (or tried to), for the final rejoins: (event, user).
    pub(crate) joined: Mutex<Vec<(String, String)>>,
    next_user: AtomicUsize,
    users_per_event: usize,
}

impl QueueEvents {
    pub(crate) fn new(ids: Vec<String>, seats: Vec<String>, users_per_event: usize) -> QueueEvents {
        QueueEvents { ids, seats, joined: Mutex::new(Vec::new()), next_user: AtomicUsize::new(0), users_per_event }
    }

    /// The event the next user queues for, or `None` when all are spent.
    fn next(&self) -> Option<usize> {
        let n = self.next_user.fetch_add(1, Ordering::Relaxed) / self.users_per_event;
        (n < self.ids.len()).then_some(n)
    }
}

/// How long a queued user polls for admission before giving up.
const ADMISSION_WAIT: Duration = Duration::from_secs(20);
/// Pause between two status polls of one user.
const POLL_MS_MIN: u64 = 150;
/// Pause between two status polls of one user.
const POLL_MS_MAX: u64 = 350;

/// A waiting-room buyer after another through gateway `thread % n`: joins
/// an event's room (sometimes again at another gateway: the place must
/// not change), polls its status until admitted, then holds a seat with
/// the access token and confirms it. Joins, polls, holds and confirms all
/// go into the history; the fairness checker reads the first two, the seat
/// checkers the rest.
pub(crate) async fn queue_worker(shared: Arc<Shared>, queue: Arc<QueueEvents>, thread: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(9_000_011).wrapping_add(thread));
    let rec = Arc::clone(&shared.recorder);
    let n = shared.gateways.len();
    let node = thread as usize % n;
    let mut process = thread;
    'users: while Instant::now() < shared.deadline && rec.has_room() {
        let Some(event) = queue.next() else { break };
        let ev = queue.ids[event].clone();
        let user = format!("q{process}");
        let Some(token) = shared.token(&user).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        queue.joined.lock().expect("queue lock").push((ev.clone(), user.clone()));
        // Join; an unknown outcome ends the process, and its successor (the
        // same user) joins again at the next gateway.
        let mut at = node;
        let joined = loop {
            match join(&rec, &shared.gateways[at], process, &user, &token, &ev, at, false).await {
                Some(Reply::Ok(j)) => break j,
                Some(Reply::Fail(_)) => {
                    process = shared.next_process.fetch_add(1, Ordering::Relaxed);
                    continue 'users;
                }
                _ => {
                    process = shared.next_process.fetch_add(1, Ordering::Relaxed);
                    at = (at + 1) % n;
                    if Instant::now() > shared.deadline {
                        break 'users;
                    }
                }
            }
        };
        // A third join again elsewhere, to the same place.
        if rng.gen_bool(0.3) {
            let other = (at + 1 + rng.gen_range(0..n - 1)) % n;
            if !matches!(
                join(&rec, &shared.gateways[other], process, &user, &token, &ev, other, false).await,
                Some(Reply::Ok(_) | Reply::Fail(_))
            ) {
                process = shared.next_process.fetch_add(1, Ordering::Relaxed);
            }
        }
        let gw = &shared.gateways[at];
        let until = Instant::now() + ADMISSION_WAIT;
        let mut access = None;
        while access.is_none() && Instant::now() < until.min(shared.deadline) && rec.has_room() {
            let v = Value {
                event: Some(ev.clone()),
                user: Some(user.clone()),
                node: Some(at as u64 + 1),
                ..Value::default()
            };
            rec.invoke(F::QueueStatus, process, v.clone());
            match gw.queue_status(&token, &ev, &joined.queue_token).await {
                Reply::Ok(standing) => {
                    let mut done = v;
                    let state = match standing {
                        Standing::Waiting { position } => {
                            done.position = position;
                            "waiting"
                        }
                        Standing::Admitted { access_token } => {
                            access = Some(access_token);
                            "admitted"
                        }
                        Standing::Expired { position } => {
                            done.position = position;
                            "expired"
                        }
                    };
                    done.queue_state = Some(state.into());
                    rec.complete(OpType::Ok, F::QueueStatus, process, done, None, None);
                    if state == "expired" {
                        break;
                    }
                }
                Reply::Fail(e) => {
                    let sold_out = e == "sold_out";
                    rec.complete(OpType::Fail, F::QueueStatus, process, v, None, Some(e));
                    if sold_out {
                        break;
                    }
                }
                Reply::Info(e) => rec.complete(OpType::Fail, F::QueueStatus, process, v, None, Some(e)),
            }
            tokio::time::sleep(Duration::from_millis(rng.gen_range(POLL_MS_MIN..=POLL_MS_MAX))).await;
        }
        let Some(access) = access else {
            process = shared.next_process.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // Admitted: one seat, then pay for it.
        let seat = vec![queue.seats[rng.gen_range(0..queue.seats.len())].clone()];
        let mut v = value(&ev, &user, at);
        v.seats = seat.clone();
        let key = format!("{user}-hold");
        v.key = Some(key.clone());
        rec.invoke(F::Hold, process, v.clone());
        let (r, index) = gw.hold_admitted(&token, &ev, &seat, &key, &access).await;
        match r {
            Reply::Ok(h) => {
                let mut done = v;
                done.hold = Some(h.hold.clone());
                done.expires_at_ms = h.expires_at_ms;
                rec.complete(OpType::Ok, F::Hold, process, done, index, None);
                let mut v = value(&ev, &user, at);
                v.hold = Some(h.hold.clone());
                let key = format!("{user}-confirm");
                v.key = Some(key.clone());
                rec.invoke(F::Confirm, process, v.clone());
                let (r, index) = gw.confirm(&token, &h.hold, &key).await;
                match r {
                    Reply::Ok(b) => {
                        let mut done = v;
                        done.booking = Some(b.booking);
                        done.seats = b.seats;
                        rec.complete(OpType::Ok, F::Confirm, process, done, index, None);
                    }
                    Reply::Fail(e) => rec.complete(OpType::Fail, F::Confirm, process, v, index, Some(e)),
                    Reply::Info(e) => rec.complete(OpType::Info, F::Confirm, process, v, index, Some(e)),
                }
            }
            Reply::Fail(e) => rec.complete(OpType::Fail, F::Hold, process, v, index, Some(e)),
            Reply::Info(e) => rec.complete(OpType::Info, F::Hold, process, v, index, Some(e)),
        }
        // Every user gets a fresh process (an unknown outcome above ends it
        // anyway).
        process = shared.next_process.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(THINK_MS_MIN..=THINK_MS_MAX))).await;
    }
}

/// One join, recorded; `None` when the history is full.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn join(
    rec: &Recorder,
    gw: &Endpoint,
    process: u64,
    user: &str,
    token: &str,
    event: &str,
    node: usize,
    last: bool,
) -> Option<Reply<Joined>> {
    if !rec.has_room() {
        return None;
    }
    let v = Value { last, ..value(event, user, node) };
    rec.invoke(F::Join, process, v.clone());
    let r = gw.join_queue(token, event).await;
    match &r {
        Reply::Ok(j) => {
            let done = Value { position: j.position, ..v };
            rec.complete(OpType::Ok, F::Join, process, done, None, None);
        }
        Reply::Fail(e) => rec.complete(OpType::Fail, F::Join, process, v, None, Some(e.clone())),
        Reply::Info(e) => rec.complete(OpType::Info, F::Join, process, v, None, Some(e.clone())),
    }
    Some(r)
}

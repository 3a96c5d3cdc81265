//! One run: start (or target) a cluster, create the events, run the
//! workload while the nemesis injects faults, heal, make the final reads
//! and liveness probes, collect replica digests, check, and write the
//! report directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::api::{Endpoint, Gateway, Reply};
use crate::checker::{self, EventSetup, Observed, Setup, Verdict};
use crate::cluster::{Cluster, ClusterError, ClusterOptions};
use crate::history::{self, OpType, Value, F, NEMESIS_PROCESS};
use crate::nemesis::{self, Fault, Mix, Step, Target};
use crate::report;
use crate::workload::{self, Events, QueueEvents, Recorder, Shared};

/// Seats per event: few, so holds contend.
pub const EVENT_SEATS: u32 = 6;
/// Hold TTL of the workload's events: short, so holds expire during a run.
pub const HOLD_TTL_SECS: u64 = 3;
/// Calls per event before the workload moves to a fresh one (bounds each
/// linearizability search).
pub const EVENT_OPS_MAX: usize = 120;
/// Events open at once.
pub const EVENTS_LIVE: usize = 4;
/// Events made per run (at `EVENT_OPS_MAX` calls each).
pub const EVENTS_MAX: usize = 400;
/// Seats of a waiting-room event: more than its buyers, so rooms stay open.
pub const QUEUE_EVENT_SEATS: u32 = 40;
/// Buyers sent to one waiting-room event.
pub const QUEUE_USERS_PER_EVENT: usize = 30;
/// Waiting-room events made per run at most.
pub const QUEUE_EVENTS_MAX: usize = 40;
/// Threads of waiting-room buyers.
pub const QUEUE_THREADS: u64 = 3;
/// Admission rate of the waiting rooms (users per minute).
const QUEUE_ADMIT_PER_MINUTE: u32 = 240;
/// Shoppers let in at once per room.
const QUEUE_ACTIVE_MAX: u32 = 3;
/// Operations per run (history lines, invocations and completions).
pub const HISTORY_OPS_MAX: usize = 200_000;
/// How long a client call may take before its outcome is unknown.
const CALL_TIMEOUT: Duration = Duration::from_secs(6);
/// How long the cluster gets to become ready, at the start and after healing.
const READY_WAIT: Duration = Duration::from_secs(120);
/// How long all final reads may take together (retries included).
const FINAL_PHASE_MAX: Duration = Duration::from_secs(120);
/// How long all liveness probes may take together.
const PROBE_PHASE_MAX: Duration = Duration::from_secs(60);

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Nodes to start.
    pub nodes: u64,
    /// Workload duration.
    pub time_limit_secs: u64,
    /// Seed of the workload and the nemesis.
    pub seed: u64,
    /// The faults.
    pub mix: Mix,
    /// A planted bug for the self-test.
    pub plant: Option<String>,
    /// The `ticketd` binary.
    pub ticketd: PathBuf,
    /// Report directory (created).
    pub out: PathBuf,
    /// Gateways of an existing cluster (no processes are started, no
    /// faults injected; dev-mode tokens are needed).
    pub existing: Option<Vec<String>>,
    /// Concurrent workload threads.
    pub threads: u64,
    /// How partitions are made (namespaces need root).
    pub net: crate::cluster::NetMode,
    /// Time the linearizability search may take.
    pub check_secs_max: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl RunOptions {
    /// Defaults: 5 nodes, 60 s, the `all` mix.
    pub fn new(ticketd: PathBuf, out: PathBuf) -> RunOptions {
        RunOptions {
            nodes: 5,
            time_limit_secs: 60,
            seed: 1,
            mix: Mix::All,
            plant: None,
            ticketd,
            out,
            existing: None,
            threads: 10,
            net: crate::cluster::NetMode::default_for_user(),
            check_secs_max: 120,
            progress: true,
        }
    }
}

/// Errors that stop a run before it can be checked.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster could not be started or driven.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The cluster never became ready, or setup calls failed.
    #[error("setup: {0}")]
    Setup(String),
    /// The report could not be written.
    #[error("report: {0}")]
    Report(#[from] std::io::Error),
}

/// What a run found.
#[derive(Debug)]
pub struct RunOutcome {
    /// The checkers' verdict.
    pub verdict: Verdict,
    /// The report directory.
    pub dir: PathBuf,
    /// Client calls made.
    pub calls: usize,
}

/// A fault that ran, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct FaultPeriod {
    /// Fault name.
    pub name: String,
    /// Start and end, ms since the run started.
    pub from_ms: u64,
    /// End.
    pub to_ms: u64,
    /// Nodes hit.
    pub nodes: Vec<u64>,
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Runs one test and writes its report.
pub fn run(opts: &RunOptions) -> Result<RunOutcome, RunError> {
    std::fs::create_dir_all(&opts.out)?;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().map_err(RunError::Report)?;
    let mut cluster = match &opts.existing {
        Some(_) => None,
        None => Some(Cluster::start(ClusterOptions {
            nodes: opts.nodes,
            ticketd: opts.ticketd.clone(),
            dir: opts.out.join("cluster"),
            net: opts.net,
            plant: opts.plant.clone(),
        })?),
    };
    let urls = match (&opts.existing, &cluster) {
        (Some(list), _) => list.clone(),
        (None, Some(c)) => c.gateways(),
        (None, None) => unreachable!("a cluster or an address list"),
    };
    let result = rt.block_on(drive(opts, &urls, cluster.as_mut()));
    if let Some(c) = cluster.as_mut() {
        c.stop();
    }
    let (ops, setup, faults, observed) = result?;
    let calls = history::pair(&ops).map_err(|e| RunError::Setup(format!("the recorded history is malformed: {e}")))?;
    let verdict = checker::check_all(&calls, &setup, &observed, opts.check_secs_max);
    let logs = cluster.as_ref().map(|c| c.logs()).unwrap_or_default();
    std::fs::create_dir_all(&opts.out)?;
    let observed_json = serde_json::to_string_pretty(&observed).map_err(std::io::Error::from)?;
    std::fs::write(opts.out.join("observed.json"), observed_json)?;
    report::write(&opts.out, &ops, &calls, &setup, &faults, &verdict, &logs, opts)?;
    drop(cluster);
    Ok(RunOutcome { verdict, dir: opts.out.clone(), calls: calls.len() })
}

/// Checks the history of an earlier run's report directory again (after
/// a checker changed, or with another time budget).
pub fn recheck(dir: &std::path::Path, check_secs_max: u64) -> Result<Verdict, RunError> {
    let bad = |e: String| RunError::Setup(format!("{}: {e}", dir.display()));
    let file = std::fs::File::open(dir.join("history.jsonl"))?;
    let ops = history::read_jsonl(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let calls = history::pair(&ops).map_err(|e| bad(e.to_string()))?;
    let setup: Setup =
        serde_json::from_str(&std::fs::read_to_string(dir.join("setup.json"))?).map_err(|e| bad(e.to_string()))?;
    let observed: Observed = match std::fs::read_to_string(dir.join("observed.json")) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?,
        Err(_) => Observed::default(),
    };
    Ok(checker::check_all(&calls, &setup, &observed, check_secs_max))
}

type Driven = (Vec<history::Op>, Setup, Vec<FaultPeriod>, Observed);

async fn wait_ready(gateways: &[Endpoint], timeout: Duration) -> Result<(), RunError> {
    let deadline = Instant::now() + timeout;
    for gw in gateways {
        while !gw.http.ready().await {
            if Instant::now() > deadline {
                return Err(RunError::Setup(format!("{} not ready after {timeout:?}", gw.http.base())));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Retries a setup call on every gateway in turn until it succeeds.
async fn retry<T, Fut: std::future::Future<Output = Result<T, crate::api::ApiError>>>(
    gateways: &[Endpoint],
    what: &str,
    mut f: impl FnMut(Endpoint) -> Fut,
) -> Result<T, RunError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    for k in 0.. {
        match f(gateways[k % gateways.len()].clone()).await {
            Ok(v) => return Ok(v),
            Err(e) => last = e.to_string(),
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(RunError::Setup(format!("{what}: {last}")))
}

async fn drive(opts: &RunOptions, urls: &[String], mut cluster: Option<&mut Cluster>) -> Result<Driven, RunError> {
    let gateways: Vec<Endpoint> = urls.iter().map(|u| Endpoint::new(u.clone(), CALL_TIMEOUT)).collect();
    wait_ready(&gateways, READY_WAIT).await?;
    let admin =
        retry(&gateways, "admin token", |g| async move { g.http.token("jepsen-admin", &["admin"]).await }).await?;
    let tag = format!("{:x}", opts.seed ^ wall_ms());
    let venue = {
        let admin = admin.clone();
        let name = format!("jepsen-{tag}");
        retry(&gateways, "venue", move |g| {
            let (admin, name) = (admin.clone(), name.clone());
            async move { g.http.create_venue(&admin, &name, 1, EVENT_SEATS).await }
        })
        .await?
    };
    // Enough events for the run at a generous rate, plus the probe event.
    let calls = opts.time_limit_secs * (opts.threads + urls.len() as u64) * workload::CALLS_PER_SEC_PER_THREAD;
    let events_total = (calls as usize / EVENT_OPS_MAX + EVENTS_LIVE + 2).min(EVENTS_MAX);
    let mut ids = Vec::new();
    for i in 0..=events_total {
        let (admin, venue, title) = (admin.clone(), venue.clone(), format!("jepsen-{tag}-{i}"));
        ids.push(
            retry(&gateways, "event", move |g| {
                let (admin, venue, title) = (admin.clone(), venue.clone(), title.clone());
                async move { g.http.create_event(&admin, &venue, &title, HOLD_TTL_SECS).await }
            })
            .await?,
        );
    }
    let probe_event = ids.pop().expect("the probe event");
    // Waiting rooms: a venue of their own (more seats), an event per batch
    // of buyers.
    let queue_venue = {
        let admin = admin.clone();
        let name = format!("jepsen-{tag}-queue");
        retry(&gateways, "queue venue", move |g| {
            let (admin, name) = (admin.clone(), name.clone());
            async move { g.http.create_venue(&admin, &name, 1, QUEUE_EVENT_SEATS).await }
        })
        .await?
    };
    // A buyer takes about two seconds (join, a few polls, hold, confirm).
    let queue_users = opts.time_limit_secs as usize * QUEUE_THREADS as usize / 2 + QUEUE_USERS_PER_EVENT;
    let mut queue_ids = Vec::new();
    for i in 0..(queue_users / QUEUE_USERS_PER_EVENT + 1).min(QUEUE_EVENTS_MAX) {
        let (admin, venue, title) = (admin.clone(), queue_venue.clone(), format!("jepsen-{tag}-queue-{i}"));
        queue_ids.push(
            retry(&gateways, "queue event", move |g| {
                let (admin, venue, title) = (admin.clone(), venue.clone(), title.clone());
                async move {
                    g.http
                        .create_queued_event(
                            &admin,
                            &venue,
                            &title,
                            HOLD_TTL_SECS,
                            QUEUE_ADMIT_PER_MINUTE,
                            QUEUE_ACTIVE_MAX,
                        )
                        .await
                }
            })
            .await?,
        );
    }
    let queue_seats: Vec<String> = match gateways[0].seat_map(&queue_ids[0]).await {
        Reply::Ok(m) => m.seats.keys().cloned().collect(),
        _ => return Err(RunError::Setup("reading the first waiting-room event's seats".into())),
    };
    let seats: Vec<String> = match gateways[0].seat_map(&ids[0]).await {
        Reply::Ok(m) => m.seats.keys().cloned().collect(),
        _ => return Err(RunError::Setup("reading the first event's seats".into())),
    };
    let (fwd, back) = opts.mix.clock_skew_ms();
    let setup = Setup {
        start_epoch_ms: 0,
        events: ids
            .iter()
            .map(|e| EventSetup { event: e.clone(), seats: seats.clone(), ttl_ms: HOLD_TTL_SECS * 1000 })
            .chain(queue_ids.iter().map(|e| EventSetup {
                event: e.clone(),
                seats: queue_seats.clone(),
                ttl_ms: HOLD_TTL_SECS * 1000,
            }))
            .collect(),
        clock_fwd_ms_max: fwd,
        clock_back_ms_max: back,
    };

    // The run proper. Time 0 of the history is now.
    let start = Instant::now();
    let start_epoch_ms = wall_ms();
    let setup = Setup { start_epoch_ms, ..setup };
    let recorder = Arc::new(Recorder::new(start, HISTORY_OPS_MAX));
    let deadline = start + Duration::from_secs(opts.time_limit_secs);
    let shared = Arc::new(Shared {
        gateways: gateways.clone(),
        tokens: Mutex::new(BTreeMap::new()),
        events: Events::new(ids.clone(), seats.clone(), EVENTS_LIVE, EVENT_OPS_MAX),
        recorder: Arc::clone(&recorder),
        next_process: AtomicU64::new(opts.threads + gateways.len() as u64 + QUEUE_THREADS),
        deadline,
    });
    let queue = Arc::new(QueueEvents::new(queue_ids, queue_seats, QUEUE_USERS_PER_EVENT));
    // One reader per gateway, then the writers, then the waiting-room buyers.
    let threads = opts.threads + gateways.len() as u64;
    let mut workers: Vec<_> =
        (0..threads).map(|t| tokio::spawn(workload::worker(Arc::clone(&shared), t, opts.seed))).collect();
    workers.extend(
        (threads..threads + QUEUE_THREADS)
            .map(|t| tokio::spawn(workload::queue_worker(Arc::clone(&shared), Arc::clone(&queue), t, opts.seed))),
    );
    let can_partition = cluster.as_ref().is_some_and(|c| c.can_partition());
    let steps = if cluster.is_some() {
        nemesis::schedule(opts.seed, opts.mix, opts.time_limit_secs * 1000, can_partition)
    } else {
        Vec::new()
    };
    let bar = progress_bar(opts);
    let mut faults = Vec::new();
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x7461_7267_6574);
    let mut next = 0usize;
    let mut active: Option<(Step, Vec<u64>, u64)> = None;
    while Instant::now() < deadline {
        let t = start.elapsed().as_millis() as u64;
        if let Some(b) = &bar {
            b.set_position(t / 1000);
            b.set_message(format!("{} ops", recorder.len() / 2));
        }
        if let Some(c) = cluster.as_deref_mut() {
            c.reap();
            if let Some((step, nodes, from)) = &active {
                if let Fault::ClockStrobe { delta_ms, period_ms, .. } = step.fault {
                    let on = (t.saturating_sub(*from) / period_ms.max(1)) % 2 == 0;
                    for n in nodes {
                        c.set_clock(*n, if on { delta_ms } else { 0 })?;
                    }
                }
                if t >= step.at_ms + step.for_ms {
                    let (step, mut nodes, from) = active.take().expect("an active fault");
                    if step.fault == Fault::Membership {
                        nodes.extend(replace_nodes(c, &gateways, &admin, &nodes).await?);
                    }
                    end_fault(c, &step.fault, &nodes)?;
                    recorder.invoke(
                        F::Nemesis,
                        NEMESIS_PROCESS,
                        nemesis_value(&format!("stop {}", step.fault.name()), &nodes),
                    );
                    recorder.complete(
                        OpType::Ok,
                        F::Nemesis,
                        NEMESIS_PROCESS,
                        nemesis_value(&step.fault.name(), &nodes),
                        None,
                        None,
                    );
                    faults.push(FaultPeriod { name: step.fault.name(), from_ms: from, to_ms: t, nodes });
                }
            }
            if active.is_none() && next < steps.len() && t >= steps[next].at_ms {
                let step = steps[next].clone();
                next += 1;
                let leader = leader(&gateways, &admin).await;
                let nodes = if step.fault == Fault::Membership {
                    remove_node(c, &gateways, &admin, &mut rng, leader).await
                } else {
                    start_fault(c, &step.fault, &mut rng, leader)?
                };
                recorder.invoke(
                    F::Nemesis,
                    NEMESIS_PROCESS,
                    nemesis_value(&format!("start {}", step.fault.name()), &nodes),
                );
                recorder.complete(
                    OpType::Ok,
                    F::Nemesis,
                    NEMESIS_PROCESS,
                    nemesis_value(&step.fault.name(), &nodes),
                    None,
                    None,
                );
                active = Some((step, nodes, start.elapsed().as_millis() as u64));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Heal, let the workload's calls in flight finish, then the final reads.
    if let Some(c) = cluster.as_deref_mut() {
        if let Some((step, mut nodes, from)) = active.take() {
            if step.fault == Fault::Membership {
                nodes.extend(replace_nodes(c, &gateways, &admin, &nodes).await?);
            }
            end_fault(c, &step.fault, &nodes)?;
            faults.push(FaultPeriod {
                name: step.fault.name(),
                from_ms: from,
                to_ms: start.elapsed().as_millis() as u64,
                nodes,
            });
        }
        c.heal_all()?;
        recorder.invoke(F::Nemesis, NEMESIS_PROCESS, nemesis_value("heal", &[]));
        recorder.complete(OpType::Ok, F::Nemesis, NEMESIS_PROCESS, nemesis_value("heal", &[]), None, None);
    }
    for w in workers {
        let _ = w.await;
    }
    if let Some(b) = &bar {
        b.set_message("final reads");
    }
    // A cluster that does not come back is a finding (liveness), not an
    // error of the run: the final reads and probes record the failures.
    if let Err(e) = wait_ready(&gateways, READY_WAIT).await {
        eprintln!("jepsen: after healing: {e}");
    }
    let final_deadline = Instant::now() + FINAL_PHASE_MAX;
    final_reads(&shared, &queue, &gateways, final_deadline).await;
    probes(&shared, &gateways, &probe_event, &seats, final_deadline + PROBE_PHASE_MAX).await;
    let mut observed = Observed::default();
    if let Some(c) = cluster {
        settle(&gateways, &admin).await;
        // The sweep loop samples digests every 200 ms.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        c.reap();
        observed.digests = Some(c.digests());
        observed.crashes = c.crashes();
    }
    if let Some(b) = bar {
        b.finish_with_message("checking");
    }
    Ok((recorder.take(), setup, faults, observed))
}

fn progress_bar(opts: &RunOptions) -> Option<indicatif::ProgressBar> {
    if !opts.progress {
        return None;
    }
    let bar = indicatif::ProgressBar::new(opts.time_limit_secs);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} s {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{:?}{}", opts.mix, opts.plant.as_deref().map(|p| format!(" +{p}")).unwrap_or_default()));
    Some(bar)
}

fn nemesis_value(fault: &str, nodes: &[u64]) -> Value {
    Value { fault: Some(fault.to_string()), nodes: nodes.to_vec(), ..Value::default() }
}

/// The group's leader as the cluster view says, if any gateway answers.
async fn leader(gateways: &[Endpoint], admin: &str) -> Option<u64> {
    for gw in gateways {
        if let Some(v) = gw.http.cluster(admin).await {
            if let Some(l) = v["groups"][0]["leader"].as_u64() {
                return Some(l);
            }
        }
    }
    None
}

fn start_fault(c: &mut Cluster, fault: &Fault, rng: &mut StdRng, leader: Option<u64>) -> Result<Vec<u64>, RunError> {
    let ids = c.ids();
    Ok(match fault {
        Fault::Partition { kind } => {
            let g = nemesis::grudges(rng, *kind, &ids, leader);
            c.partition(&g)?;
            g.iter().filter(|(_, d)| !d.is_empty()).map(|(n, _)| *n).collect()
        }
        Fault::Kill { target } => {
            let t = nemesis::targets(rng, *target, &ids, leader);
            t.iter().for_each(|n| c.kill(*n));
            t
        }
        Fault::Pause { target } => {
            let t = nemesis::targets(rng, *target, &ids, leader);
            t.iter().for_each(|n| c.pause(*n));
            t
        }
        Fault::ClockBump { target, delta_ms } => {
            let t = nemesis::targets(rng, *target, &ids, leader);
            for (k, n) in t.iter().enumerate() {
                // Every node of an "all" bump gets its own skew.
                let d = if *target == Target::All { delta_ms * (k as i64 + 1) } else { *delta_ms };
                c.set_clock(*n, d)?;
            }
            t
        }
        Fault::ClockStrobe { target, .. } => nemesis::targets(rng, *target, &ids, leader),
        // Done by `remove_node` over the admin API.
        Fault::Membership => Vec::new(),
    })
}

fn end_fault(c: &mut Cluster, fault: &Fault, nodes: &[u64]) -> Result<(), RunError> {
    match fault {
        Fault::Partition { .. } => c.heal_network()?,
        Fault::Kill { .. } => {
            for n in nodes {
                c.restart(*n)?;
            }
        }
        Fault::Pause { .. } => nodes.iter().for_each(|n| c.resume(*n)),
        Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => {
            for n in nodes {
                c.set_clock(*n, 0)?;
            }
        }
        Fault::Membership => {}
    }
    Ok(())
}

/// Removes a node other than the leader from the voters (through every
/// gateway in turn until one answers); returns it, or nothing if no gateway
/// would.
async fn remove_node(
    c: &Cluster,
    gateways: &[Endpoint],
    admin: &str,
    rng: &mut StdRng,
    leader: Option<u64>,
) -> Vec<u64> {
    let others: Vec<u64> = c.ids().into_iter().filter(|n| Some(*n) != leader).collect();
    let Some(&node) = nemesis::targets(rng, Target::One, &others, None).first() else { return Vec::new() };
    for gw in gateways {
        if gw.http.cluster_op(admin, reqwest::Method::DELETE, &format!("/v1/admin/cluster/nodes/{node}"), None).await {
            return vec![node];
        }
    }
    Vec::new()
}

/// Replaces each removed node with a fresh one in its place (a removed id
/// never rejoins) and adds it as a voter of the group; returns the new ids.
async fn replace_nodes(
    c: &mut Cluster,
    gateways: &[Endpoint],
    admin: &str,
    removed: &[u64],
) -> Result<Vec<u64>, RunError> {
    let mut added = Vec::new();
    for &node in removed {
        let fresh = c.replace(node)?;
        let body = serde_json::json!({"node_id": fresh, "addr": c.grpc_addr(fresh)});
        for gw in gateways {
            if gw.http.cluster_op(admin, reqwest::Method::POST, "/v1/admin/cluster/nodes", Some(body.clone())).await {
                break;
            }
        }
        added.push(fresh);
    }
    Ok(added)
}

/// Final linearizable reads after healing: every event's seat map, every
/// user's bookings. Each is retried until it succeeds or the phase's
/// deadline passes; only the last attempt is recorded.
async fn final_reads(shared: &Shared, queue: &QueueEvents, gateways: &[Endpoint], deadline: Instant) {
    let rec = &shared.recorder;
    let process = NEMESIS_PROCESS - 1;
    // Every buyer that tried to join a waiting room joins again: the place
    // is durable, so it must be the one first given.
    let joined = queue.joined.lock().expect("queue lock").clone();
    for (k, (ev, user)) in joined.iter().enumerate() {
        let Some(token) = shared.token(user).await else { continue };
        loop {
            let at = k % gateways.len();
            match workload::join(rec, &gateways[at], process, user, &token, ev, at, true).await {
                None | Some(Reply::Ok(_) | Reply::Fail(_)) => break,
                Some(Reply::Info(_)) if Instant::now() > deadline => break,
                Some(Reply::Info(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    for ev in shared.events.ids.iter().chain(&queue.ids) {
        let v = Value { event: Some(ev.clone()), last: true, ..Value::default() };
        rec.invoke(F::Read, process, v.clone());
        let mut k = 0;
        loop {
            match gateways[k % gateways.len()].seat_map(ev).await {
                Reply::Ok(map) => {
                    let mut done = v.clone();
                    done.seat_map = Some(map.seats);
                    rec.complete(OpType::Ok, F::Read, process, done, map.as_of_index, None);
                    break;
                }
                Reply::Fail(e) | Reply::Info(e) if Instant::now() > deadline => {
                    rec.complete(OpType::Fail, F::Read, process, v.clone(), None, Some(e));
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
            k += 1;
        }
    }
    let users: Vec<(String, String)> =
        shared.tokens.lock().expect("tokens lock").iter().map(|(u, t)| (u.clone(), t.clone())).collect();
    for (user, token) in users {
        let v = Value { user: Some(user.clone()), last: true, ..Value::default() };
        rec.invoke(F::Bookings, process, v.clone());
        let mut k = 0;
        loop {
            match gateways[k % gateways.len()].bookings(&token).await {
                Reply::Ok(list) => {
                    let mut done = v.clone();
                    done.bookings = Some(list);
                    rec.complete(OpType::Ok, F::Bookings, process, done, None, None);
                    break;
                }
                Reply::Fail(e) | Reply::Info(e) if Instant::now() > deadline => {
                    rec.complete(OpType::Fail, F::Bookings, process, v.clone(), None, Some(e));
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
            k += 1;
        }
    }
}

/// Liveness after healing: through every gateway, a hold and its
/// confirmation on the probe event succeed before the deadline.
async fn probes(shared: &Shared, gateways: &[Endpoint], event: &str, seats: &[String], deadline: Instant) {
    let rec = &shared.recorder;
    for (i, gw) in gateways.iter().enumerate() {
        let process = NEMESIS_PROCESS - 2 - i as u64;
        let user = format!("probe-{i}");
        let v = Value {
            node: Some(i as u64 + 1),
            user: Some(user.clone()),
            event: Some(event.to_string()),
            ..Value::default()
        };
        rec.invoke(F::Probe, process, v.clone());
        let seat = vec![seats[i % seats.len()].clone()];
        let mut last = String::from("no attempt");
        let mut ok = false;
        while Instant::now() < deadline && !ok {
            let Ok(token) = gw.http.token(&user, &[]).await else {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            };
            match gw.hold(&token, event, &seat, &format!("{user}-hold")).await.0 {
                Reply::Ok(h) => match gw.confirm(&token, &h.hold, &format!("{user}-confirm")).await.0 {
                    Reply::Ok(_) => ok = true,
                    Reply::Fail(e) | Reply::Info(e) => last = format!("confirm: {e}"),
                },
                Reply::Fail(e) | Reply::Info(e) => last = format!("hold: {e}"),
            }
            if !ok {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        if ok {
            rec.complete(OpType::Ok, F::Probe, process, v, None, None);
        } else {
            rec.complete(OpType::Fail, F::Probe, process, v, None, Some(last));
        }
    }
}

/// Waits (up to 30 s) until every node reports the same applied index.
async fn settle(gateways: &[Endpoint], admin: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(v) = gateways[0].http.cluster(admin).await {
            let applied: Vec<u64> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["groups"][0]["applied_index"].as_u64())
                .collect();
            if applied.len() == gateways.len() && applied.windows(2).all(|w| w[0] == w[1]) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

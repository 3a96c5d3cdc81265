//! Committed seat-holds per second through a three-replica group on this
//! machine, with every append synced, at rising client concurrency.
//!
//! Three `RaftNode`s run in this process on loopback, each with its own
//! RocksDB and gRPC server; replication crosses real sockets. Clients call
//! the leader's `propose` directly (no gateway hop). Each hold takes one
//! seat for a new user, so no request conflicts with another.
//!
//! `cargo bench -p raft --bench replicated` (seconds per level:
//! `REPLICATED_SECS`, default 5; log entries between snapshots:
//! `REPLICATED_SNAPSHOT_LOGS`, default the node's; commands per entry at
//! most: `REPLICATED_ENTRY_COMMANDS`, default the node's, 1 for no
//! batching; entries in flight at most: `REPLICATED_INFLIGHT`, default the
//! node's).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::{NodeConfig, PeerNode, RaftNode};
use statemachine::*;

const GROUP: u64 = 1;
const EVENTS: u64 = 12;
const ROWS: u32 = 200;
const SEATS_PER_ROW: u32 = 500;

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn ok(node: &RaftNode, request: &str, op: Op) -> Outcome {
    node.propose(GROUP, Command::new("bench", request, op)).await.unwrap().result.unwrap()
}

fn main() {
    let secs: u64 = std::env::var("REPLICATED_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let snapshot_logs: Option<u64> = std::env::var("REPLICATED_SNAPSHOT_LOGS").ok().and_then(|s| s.parse().ok());
    let entry_commands: Option<usize> = std::env::var("REPLICATED_ENTRY_COMMANDS").ok().and_then(|s| s.parse().ok());
    let inflight: Option<usize> = std::env::var("REPLICATED_INFLIGHT").ok().and_then(|s| s.parse().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let dir = tempfile::TempDir::new().unwrap();
        let addrs: Vec<_> = (0..3).map(|_| free_addr()).collect();
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let mut c = NodeConfig::new(i as u64 + 1, *addr, dir.path().join(format!("n{i}")), "bench-secret");
            c.sweep_interval_ms = 60_000;
            c.limits.holds_live_max = 10_000_000;
            c.limits.dedup_entries_max = 5_000_000;
            if let Some(logs) = snapshot_logs {
                c.snapshot_logs_since_last = logs;
            }
            if let Some(commands) = entry_commands {
                c.batching.entry_commands_max = commands;
            }
            if let Some(entries) = inflight {
                c.batching.entries_inflight_max = entries;
            }
            let node = RaftNode::start(c).await.unwrap();
            node.open_group(GROUP).await.unwrap();
            nodes.push(node);
        }
        let members: BTreeMap<u64, PeerNode> =
            addrs.iter().enumerate().map(|(i, a)| (i as u64 + 1, PeerNode { addr: a.to_string() })).collect();
        nodes[0].initialize(GROUP, members).await.unwrap();
        let leader = loop {
            if let Some(id) = nodes[0].leader(GROUP).unwrap() {
                break Arc::clone(&nodes[id as usize - 1]);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let venue = match ok(
            &leader,
            "venue",
            Op::CreateVenue(VenueSpec {
                name: "Bench Stadium".into(),
                city: "Pune".into(),
                region: "ap-south".into(),
                sections: vec![SectionSpec {
                    name: "S".into(),
                    category: "regular".into(),
                    rows: (1..=ROWS).map(|r| RowSpec { label: r.to_string(), seats: SEATS_PER_ROW }).collect(),
                }],
                blocked_seats: vec![],
                accessible_seats: vec![],
            }),
        )
        .await
        {
            Outcome::VenueCreated { venue, .. } => venue,
            o => panic!("{o:?}"),
        };
        let mut events = Vec::new();
        for e in 0..EVENTS {
            let spec = EventSpec {
                venue,
                title: format!("Bench {e}"),
                kind: EventKind::Concert,
                starts_at_ms: now_ms() + 86_400_000,
                genre: "rock".into(),
                language: "en".into(),
                currency: "INR".into(),
                prices: vec![("regular".into(), 1_000)],
                sale_opens_at_ms: now_ms() - 1_000,
                sale_closes_at_ms: None,
                max_seats_per_hold: None,
                hold_ttl_secs: Some(3_600),
                refund_policy: None,
                waiting_room: None,
            };
            match ok(&leader, &format!("event{e}"), Op::CreateEvent(spec)).await {
                Outcome::EventCreated { event } => events.push(event),
                o => panic!("{o:?}"),
            }
        }
        let events = Arc::new(events);
        let next = Arc::new(AtomicU64::new(0));
        let seats_per_event = u64::from(ROWS * SEATS_PER_ROW);
        let every =
            snapshot_logs.unwrap_or(NodeConfig::new(1, addrs[0], dir.path().into(), "").snapshot_logs_since_last);
        let batch = entry_commands.unwrap_or(raft::Batching::default().entry_commands_max);
        let inflight = inflight.unwrap_or(raft::Batching::default().entries_inflight_max);
        println!(
            "three replicas, syncs on, {secs} s per level, a snapshot every {every} entries, \
             up to {batch} commands per entry and {inflight} entries in flight; clients call the leader directly"
        );
        println!("| clients | committed holds/s | p50 ms | p99 ms | entries per sync | holds per entry |");
        println!("|---|---|---|---|---|---|");
        for clients in [1usize, 64, 1024] {
            let stats = leader.flush_stats();
            let (syncs0, entries0) = (stats.syncs.load(Ordering::Relaxed), stats.entries.load(Ordering::Relaxed));
            let deadline = Instant::now() + Duration::from_secs(secs);
            let started = Instant::now();
            let mut tasks = Vec::new();
            let failed = Arc::new(AtomicU64::new(0));
            for _ in 0..clients {
                let (leader, events, next) = (Arc::clone(&leader), Arc::clone(&events), Arc::clone(&next));
                let failed = Arc::clone(&failed);
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let event = events[(n / seats_per_event) as usize % events.len()];
                        let seat = n % seats_per_event;
                        let label = format!(
                            "S-{}-{}",
                            seat / u64::from(SEATS_PER_ROW) + 1,
                            seat % u64::from(SEATS_PER_ROW) + 1
                        );
                        let user = format!("u{n}");
                        let op = Op::Hold { event, user: user.clone(), selection: Selection::Seats(vec![label]) };
                        let t = Instant::now();
                        let applied = match leader.propose(GROUP, Command::new(user, "h", op)).await {
                            Ok(applied) => applied,
                            // Overload can cost the leader its term (a
                            // follower's election timeout expires): count
                            // it, and keep going as long as the level runs.
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                if failed.load(Ordering::Relaxed) == 1 {
                                    eprintln!("a proposal failed: {e}");
                                }
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        };
                        assert!(matches!(applied.result, Ok(Outcome::Held(_))), "{applied:?}");
                        latencies.push(t.elapsed());
                    }
                    latencies
                }));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            let elapsed = started.elapsed().as_secs_f64();
            let failed = failed.load(Ordering::Relaxed);
            if failed > 0 {
                eprintln!(
                    "{clients} clients: {failed} proposals failed (a leader change); the row counts committed ones"
                );
            }
            latencies.sort();
            let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
            let syncs = stats.syncs.load(Ordering::Relaxed) - syncs0;
            let entries = stats.entries.load(Ordering::Relaxed) - entries0;
            println!(
                "| {clients} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} |",
                latencies.len() as f64 / elapsed,
                pct(0.50).as_secs_f64() * 1e3,
                pct(0.99).as_secs_f64() * 1e3,
                entries as f64 / syncs.max(1) as f64,
                latencies.len() as f64 / entries.max(1) as f64
            );
        }
        for node in &nodes {
            node.shutdown().await;
        }
    });
}

//! `ticketd run`: a node with the storage role, the gateway role, or both.
//!
//! Start-up: open the node's RocksDB and start its gRPC server, open a
//! replica of every hosted region group, and (on the bootstrap node)
//! initialize groups that never were, load the demo catalog and spread the
//! leaders. Shutdown (SIGTERM/SIGINT): stop accepting HTTP, let requests in
//! flight finish, stop the background loops, then stop Raft, which flushes
//! the log and closes the database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use raft::{ClusterClient, NodeConfig, PeerNode, RaftNode};
use statemachine::{Applied, Command, Millis, State};

use crate::config::{decode_seed, Config};
use crate::gateway::auth::Auth;
use crate::gateway::payments_http::provider_from_config;
use crate::gateway::tickets::TicketSigner;
use crate::gateway::{self, Gateway, GatewaySettings};
use crate::shard::Shard;

/// How long a bootstrap step waits for a group to elect a leader.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// Runs the node until `stop` resolves.
pub async fn run(config: Config, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    // Latencies as histograms (buckets in seconds), not summaries, so they
    // aggregate across nodes.
    let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()), &buckets)
        .and_then(|b| b.install_recorder())
        .ok();
    let peers = config.peers();
    let secret = config.cluster.secret.clone();

    let node = match &config.storage {
        Some(storage) => {
            let mut nc =
                NodeConfig::new(config.node.id, storage.grpc_listen, config.node.data_dir.join("raft"), &secret);
            nc.heartbeat_ms = storage.heartbeat_ms;
            nc.election_timeout_ms_min = storage.election_timeout_ms;
            nc.election_timeout_ms_max = storage.election_timeout_ms * 2;
            nc.sweep_interval_ms = storage.sweep_interval_ms;
            nc.snapshot_logs_since_last = storage.snapshot_logs_since_last;
            nc.batching.entry_commands_max = storage.entry_commands_max;
            nc.batching.entries_inflight_max = storage.entries_inflight_max;
            let node = RaftNode::start(nc)
                .await
                .with_context(|| format!("starting the storage role on {}", storage.grpc_listen))?;
            for (region, group) in config.hosted_regions() {
                node.open_group(group).await.with_context(|| format!("opening region group {region} ({group})"))?;
            }
            // Groups added at run time are not in the file: reopen whatever
            // the storage holds.
            for group in node.stored_groups()? {
                node.open_group(group).await.with_context(|| format!("reopening group {group}"))?;
            }
            tracing::info!(node = config.node.id, addr = %storage.grpc_listen, "storage role up");
            Some(node)
        }
        None => None,
    };

    let client =
        ClusterClient::new(peers.values().cloned().collect(), &secret, Duration::from_secs(2), Duration::from_secs(5));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();

    if let (Some(node), Some(storage)) = (&node, &config.storage) {
        tasks.push(tokio::spawn(report_groups(Arc::clone(node), config.cluster.regions.clone(), stop_rx.clone())));
        if storage.bootstrap {
            let (node, client, config) = (Arc::clone(node), client.clone(), config.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = bootstrap(&node, &client, &config).await {
                    tracing::error!("bootstrap failed: {e:#}");
                }
            }));
        }
    }

    let http = match &config.gateway {
        Some(g) => {
            let seed = decode_seed(&g.ticket_key_seed).expect("validated");
            let budget = Duration::from_millis(g.cluster_budget_ms);
            let gw_client =
                ClusterClient::new(peers.values().cloned().collect(), &secret, Duration::from_secs(2), budget);
            if g.dev_mode {
                tracing::warn!(
                    addr = %g.http_listen,
                    "DEV MODE: POST /v1/dev/token mints tokens with any roles (admin included) for anyone who reaches \
                     this gateway; never run a deployment like this"
                );
            }
            let (payments, payment_webhooks) =
                provider_from_config(g).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
            let gw = Gateway::new(GatewaySettings {
                cluster: gw_client,
                regions: config.cluster.regions.clone(),
                auth: Auth::new(g.jwt_secret.as_bytes()),
                signer: TicketSigner::from_seed(seed),
                payments,
                payment_webhooks,
                dev_mode: g.dev_mode,
                body_bytes_max: g.body_bytes_max,
                user_requests_per_sec: g.user_requests_per_sec,
                user_burst_max: g.user_burst_max,
                streams_max: g.streams_max,
                join_addr_per_sec: g.join_addr_per_sec,
                join_addr_burst_max: g.join_addr_burst_max,
                read_addr_per_sec: g.read_addr_per_sec,
                read_addr_burst_max: g.read_addr_burst_max,
                metrics: metrics.clone(),
                payment_grace_ms: g.payment_grace_ms,
                webhooks: (!g.webhooks.is_empty()).then(|| gateway::notify::Webhooks {
                    urls: g.webhooks.clone(),
                    secret: g.webhook_secret.clone().unwrap_or_default(),
                    state_dir: config.node.data_dir.join("webhooks"),
                }),
            })
            .map_err(|e| anyhow::anyhow!("starting the gateway: {}", e.message))?;
            tasks.extend(gw.spawn_background(stop_rx.clone()));
            let listener = tokio::net::TcpListener::bind(g.http_listen)
                .await
                .with_context(|| format!("binding the HTTP API to {}", g.http_listen))?;
            tracing::info!(addr = %g.http_listen, "gateway role up");
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(gateway::serve(gw, listener, async move {
                let _ = rx.wait_for(|s| *s).await;
            })))
        }
        None => None,
    };

    stop.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(http) = http {
        match tokio::time::timeout(Duration::from_secs(10), http).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("HTTP server: {e}"),
            Ok(Err(e)) => tracing::warn!("HTTP server task: {e}"),
            Err(_) => tracing::warn!("HTTP requests still running after 10 s; stopping anyway"),
        }
    }
    for task in tasks {
        task.abort();
    }
    if let Some(node) = node {
        node.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Publishes every hosted group's Raft state as metrics.
async fn report_groups(
    node: Arc<RaftNode>,
    regions: BTreeMap<String, u64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let names: BTreeMap<u64, String> = regions.into_iter().map(|(r, g)| (g, r)).collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        for s in node.statuses() {
            let region = names.get(&s.group).cloned().unwrap_or_else(|| s.group.to_string());
            let labels = [("region", region)];
            metrics::gauge!("raft_term", &labels).set(s.term as f64);
            metrics::gauge!("raft_leader", &labels).set(s.leader.unwrap_or(0) as f64);
            metrics::gauge!("raft_is_leader", &labels).set(if s.leader == Some(s.node) { 1.0 } else { 0.0 });
            metrics::gauge!("raft_commit_index", &labels).set(s.commit_index as f64);
            metrics::gauge!("raft_applied_index", &labels).set(s.applied_index as f64);
            metrics::gauge!("raft_last_log_index", &labels).set(s.last_log_index as f64);
            if let Ok(live) = node.local_read(s.group, |st| st.live_holds()) {
                metrics::gauge!("shard_holds_active", &labels).set(live as f64);
            }
        }
        let stats = node.flush_stats();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
        metrics::gauge!("raft_log_syncs").set(load(&stats.syncs));
        metrics::gauge!("raft_log_entries_synced").set(load(&stats.entries));
        let syncs = load(&stats.syncs);
        if syncs > 0.0 {
            metrics::gauge!("raft_log_entries_per_sync").set(load(&stats.entries) / syncs);
        }
    }
}

async fn wait_for_leader(node: &RaftNode, group: u64) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        if let Some(leader) = node.leader(group)? {
            return Ok(leader);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("group {group} elected no leader within {LEADER_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Initializes never-initialized groups with every peer as a voter, loads
/// the demo catalog if asked, and spreads the leaders.
async fn bootstrap(node: &Arc<RaftNode>, client: &ClusterClient, config: &Config) -> anyhow::Result<()> {
    let storage = config.storage.as_ref().expect("bootstrap runs on storage nodes");
    let peers = config.peers();
    let members: BTreeMap<u64, PeerNode> = peers.iter().map(|(id, a)| (*id, PeerNode { addr: a.clone() })).collect();
    let regions = config.hosted_regions();
    for (region, group) in &regions {
        let status = node.status(*group)?;
        if status.voters.is_empty() && status.last_log_index == 0 {
            tracing::info!(%region, group, "initializing region group");
            node.initialize(*group, members.clone()).await?;
        }
    }
    for (_, group) in &regions {
        wait_for_leader(node, *group).await?;
    }
    if storage.demo_data {
        let catalogs = crate::demo::catalog(crate::shard::wall_clock_ms());
        for (region, group) in &regions {
            let Some(catalog) = catalogs.iter().find(|c| c.region == region) else { continue };
            lead(node, client, *group).await?;
            let mut shard = RaftShard {
                node: Arc::clone(node),
                group: *group,
                region: region.clone(),
                handle: tokio::runtime::Handle::current(),
            };
            let catalog = catalog.clone();
            let report = tokio::task::spawn_blocking(move || crate::demo::load(&mut shard, &catalog))
                .await?
                .with_context(|| format!("loading the demo catalog of {region}"))?;
            tracing::info!(%region, already_present = report.already_present, proposed = report.proposed, "demo catalog");
        }
    }
    if storage.spread_leaders {
        let ids: Vec<u64> = peers.keys().copied().collect();
        for (i, (region, group)) in regions.iter().enumerate() {
            let target = ids[i % ids.len()];
            let leader = wait_for_leader(node, *group).await?;
            if leader != target {
                if let Err(e) = client.transfer_leader(*group, target).await {
                    tracing::warn!(%region, "could not move the leader to node {target}: {e}");
                }
            }
        }
    }
    tracing::info!("bootstrap done");
    Ok(())
}

/// Makes this node the leader of `group`.
async fn lead(node: &Arc<RaftNode>, client: &ClusterClient, group: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let leader = wait_for_leader(node, group).await?;
        if leader == node.id() {
            // A ReadIndex round makes sure everything committed before this
            // term is applied here before the loader looks at the state.
            node.read(group, |_, _| ()).await?;
            return Ok(());
        }
        if let Err(e) = client.transfer_leader(group, node.id()).await {
            tracing::debug!("asking for the leadership of group {group}: {e}");
        }
        if tokio::time::Instant::now() > deadline {
            bail!("could not become the leader of group {group}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A group led by this node as a [`Shard`], for the demo loader (which is
/// synchronous and runs on a blocking thread).
struct RaftShard {
    node: Arc<RaftNode>,
    group: u64,
    region: String,
    handle: tokio::runtime::Handle,
}

impl Shard for RaftShard {
    type Error = raft::NodeError;

    fn region(&self) -> &str {
        &self.region
    }

    fn propose(&mut self, cmd: Command) -> Result<Applied, raft::NodeError> {
        self.handle.block_on(self.node.propose(self.group, cmd))
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        // The loader reads right after its own writes on the leader, so the
        // local applied state already holds them.
        self.node.local_read(self.group, f).expect("the loader's group is open")
    }

    fn now_ms(&self) -> Millis {
        let clock = self.node.local_read(self.group, State::clock_ms).unwrap_or(0);
        crate::shard::wall_clock_ms().max(clock)
    }
}

/// Makes every panic stop the process. A panic is a broken invariant (input
/// never reaches one: it is refused with a typed error first), and tokio
/// would otherwise end only the task that panicked: a panic inside a state
/// machine apply or under a lock would leave the node serving from poisoned
/// state, answering "channel closed" for ever. Stopping instead lets the
/// supervisor restart the replica from its durable log, as after a crash.
pub fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        tracing::error!("panic: {info}; stopping the process so that it restarts from durable state");
        std::process::abort();
    }));
}

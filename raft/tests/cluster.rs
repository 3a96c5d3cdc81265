//! Real clusters on loopback: three nodes, each with its own RocksDB and
//! gRPC server, talking over real sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::{NodeConfig, NodeError, PeerNode, RaftNode};
use statemachine::*;
use tempfile::TempDir;

const SECRET: &str = "test-cluster-secret";
const GROUP: u64 = 1;

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn config(id: u64, addr: SocketAddr, dir: &Path) -> NodeConfig {
    let mut c = NodeConfig::new(id, addr, dir.join(format!("node-{id}")), SECRET);
    c.heartbeat_ms = 50;
    c.election_timeout_ms_min = 300;
    c.election_timeout_ms_max = 600;
    c.sweep_interval_ms = 200;
    c.request_timeout_ms = 2_000;
    c
}

struct Cluster {
    dir: TempDir,
    addrs: Vec<SocketAddr>,
    nodes: Vec<Option<Arc<RaftNode>>>,
    tweak: fn(&mut NodeConfig),
}

impl Cluster {
    async fn start(groups: &[u64], tweak: fn(&mut NodeConfig)) -> Cluster {
        let dir = TempDir::new().unwrap();
        let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
        let mut cluster = Cluster { dir, addrs, nodes: vec![None, None, None], tweak };
        for i in 0..3 {
            cluster.start_node(i, groups).await;
        }
        let members: BTreeMap<u64, PeerNode> =
            (0..3).map(|i| (i as u64 + 1, PeerNode { addr: cluster.addrs[i].to_string() })).collect();
        for &g in groups {
            // Initialize each group on a different node so leaders spread.
            let first = (g as usize - 1) % 3;
            cluster.node(first).initialize(g, members.clone()).await.unwrap();
        }
        cluster
    }

    async fn start_node(&mut self, i: usize, groups: &[u64]) {
        let mut c = config(i as u64 + 1, self.addrs[i], self.dir.path());
        (self.tweak)(&mut c);
        // `shutdown` waits until a stopped node has let go of its database,
        // so its directory opens again at once.
        let node = RaftNode::start(c).await.unwrap_or_else(|e| panic!("node {} did not start: {e}", i + 1));
        for &g in groups {
            node.open_group(g).await.unwrap();
        }
        self.nodes[i] = Some(node);
    }

    async fn stop_node(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("running");
        node.shutdown().await;
    }

    fn node(&self, i: usize) -> &Arc<RaftNode> {
        self.nodes[i].as_ref().expect("running")
    }

    fn running(&self) -> impl Iterator<Item = (usize, &Arc<RaftNode>)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// Waits for a running node that leads the group by its own account
    /// (the one with the highest term if a deposed leader has not noticed
    /// yet) and returns its index. A stale answer only costs a retry: a
    /// deposed leader cannot commit.
    async fn leader(&self, group: u64) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let leader = self
                .running()
                .filter_map(|(i, n)| n.status(group).ok().map(|s| (i, s)))
                .filter(|(_, s)| s.leader == Some(s.node))
                .max_by_key(|(_, s)| s.term)
                .map(|(i, _)| i);
            if let Some(i) = leader {
                return i;
            }
            assert!(Instant::now() < deadline, "no leader for group {group}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds a node that was started outside the cluster (its index is its id - 1).
    fn adopt(&mut self, node: Arc<RaftNode>, addr: SocketAddr) {
        assert_eq!(node.id() as usize, self.nodes.len() + 1);
        self.addrs.push(addr);
        self.nodes.push(Some(node));
    }

    /// Proposes through whichever node leads, retrying the same request
    /// (same id) through leader changes, as a gateway does.
    async fn propose(&self, group: u64, cmd: Command) -> Applied {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let leader = self.leader(group).await;
            match self.node(leader).propose(group, cmd.clone()).await {
                Ok(applied) => return applied,
                Err(NodeError::NotLeader { .. } | NodeError::Unknown(_) | NodeError::NoQuorum(_)) => {}
                Err(e) => panic!("propose failed: {e}"),
            }
            assert!(Instant::now() < deadline, "could not commit {cmd:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ok(&self, group: u64, client: &str, request: &str, op: Op) -> Outcome {
        let applied = self.propose(group, Command::new(client, request, op)).await;
        applied.result.unwrap_or_else(|e| panic!("rejected: {e:?}"))
    }

    async fn wait_applied(&self, i: usize, group: u64, index: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.node(i).applied_index(group).unwrap() < index {
            assert!(Instant::now() < deadline, "node {i} stuck before index {index}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() {
                self.stop_node(i).await;
            }
        }
    }
}

fn venue() -> VenueSpec {
    VenueSpec {
        name: "Loopback Arena".into(),
        city: "Pune".into(),
        region: "ap-south".into(),
        sections: vec![SectionSpec {
            name: "Floor".into(),
            category: "regular".into(),
            rows: (1..=20).map(|r| RowSpec { label: r.to_string(), seats: 50 }).collect(),
        }],
        blocked_seats: vec![],
        accessible_seats: vec![],
    }
}

async fn event(cluster: &Cluster, group: u64) -> EventId {
    let venue = match cluster.ok(group, "admin", "venue", Op::CreateVenue(venue())).await {
        Outcome::VenueCreated { venue, .. } => venue,
        o => panic!("{o:?}"),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let spec = EventSpec {
        venue,
        title: "Failover Live".into(),
        kind: EventKind::Concert,
        starts_at_ms: now + 86_400_000,
        genre: "rock".into(),
        language: "en".into(),
        currency: "INR".into(),
        prices: vec![("regular".into(), 1_000)],
        sale_opens_at_ms: now - 60_000,
        sale_closes_at_ms: None,
        max_seats_per_hold: None,
        hold_ttl_secs: Some(3_600),
        refund_policy: None,
        waiting_room: None,
    };
    match cluster.ok(group, "admin", "event", Op::CreateEvent(spec)).await {
        Outcome::EventCreated { event } => event,
        o => panic!("{o:?}"),
    }
}

async fn hold(cluster: &Cluster, group: u64, event: EventId, n: u32) -> HoldId {
    let seat = format!("Floor-{}-{}", n / 50 + 1, n % 50 + 1);
    let op = Op::Hold { event, user: format!("user{n}"), selection: Selection::Seats(vec![seat]) };
    match cluster.ok(group, &format!("user{n}"), "hold", op).await {
        Outcome::Held(r) => r.hold,
        o => panic!("{o:?}"),
    }
}

/// Makes `node` snapshot the group, waits for a snapshot past
/// `snapshot_above`, purges the log it covers (a leader keeps log a replica
/// may still need unless told otherwise) and waits until the purge passes
/// `purged_above`; returns the purged index.
async fn snapshot_and_purge(node: &RaftNode, snapshot_above: u64, purged_above: u64) -> u64 {
    node.trigger_snapshot(GROUP).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        if let Some(i) = node.status(GROUP).unwrap().snapshot_index.filter(|&i| i > snapshot_above) {
            break i;
        }
        assert!(Instant::now() < deadline, "node {} built no snapshot", node.id());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    node.purge_log(GROUP, snapshot).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = node.status(GROUP).unwrap().purged_index.filter(|&i| i > purged_above) {
            return i;
        }
        assert!(Instant::now() < deadline, "node {} did not purge its log", node.id());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every acknowledged hold must be present, live and owned by its user.
async fn assert_holds(cluster: &Cluster, group: u64, holds: &[(u32, HoldId)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let leader = cluster.leader(group).await;
        let read = cluster
            .node(leader)
            .read(group, |s, now| {
                holds.iter().filter(|(n, id)| s.hold(*id, now).is_none_or(|h| h.user != format!("user{n}"))).count()
            })
            .await;
        match read {
            Ok(missing) => break missing,
            Err(e) => assert!(Instant::now() < deadline, "no linearizable read: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(missing, 0, "acknowledged holds lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failover_loses_no_acknowledged_write_and_a_restarted_node_catches_up() {
    let mut cluster = Cluster::start(&[GROUP], |_| {}).await;
    let event = event(&cluster, GROUP).await;
    let mut holds = Vec::new();
    for n in 0..30 {
        holds.push((n, hold(&cluster, GROUP, event, n).await));
    }
    let old_leader = cluster.leader(GROUP).await;
    cluster.stop_node(old_leader).await;
    for n in 30..60 {
        holds.push((n, hold(&cluster, GROUP, event, n).await));
    }
    assert_holds(&cluster, GROUP, &holds).await;
    // A retry of an acknowledged request is answered, not applied again.
    let again = cluster
        .propose(
            GROUP,
            Command::new(
                "user3",
                "hold",
                Op::Hold { event, user: "user3".into(), selection: Selection::Seats(vec!["Floor-1-4".into()]) },
            ),
        )
        .await;
    assert!(again.replayed);

    cluster.start_node(old_leader, &[GROUP]).await;
    let leader = cluster.leader(GROUP).await;
    let index = cluster.node(leader).applied_index(GROUP).unwrap();
    cluster.wait_applied(old_leader, GROUP, index).await;
    let at = cluster.node(leader).local_read(GROUP, |s| s.last_index()).unwrap();
    let hashes: BTreeSet<u64> = cluster
        .running()
        .map(|(_, n)| n.local_read(GROUP, |s| (s.last_index(), s.state_hash())).unwrap())
        .filter(|(i, _)| *i == at)
        .map(|(_, h)| h)
        .collect();
    assert_eq!(hashes.len(), 1, "replicas at the same index differ");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minority_cannot_commit() {
    let mut cluster = Cluster::start(&[GROUP], |_| {}).await;
    let event = event(&cluster, GROUP).await;
    let leader = cluster.leader(GROUP).await;
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &others {
        cluster.stop_node(i).await;
    }
    let op = Op::Hold { event, user: "lonely".into(), selection: Selection::Seats(vec!["Floor-1-1".into()]) };
    let attempt = tokio::time::timeout(
        Duration::from_secs(3),
        cluster.node(leader).propose(GROUP, Command::new("lonely", "h", op)),
    )
    .await;
    assert!(!matches!(attempt, Ok(Ok(_))), "a lone node committed a write: {attempt:?}");
    // Nothing was applied on the lone node either.
    let held = cluster.node(leader).local_read(GROUP, |s| s.user_holds("lonely", u64::MAX / 2).len()).unwrap();
    assert_eq!(held, 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_replica_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start(&[GROUP], |c| {
        c.snapshot_logs_since_last = 40;
        c.snapshot_logs_kept = 5;
    })
    .await;
    let leader = cluster.leader(GROUP).await;
    let lagging = (leader + 1) % 3;
    // The replica stops before the catalog exists: everything it lacks is
    // behind the leader's purge point when it comes back.
    cluster.stop_node(lagging).await;
    let event = event(&cluster, GROUP).await;
    let mut holds = Vec::new();
    for n in 0..120 {
        holds.push((n, hold(&cluster, GROUP, event, n).await));
    }
    let leader = cluster.leader(GROUP).await;
    let purged = snapshot_and_purge(cluster.node(leader), 100, 4).await;
    let lagging_before = 4; // venue, event and the blank and membership entries at most
    assert!(purged > lagging_before, "the log the lagging replica needs is still there");
    cluster.start_node(lagging, &[GROUP]).await;
    let index = cluster.node(leader).applied_index(GROUP).unwrap();
    cluster.wait_applied(lagging, GROUP, index).await;
    let status = cluster.node(lagging).status(GROUP).unwrap();
    assert!(
        status.snapshot_index.is_some_and(|i| i >= purged),
        "the lagging replica caught up without a snapshot: {status:?}"
    );
    let (h_lag, h_lead) = (
        cluster.node(lagging).local_read(GROUP, |s| (s.last_index(), s.state_hash())).unwrap(),
        cluster.node(leader).local_read(GROUP, |s| (s.last_index(), s.state_hash())).unwrap(),
    );
    assert_eq!(h_lag, h_lead, "the caught-up replica differs from the leader");
    assert_holds(&cluster, GROUP, &holds).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_groups_on_three_nodes_with_leaders_spread() {
    let groups = [1u64, 2, 3];
    let cluster = Cluster::start(&groups, |_| {}).await;
    let mut leaders = BTreeSet::new();
    for &g in &groups {
        let mut leader = cluster.leader(g).await;
        let want = (g as usize - 1) % 3;
        if leader != want {
            cluster.node(leader).transfer_leader(g, want as u64 + 1).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while leader != want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                leader = cluster.leader(g).await;
            }
        }
        leaders.insert(leader);
        let event = event(&cluster, g).await;
        hold(&cluster, g, event, g as u32).await;
    }
    assert_eq!(leaders.len(), 3, "group leaders are not spread over the nodes");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_without_the_secret_or_for_another_node_are_refused() {
    use proto::raft_v1::raft_transport_client::RaftTransportClient;
    use proto::raft_v1::RaftRequest;
    let cluster = Cluster::start(&[GROUP], |_| {}).await;
    let mut client = RaftTransportClient::connect(format!("http://{}", cluster.addrs[0])).await.unwrap();
    let request = || RaftRequest { group_id: GROUP, from: 9, target: 1, body: vec![1, 2, 3] };
    let status = client.append(request()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(request());
    wrong.metadata_mut().insert("x-cluster-secret", "guess".parse().unwrap());
    assert_eq!(client.append(wrong).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    // With the secret: a message for another node, for an unknown group, and
    // a malformed body are refused, and the node keeps serving.
    let with_secret = |r: RaftRequest| {
        let mut req = tonic::Request::new(r);
        req.metadata_mut().insert("x-cluster-secret", SECRET.parse().unwrap());
        req
    };
    let other = RaftRequest { target: 2, ..request() };
    assert_eq!(client.append(with_secret(other)).await.unwrap_err().code(), tonic::Code::FailedPrecondition);
    let unknown = RaftRequest { group_id: 77, ..request() };
    assert_eq!(client.append(with_secret(unknown)).await.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(client.append(with_secret(request())).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let event = event(&cluster, GROUP).await;
    hold(&cluster, GROUP, event, 1).await;
    cluster.shutdown().await;
}

/// Membership changes while clients write: a fourth node joins as a
/// learner, catches up, becomes a voter, and then the old leader is removed.
/// Every acknowledged hold survives and the new member converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn membership_changes_under_load_lose_nothing() {
    let mut cluster = Cluster::start(&[GROUP], |_| {}).await;
    let event = event(&cluster, GROUP).await;
    let fourth_addr = free_addr();
    let mut c = config(4, fourth_addr, cluster.dir.path());
    c.sweep_interval_ms = 200;
    let fourth = RaftNode::start(c).await.unwrap();
    fourth.open_group(GROUP).await.unwrap();
    cluster.adopt(Arc::clone(&fourth), fourth_addr);

    let cluster = Arc::new(tokio::sync::RwLock::new(std::mem::replace(&mut cluster, placeholder())));
    let writer = {
        let cluster = Arc::clone(&cluster);
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..150 {
                let c = cluster.read().await;
                acked.push((n, hold(&c, GROUP, event, n).await));
            }
            acked
        })
    };
    {
        let c = cluster.read().await;
        let leader = c.leader(GROUP).await;
        c.node(leader).add_learner(GROUP, 4, PeerNode { addr: fourth_addr.to_string() }).await.unwrap();
        c.node(leader).change_voters(GROUP, BTreeSet::from([1, 2, 3, 4])).await.unwrap();
        let leader = c.leader(GROUP).await;
        let removed = leader as u64 + 1;
        let remaining: BTreeSet<u64> = [1, 2, 3, 4].into_iter().filter(|&id| id != removed).collect();
        c.node(leader).change_voters(GROUP, remaining.clone()).await.unwrap();
        let leader = c.leader(GROUP).await;
        let status = c.node(leader).status(GROUP).unwrap();
        assert_eq!(status.voters.iter().copied().collect::<BTreeSet<u64>>(), remaining, "{status:?}");
        // The new member learns the membership that made it a voter.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fourth.status(GROUP).unwrap().voters.contains(&4) {
            assert!(Instant::now() < deadline, "the new node never saw itself as a voter");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let acked = writer.await.unwrap();
    let c = cluster.read().await;
    assert_holds(&c, GROUP, &acked).await;
    // The new member has everything the leader applied.
    let leader = c.leader(GROUP).await;
    let index = c.node(leader).applied_index(GROUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fourth.applied_index(GROUP).unwrap() < index {
        assert!(Instant::now() < deadline, "the new member did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ours = fourth.local_read(GROUP, |s| (s.last_index(), s.state_hash())).unwrap();
    let theirs = c.node(leader).local_read(GROUP, |s| (s.last_index(), s.state_hash())).unwrap();
    if ours.0 == theirs.0 {
        assert_eq!(ours.1, theirs.1, "the new member differs from the leader at the same index");
    }
    drop(c);
    drop(fourth);
    let cluster = Arc::try_unwrap(cluster).ok().expect("writer finished").into_inner();
    cluster.shutdown().await;
}

/// Proposals that reach the leader together share log entries, and each
/// still gets its own result and state index: two users race for each of
/// 200 seats, all 400 proposals at once. Each seat goes to exactly one of
/// them, the one the log ordered first (the smaller state index), the
/// proposals took far fewer entries than commands, and every replica,
/// one of them restarted from its log, holds the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_proposals_share_entries_and_keep_their_own_results() {
    let mut cluster = Cluster::start(&[GROUP], |_| {}).await;
    let event = event(&cluster, GROUP).await;
    let leader = cluster.leader(GROUP).await;
    let node = Arc::clone(cluster.node(leader));
    let before = node.status(GROUP).unwrap().last_log_index;
    let racers: Vec<_> = (0..400u32)
        .map(|n| {
            let node = Arc::clone(&node);
            tokio::spawn(async move {
                let seat = n % 200;
                let label = format!("Floor-{}-{}", seat / 50 + 1, seat % 50 + 1);
                let user = format!("racer{n}");
                let op = Op::Hold { event, user: user.clone(), selection: Selection::Seats(vec![label]) };
                let (applied, index) = node.propose_indexed(GROUP, Command::new(user, "race", op)).await.unwrap();
                (seat, applied, index)
            })
        })
        .collect();
    let mut results = Vec::new();
    for racer in racers {
        results.push(racer.await.unwrap());
    }
    let entries = node.status(GROUP).unwrap().last_log_index - before;
    assert!(entries < 200, "400 concurrent proposals took {entries} log entries");
    let indexes: BTreeSet<u64> = results.iter().map(|(_, _, index)| *index).collect();
    assert_eq!(indexes.len(), results.len(), "two commands share a state index");
    let mut by_seat: BTreeMap<u32, Vec<(u64, bool)>> = BTreeMap::new();
    for (seat, applied, index) in &results {
        let won = match &applied.result {
            Ok(Outcome::Held(_)) => true,
            Err(Rejection::SeatsUnavailable { .. }) => false,
            other => panic!("seat {seat}: {other:?}"),
        };
        by_seat.entry(*seat).or_default().push((*index, won));
    }
    for (seat, mut tries) in by_seat {
        tries.sort_unstable();
        assert_eq!(tries.iter().map(|t| t.1).collect::<Vec<_>>(), [true, false], "seat {seat}: {tries:?}");
    }
    // Every replica applies the entries to the same state, also one that
    // rebuilds it from its stored log.
    let last = node.status(GROUP).unwrap().last_log_index;
    let restarted = (leader + 1) % 3;
    cluster.wait_applied(restarted, GROUP, last).await;
    cluster.stop_node(restarted).await;
    cluster.start_node(restarted, &[GROUP]).await;
    let (want_index, want) = node.local_read(GROUP, |s| (s.last_index(), s.snapshot())).unwrap();
    assert_eq!(want_index, *indexes.last().unwrap(), "the last race command is the state's last");
    for i in 0..3 {
        cluster.wait_applied(i, GROUP, last).await;
        let (index, bytes) = cluster.node(i).local_read(GROUP, |s| (s.last_index(), s.snapshot())).unwrap();
        assert_eq!(index, want_index, "node {i}");
        assert!(bytes == want, "node {i} applied the shared entries differently");
    }
    drop(node);
    cluster.shutdown().await;
}

/// After `shutdown` and dropping the node, its data directory opens again
/// at once in the same process (the database is closed, not left to tasks
/// winding down), and the reopened node has what it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shut_down_node_releases_its_directory() {
    let mut cluster = Cluster::start(&[GROUP], |c| c.snapshot_logs_since_last = 10).await;
    let event = event(&cluster, GROUP).await;
    let held = hold(&cluster, GROUP, event, 3).await;
    let leader = cluster.leader(GROUP).await;
    let i = (leader + 1) % 3;
    let index = cluster.node(leader).applied_index(GROUP).unwrap();
    cluster.wait_applied(i, GROUP, index).await;
    for round in 0..3 {
        // Stop it while it builds a snapshot and applies new entries: the
        // tasks doing that hold the database when shutdown begins.
        for n in 0..12 {
            hold(&cluster, GROUP, event, 10 + round * 12 + n).await;
        }
        cluster.node(i).trigger_snapshot(GROUP).await.unwrap();
        let node = cluster.nodes[i].take().expect("running");
        node.shutdown().await;
        drop(node);
        let mut c = config(i as u64 + 1, cluster.addrs[i], cluster.dir.path());
        (cluster.tweak)(&mut c);
        let node =
            RaftNode::start(c).await.unwrap_or_else(|e| panic!("round {round}: the directory is still in use: {e}"));
        node.open_group(GROUP).await.unwrap();
        cluster.nodes[i] = Some(node);
        cluster.wait_applied(i, GROUP, index).await;
        let kept = cluster.node(i).local_read(GROUP, |s| s.hold(held, s.clock_ms()).is_some()).unwrap();
        assert!(kept, "round {round}: the reopened node lost the hold");
    }
    cluster.shutdown().await;
}

/// An empty stand-in used while the real cluster is shared with a writer task.
fn placeholder() -> Cluster {
    Cluster { dir: TempDir::new().unwrap(), addrs: Vec::new(), nodes: Vec::new(), tweak: |_| {} }
}

/// Bad input from a peer that knows the secret: a stale term, a corrupt
/// snapshot and an oversized message are refused, and the node keeps
/// serving clients afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_messages_are_refused_and_the_node_keeps_serving() {
    use proto::raft_v1::raft_transport_client::RaftTransportClient;
    use proto::raft_v1::{snapshot_frame, RaftRequest, SnapshotFrame};
    type Vote = openraft::type_config::alias::VoteOf<raft::TypeConfig>;
    type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<raft::TypeConfig>;
    type AppendRequest = openraft::raft::AppendEntriesRequest<raft::TypeConfig>;
    type AppendResponse = openraft::raft::AppendEntriesResponse<raft::TypeConfig>;

    let cluster = Cluster::start(&[GROUP], |_| {}).await;
    let event = event(&cluster, GROUP).await;
    let leader = cluster.leader(GROUP).await;
    let target = (leader + 1) % 3;
    let mut client = RaftTransportClient::connect(format!("http://{}", cluster.addrs[target]))
        .await
        .unwrap()
        .max_encoding_message_size(128 * 1024 * 1024);
    let signed = |r| {
        let mut req = tonic::Request::new(r);
        req.metadata_mut().insert("x-cluster-secret", SECRET.parse().unwrap());
        req
    };
    let to_target = |body: Vec<u8>| RaftRequest { group_id: GROUP, from: 9, target: target as u64 + 1, body };

    // A leader from term 0 is told about the higher vote, not obeyed.
    let stale = AppendRequest { vote: Vote::new(0, 9), prev_log_id: None, entries: vec![], leader_commit: None };
    let reply = client.append(signed(to_target(postcard::to_allocvec(&stale).unwrap()))).await.unwrap();
    let response: AppendResponse = postcard::from_bytes(&reply.into_inner().body).unwrap();
    assert!(matches!(response, AppendResponse::HigherVote(_)), "{response:?}");

    // A snapshot whose bytes do not restore is refused before it is installed.
    let head = to_target(postcard::to_allocvec(&(Vote::new(99, 9), SnapshotMeta::default())).unwrap());
    let frames = vec![
        SnapshotFrame { frame: Some(snapshot_frame::Frame::Head(head)) },
        SnapshotFrame { frame: Some(snapshot_frame::Frame::Chunk(b"TKTSNAP\0garbage".to_vec())) },
    ];
    let mut stream = tonic::Request::new(futures::stream::iter(frames));
    stream.metadata_mut().insert("x-cluster-secret", SECRET.parse().unwrap());
    let status = client.install_snapshot(stream).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    // So is a snapshot that restores but holds more log than its metadata
    // says it covers (a node that installed it would serve state it cannot
    // account for).
    let mut ahead = State::new(Limits::default());
    let applied = ahead.apply(
        &Command::new("x", "y", Op::CreateVenue(venue())),
        ApplyCtx { index: raft::state_index(50, 0), time_ms: 1 },
    );
    assert!(applied.result.is_ok());
    let head = to_target(postcard::to_allocvec(&(Vote::new(99, 9), SnapshotMeta::default())).unwrap());
    let frames = vec![
        SnapshotFrame { frame: Some(snapshot_frame::Frame::Head(head)) },
        SnapshotFrame { frame: Some(snapshot_frame::Frame::Chunk(group_snapshot(&ahead.snapshot()))) },
    ];
    let mut stream = tonic::Request::new(futures::stream::iter(frames));
    stream.metadata_mut().insert("x-cluster-secret", SECRET.parse().unwrap());
    let status = client.install_snapshot(stream).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("claims to cover"), "{status:?}");
    // A snapshot stream without a head is refused too.
    let mut headless = tonic::Request::new(futures::stream::iter(vec![SnapshotFrame {
        frame: Some(snapshot_frame::Frame::Chunk(vec![1, 2, 3])),
    }]));
    headless.metadata_mut().insert("x-cluster-secret", SECRET.parse().unwrap());
    assert_eq!(client.install_snapshot(headless).await.unwrap_err().code(), tonic::Code::InvalidArgument);

    // Entries no leader of ours makes (no command, or more commands than a
    // state index can number) are refused before they are stored.
    {
        use openraft::entry::RaftEntry;
        type Entry = openraft::type_config::alias::EntryOf<raft::TypeConfig>;
        type LogId = openraft::type_config::alias::LogIdOf<raft::TypeConfig>;
        let leader_id = openraft::impls::leader_id_adv::LeaderId { term: 99, node_id: 9 };
        let cmd = Command::new("x", "y", Op::CreateVenue(venue()));
        for count in [0, raft::ENTRY_COMMANDS_LIMIT + 1] {
            let entry = Entry::new_normal(
                LogId::new(leader_id, 1),
                raft::LogCmd { time_ms: 1, cmds: vec![cmd.clone(); count] },
            );
            let bad =
                AppendRequest { vote: Vote::new(99, 9), prev_log_id: None, entries: vec![entry], leader_commit: None };
            let status = client.append(signed(to_target(postcard::to_allocvec(&bad).unwrap()))).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{count} commands: {status:?}");
            assert!(status.message().contains("number of commands"), "{status:?}");
        }
    }

    // A message over the size limit is refused by the transport.
    let huge = to_target(vec![0u8; 65 * 1024 * 1024]);
    let status = client.append(signed(huge)).await.unwrap_err();
    assert!(
        matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::Internal),
        "{status:?}"
    );

    // The group still commits, and the node that got the bad input follows.
    hold(&cluster, GROUP, event, 7).await;
    let index = cluster.node(cluster.leader(GROUP).await).applied_index(GROUP).unwrap();
    cluster.wait_applied(target, GROUP, index).await;
    cluster.shutdown().await;
}

/// A group snapshot around state-machine bytes, with no retired ids, as a
/// peer sends it (raft/src/snapshot.rs: magic, version, count, ids, xxh3 of
/// all that, state).
fn group_snapshot(state: &[u8]) -> Vec<u8> {
    let mut bytes = b"TKGS".to_vec();
    bytes.push(1);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
    bytes.extend_from_slice(&digest.to_le_bytes());
    bytes.extend_from_slice(state);
    bytes
}

/// The `Shard` service as a gateway uses it: through any node's address the
/// client finds the leader, proposals and reads work, a retried proposal is
/// answered once, a leader kill is ridden out, and a wrong secret is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shard_service_routes_to_the_leader_and_rides_out_a_failover() {
    use raft::{Answer, ClientError, ClusterClient, Consistency, Query};
    let mut cluster = Cluster::start(&[GROUP], |_| {}).await;
    let ev = event(&cluster, GROUP).await;
    let leader = cluster.leader(GROUP).await;
    let follower = (leader + 1) % 3;
    // Seeded with a follower only: the first call is redirected.
    let client = ClusterClient::new(
        vec![cluster.addrs[follower].to_string()],
        SECRET,
        Duration::from_secs(2),
        Duration::from_secs(10),
    );
    let hold = Command::new(
        "ann",
        "h1",
        Op::Hold { event: ev, user: "ann".into(), selection: Selection::Seats(vec!["Floor-1-1".into()]) },
    );
    let (first, index) = client.propose(GROUP, &hold).await.unwrap();
    assert!(matches!(first.result, Ok(Outcome::Held(_))), "{first:?}");
    assert!(index > 0);
    assert_eq!(client.cached_leader(GROUP), Some(cluster.addrs[leader].to_string()), "the redirect was followed");
    let (again, _) = client.propose(GROUP, &hold).await.unwrap();
    assert!(again.replayed, "a retry is answered from the exactly-once table");
    assert_eq!(again.result, first.result);

    let reply = client.read(GROUP, &Query::SeatMap(ev), Consistency::Linearizable).await.unwrap();
    let Answer::SeatMap(Some(map)) = reply.answer else { panic!("{:?}", reply.answer) };
    assert_eq!(map.seats.iter().filter(|s| s.status == SeatStatus::Held).count(), 1);
    assert!(reply.applied_index >= index);

    let statuses = client.node_status(&cluster.addrs[follower].to_string()).await.unwrap();
    assert_eq!(statuses.groups.len(), 1);
    assert_eq!(statuses.groups[0].voters, vec![1, 2, 3]);

    // Kill the leader: the client finds the new one within its budget.
    cluster.stop_node(leader).await;
    let all = ClusterClient::new(
        cluster.addrs.iter().map(|a| a.to_string()).collect(),
        SECRET,
        Duration::from_secs(1),
        Duration::from_secs(15),
    );
    let hold2 = Command::new(
        "bob",
        "h1",
        Op::Hold { event: ev, user: "bob".into(), selection: Selection::Seats(vec!["Floor-1-2".into()]) },
    );
    let (after, _) = all.propose(GROUP, &hold2).await.unwrap();
    assert!(matches!(after.result, Ok(Outcome::Held(_))), "{after:?}");
    let reply = all.read(GROUP, &Query::SeatMap(ev), Consistency::Linearizable).await.unwrap();
    let Answer::SeatMap(Some(map)) = reply.answer else { panic!() };
    assert_eq!(map.seats.iter().filter(|s| s.status == SeatStatus::Held).count(), 2, "nothing acknowledged was lost");

    let outsider = ClusterClient::new(
        vec![cluster.addrs[follower].to_string()],
        "wrong-secret",
        Duration::from_secs(1),
        Duration::from_secs(2),
    );
    assert_eq!(outsider.propose(GROUP, &hold2).await.unwrap_err(), ClientError::Unauthenticated);
    cluster.shutdown().await;
}

/// Follower reads answer from a replica's applied state within the lag
/// bound, and a replica that lost its leader refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_reads_are_bounded_and_refused_without_a_leader() {
    use raft::{Answer, Query};
    let mut cluster = Cluster::start(&[GROUP], |_| {}).await;
    let ev = event(&cluster, GROUP).await;
    let h = hold(&cluster, GROUP, ev, 1).await;
    let leader = cluster.leader(GROUP).await;
    let follower = (leader + 1) % 3;
    let index = cluster.node(leader).applied_index(GROUP).unwrap();
    cluster.wait_applied(follower, GROUP, index).await;
    // A follower answers only while its leader's appends are recent; on a
    // loaded machine one heartbeat may come late, so allow a few tries.
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        match cluster.node(follower).follower_query(GROUP, &Query::Hold(h), 0) {
            Ok(reply) => break reply,
            Err(e) if Instant::now() < deadline => {
                eprintln!("follower read refused for now: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a caught-up follower with a live leader refused to read: {e}"),
        }
    };
    let leader_at = cluster.node(leader).local_read(GROUP, |s| s.last_index()).unwrap();
    assert!(reply.applied_index >= leader_at, "the follower answered from before the hold");
    assert!(matches!(reply.answer, Answer::Hold(Some(ref v)) if v.id == h), "{:?}", reply.answer);
    // Without its leader (and with the third node down, no new one), the
    // replica stops knowing a leader and refuses.
    let other = (leader + 2) % 3;
    cluster.stop_node(leader).await;
    cluster.stop_node(other).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match cluster.node(follower).follower_query(GROUP, &Query::Fingerprint, 0) {
            Err(NodeError::NoQuorum(_)) => break,
            Ok(_) | Err(_) => assert!(Instant::now() < deadline, "a leaderless replica kept serving follower reads"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.shutdown().await;
}

/// Waits until node `i` reports `id` among the group's retired ids.
async fn wait_retired(cluster: &Cluster, i: usize, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.node(i).status(GROUP).unwrap().retired.contains(&id) {
        assert!(Instant::now() < deadline, "node {} does not know {id} is retired", i + 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A removed id never rejoins: not on the leader that removed it, not after
/// that leader restarts, and not on a node that joined later by snapshot
/// (past the purged membership entries) and then leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_node_id_is_never_reused() {
    let mut cluster = Cluster::start(&[GROUP], |c| {
        c.snapshot_logs_since_last = 40;
        c.snapshot_logs_kept = 5;
    })
    .await;
    let event = event(&cluster, GROUP).await;
    let leader = cluster.leader(GROUP).await;
    let removed_at = (leader + 1) % 3;
    let removed = removed_at as u64 + 1;
    let voters: BTreeSet<u64> = [1, 2, 3].into_iter().filter(|&id| id != removed).collect();
    cluster.node(leader).change_voters(GROUP, voters.clone()).await.unwrap();
    cluster.stop_node(removed_at).await;
    let others: Vec<usize> = (0..3).filter(|&i| i != removed_at).collect();
    for &i in &others {
        wait_retired(&cluster, i, removed).await;
    }
    let peer = PeerNode { addr: cluster.addrs[removed_at].to_string() };
    let leader = cluster.leader(GROUP).await;
    match cluster.node(leader).add_learner(GROUP, removed, peer.clone()).await {
        Err(NodeError::Retired { id, .. }) => assert_eq!(id, removed),
        other => panic!("a removed id was taken back as a learner: {other:?}"),
    }
    let with_removed: BTreeSet<u64> = voters.iter().copied().chain([removed]).collect();
    assert!(
        matches!(cluster.node(leader).change_voters(GROUP, with_removed).await, Err(NodeError::Retired { .. })),
        "a removed id was made a voter again"
    );

    // Enough entries for a snapshot on every replica, then purge the log
    // behind it: the membership entry that removed the id is gone from
    // every log, so what knows of the removal is the snapshot.
    for n in 0..60 {
        hold(&cluster, GROUP, event, n).await;
    }
    for &i in &others {
        snapshot_and_purge(cluster.node(i), 50, 49).await;
    }

    // A replica restarts: the set comes back from its snapshot.
    let restarted = others[0];
    cluster.stop_node(restarted).await;
    cluster.start_node(restarted, &[GROUP]).await;
    wait_retired(&cluster, restarted, removed).await;

    // A fresh node joins by snapshot, becomes a voter, then leads.
    let fourth_addr = free_addr();
    let fourth = RaftNode::start(config(4, fourth_addr, cluster.dir.path())).await.unwrap();
    fourth.open_group(GROUP).await.unwrap();
    cluster.adopt(Arc::clone(&fourth), fourth_addr);
    let leader = cluster.leader(GROUP).await;
    cluster.node(leader).add_learner(GROUP, 4, PeerNode { addr: fourth_addr.to_string() }).await.unwrap();
    let with_fourth: BTreeSet<u64> = voters.iter().copied().chain([4]).collect();
    cluster.node(leader).change_voters(GROUP, with_fourth).await.unwrap();
    // The replica's metrics report the installed snapshot a moment later.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = fourth.status(GROUP).unwrap();
        if status.snapshot_index.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the new node caught up without a snapshot: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_retired(&cluster, 3, removed).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = cluster.leader(GROUP).await;
        if leader == 3 {
            break;
        }
        let _ = cluster.node(leader).transfer_leader(GROUP, 4).await;
        assert!(Instant::now() < deadline, "node 4 never took over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match fourth.add_learner(GROUP, removed, peer).await {
        Err(NodeError::Retired { id, .. }) => assert_eq!(id, removed),
        other => panic!("a leader that joined by snapshot took a removed id back: {other:?}"),
    }
    drop(fourth);
    cluster.shutdown().await;
}

/// Before a leader adds a node to a group, the node proves that it holds
/// the cluster secret under the id and at the address it was named by: a
/// node of another cluster, a genuine node under another id or named by
/// another address are refused and the membership is unchanged. A node
/// that proves itself but never catches up (it does not host the group) is
/// dropped again after `learner_catch_up_ms_max`, and a learner can be
/// removed on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_node_proves_membership_and_a_learner_that_never_catches_up_is_dropped() {
    let cluster = Cluster::start(&[GROUP], |c| c.learner_catch_up_ms_max = 1_500).await;
    let event = event(&cluster, GROUP).await;
    hold(&cluster, GROUP, event, 1).await;
    let leader = cluster.leader(GROUP).await;
    let before = cluster.node(leader).status(GROUP).unwrap();
    let add = |id: u64, addr: String| {
        let node = Arc::clone(cluster.node(leader));
        async move {
            tokio::time::timeout(Duration::from_secs(20), node.add_learner(GROUP, id, PeerNode { addr }))
                .await
                .expect("add_learner did not return")
        }
    };

    let stranger_addr = free_addr();
    let stranger_config =
        NodeConfig::new(4, stranger_addr, cluster.dir.path().join("stranger"), "another-cluster-secret");
    let stranger = RaftNode::start(stranger_config).await.unwrap();
    stranger.open_group(GROUP).await.unwrap();
    match add(4, stranger_addr.to_string()).await {
        Err(NodeError::Unproven(r)) if r.id == 4 => assert!(r.reason.contains("secret"), "{r:?}"),
        other => panic!("a node of another cluster was taken in: {other:?}"),
    }
    let genuine_addr = free_addr();
    let genuine = RaftNode::start(config(5, genuine_addr, cluster.dir.path())).await.unwrap();
    match add(6, genuine_addr.to_string()).await {
        Err(NodeError::Unproven(r)) if r.id == 6 => assert!(r.reason.contains("node 5"), "{r:?}"),
        other => panic!("node 5 was taken in as node 6: {other:?}"),
    }
    match add(5, format!("localhost:{}", genuine_addr.port())).await {
        Err(NodeError::Unproven(r)) if r.id == 5 => {}
        other => panic!("node 5 was taken in at an address it does not listen at: {other:?}"),
    }
    let after = cluster.node(leader).status(GROUP).unwrap();
    assert_eq!(
        (&after.voters, &after.learners, &after.members, &after.retired),
        (&before.voters, &before.learners, &before.members, &before.retired),
        "a refused node changed the membership"
    );

    // Node 5 proves itself, but never opened the group.
    match add(5, genuine_addr.to_string()).await {
        Err(NodeError::NotCaughtUp { id: 5, removed: true, .. }) => {}
        other => panic!("a learner that cannot catch up: {other:?}"),
    }
    wait_retired(&cluster, leader, 5).await;
    let after = cluster.node(leader).status(GROUP).unwrap();
    assert_eq!((&after.voters, &after.learners), (&before.voters, &before.learners), "{after:?}");
    assert_eq!(after.retired, [5], "{after:?}");

    // A learner that did catch up is removed on its own; a voter is not.
    genuine.shutdown().await;
    drop(genuine);
    let sixth_addr = free_addr();
    let sixth = RaftNode::start(config(6, sixth_addr, cluster.dir.path())).await.unwrap();
    sixth.open_group(GROUP).await.unwrap();
    add(6, sixth_addr.to_string()).await.unwrap();
    assert_eq!(cluster.node(leader).status(GROUP).unwrap().learners, [6]);
    cluster.node(leader).remove_learner(GROUP, 6).await.unwrap();
    wait_retired(&cluster, leader, 6).await;
    let after = cluster.node(leader).status(GROUP).unwrap();
    assert_eq!((&after.voters, &after.learners), (&before.voters, &before.learners), "{after:?}");
    assert_eq!(after.retired, [5, 6], "{after:?}");
    assert!(matches!(cluster.node(leader).remove_learner(GROUP, before.voters[0]).await, Err(NodeError::Config(_))));
    hold(&cluster, GROUP, event, 2).await;
    sixth.shutdown().await;
    stranger.shutdown().await;
    drop((sixth, stranger));
    cluster.shutdown().await;
}

//! A node: the replicas of every group it hosts, on one RocksDB, behind one
//! gRPC server, with one connection per peer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::errors::RaftError;
use openraft::{ChangeMembers, Config, ReadPolicy, SnapshotPolicy};
use proto::raft_v1::raft_transport_server::RaftTransportServer;
use proto::raft_v1::shard_server::ShardServer;
use statemachine::{Applied, Command, Millis, Op, State};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::batch::Proposer;
use crate::network::{Groups, NetworkFactory, PeerPool, ProofFailure, TransportService, MESSAGE_BYTES_MAX};
use crate::query::{answer, Query, ReadReply};
use crate::service::ShardService;
use crate::sm::{ShardSm, ShardState};
use crate::store::NodeStore;
use crate::types::{GroupId, LogCmd, PeerNode};
use crate::ShardRaft;

/// How long shutdown waits for gRPC calls in flight before cutting them.
const SERVER_DRAIN: Duration = Duration::from_secs(2);

/// How long shutdown waits for stopped groups to let go of the database.
const STORE_RELEASE_MAX: Duration = Duration::from_secs(5);

/// How long a node asked to join a group may take to prove it is a member
/// of the cluster (connecting, and connecting again while nothing listens,
/// included). A genuine node answers at once; the bound keeps a listener
/// that never answers from holding the call.
const PROOF_WAIT_MS_MAX: u64 = 1_000;

/// Log entries between snapshots by default. Encoding a snapshot stops
/// apply for its duration (about 40 ms for a sold-out 50,000-seat stadium)
/// and writes the whole state through the synced WAL, so snapshots every few
/// thousand entries throttled a busy group to a third of its throughput
/// (BENCHMARKS.md, Replication). The price of a long interval is replay on
/// restart: at most this many entries on top of the snapshot, well under
/// a second.
pub const SNAPSHOT_LOGS_DEFAULT: u64 = 100_000;

/// How a node runs its groups.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (never reused).
    pub id: u64,
    /// Address the gRPC server listens on, also what peers dial.
    pub listen: SocketAddr,
    /// Directory of the node's RocksDB.
    pub data_dir: PathBuf,
    /// Shared secret every node of the cluster presents.
    pub secret: String,
    /// Raft heartbeat; also the deadline of an append RPC.
    pub heartbeat_ms: u64,
    /// Election timeout range.
    pub election_timeout_ms_min: u64,
    /// Election timeout range.
    pub election_timeout_ms_max: u64,
    /// Log entries between snapshots.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind a snapshot for replicas that lag a little.
    pub snapshot_logs_kept: u64,
    /// How often the leader proposes an expiry sweep.
    pub sweep_interval_ms: u64,
    /// How long a proposal or a linearizable read may wait before the caller
    /// is told its outcome is unknown (retry with the same request id).
    pub request_timeout_ms: u64,
    /// State-machine limits of every group.
    pub limits: statemachine::Limits,
    /// How proposals share log entries.
    pub batching: crate::Batching,
    /// How long a new learner may take to catch up with the leader's log
    /// before the leader drops it from the group again.
    pub learner_catch_up_ms_max: u64,
}

impl NodeConfig {
    /// Defaults for a node on a local network.
    pub fn new(id: u64, listen: SocketAddr, data_dir: PathBuf, secret: impl Into<String>) -> NodeConfig {
        NodeConfig {
            id,
            listen,
            data_dir,
            secret: secret.into(),
            heartbeat_ms: 100,
            election_timeout_ms_min: 500,
            election_timeout_ms_max: 1000,
            snapshot_logs_since_last: SNAPSHOT_LOGS_DEFAULT,
            snapshot_logs_kept: 1_000,
            sweep_interval_ms: 1_000,
            request_timeout_ms: 10_000,
            limits: statemachine::Limits::default(),
            batching: crate::Batching::default(),
            learner_catch_up_ms_max: 30_000,
        }
    }
}

/// Why a node could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node does not host the group.
    #[error("group {0} is not hosted here")]
    NoSuchGroup(GroupId),
    /// Another node leads the group (or none is known yet).
    #[error("not the leader of group {group}; leader: {leader:?}")]
    NotLeader {
        /// The group.
        group: GroupId,
        /// The leader's id and address, when known.
        leader: Option<(u64, String)>,
    },
    /// The entry was proposed but leadership changed before it was known to
    /// commit. Retry with the same request id: the exactly-once table makes
    /// the retry safe.
    #[error("outcome unknown: leadership of group {0} changed")]
    Unknown(GroupId),
    /// No quorum answered in time.
    #[error("group {0} has no quorum")]
    NoQuorum(GroupId),
    /// Storage or the Raft core failed; the group is out of service.
    #[error("group {group} failed: {reason}")]
    Fatal {
        /// The group.
        group: GroupId,
        /// What happened.
        reason: String,
    },
    /// Local I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The node id was a member of the group once and was removed; an id
    /// is never reused.
    #[error("node {id} was removed from group {group}; a removed id never rejoins: give the node a new id")]
    Retired {
        /// The group.
        group: GroupId,
        /// The refused id.
        id: u64,
    },
    /// The node named to join a group answered, but did not prove that it
    /// holds the cluster secret under that id at that address; the group is
    /// unchanged and nothing was sent to it but a random challenge.
    #[error("the node at {} did not prove it is node {} of this cluster ({}); group {} is unchanged", .0.addr, .0.id, .0.reason, .0.group)]
    Unproven(Box<JoinRefused>),
    /// Nothing answered at the address of a node named to join the group
    /// (it may not be listening yet); the group is unchanged.
    #[error("the node at {} did not answer (to join group {} as node {}): {}; the group is unchanged", .0.addr, .0.group, .0.id, .0.reason)]
    Unreachable(Box<JoinRefused>),
    /// A new learner did not catch up with the leader's log in time.
    #[error(
        "node {id} did not catch up with group {group} within {waited_ms} ms{}",
        if *removed { "; it was dropped from the group again and its id is retired: give the node a new id" } else { "" }
    )]
    NotCaughtUp {
        /// The group.
        group: GroupId,
        /// The learner.
        id: u64,
        /// How long the leader waited.
        waited_ms: u64,
        /// Whether the leader dropped it from the group again (it does
        /// for a learner the same call added).
        removed: bool,
    },
}

/// A node a leader did not add to a group, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRefused {
    /// The group.
    pub group: GroupId,
    /// The id it was to join under.
    pub id: u64,
    /// The address it was named at.
    pub addr: String,
    /// What the proof, or the attempts to reach it, ended with.
    pub reason: String,
}

/// What a replica knows about its group, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// This node's id.
    pub node: u64,
    /// The leader this replica knows of.
    pub leader: Option<u64>,
    /// This replica's current term.
    pub term: u64,
    /// Voting members.
    pub voters: Vec<u64>,
    /// Members that receive the log without voting.
    pub learners: Vec<u64>,
    /// Index of the last log entry.
    pub last_log_index: u64,
    /// Index of the last entry known to be committed.
    pub commit_index: u64,
    /// Index of the last entry applied to the state machine.
    pub applied_index: u64,
    /// Index the latest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Index up to which the log was purged.
    pub purged_index: Option<u64>,
    /// Every member (voters and learners) with its address.
    pub members: Vec<(u64, String)>,
    /// Ids removed from the group, which never rejoin it (as this replica
    /// has applied).
    pub retired: Vec<u64>,
}

struct Group {
    raft: ShardRaft,
    state: ShardState,
    proposer: Proposer,
    sweeper: JoinHandle<()>,
}

/// A running node.
pub struct RaftNode {
    config: NodeConfig,
    store: NodeStore,
    pool: PeerPool,
    groups: Groups,
    hosted: RwLock<HashMap<GroupId, Group>>,
    raft_config: Arc<Config>,
    clock: Arc<LeaderClock>,
    server: RwLock<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
    contact: crate::network::LeaderContact,
}

/// The time a leader stamps on entries: the wall clock, but never behind a
/// stamp this node made before or the time the group has applied, so entry
/// times never go backward, also across leader changes.
#[derive(Default)]
pub(crate) struct LeaderClock {
    last_ms: AtomicU64,
}

impl LeaderClock {
    pub(crate) fn stamp(&self, applied_ms: Millis) -> Millis {
        let floor = applied_ms.max(wall_ms());
        let previous = self.last_ms.fetch_max(floor, Ordering::SeqCst);
        previous.max(floor)
    }
}

impl RaftNode {
    /// Opens the node's storage and starts its gRPC server.
    pub async fn start(config: NodeConfig) -> Result<Arc<RaftNode>, NodeError> {
        let raft_config = Config {
            cluster_name: format!("ticketing-node-{}", config.id),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_ms_min,
            election_timeout_max: config.election_timeout_ms_max,
            install_snapshot_timeout: 2_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: config.snapshot_logs_kept,
            purge_batch_size: 256,
            enable_pre_vote: Some(true),
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
        config.batching.check().map_err(NodeError::Config)?;
        std::fs::create_dir_all(&config.data_dir)?;
        let store = NodeStore::open(&config.data_dir)?;
        store.claim_node_id(config.id).map_err(|e| NodeError::Config(e.to_string()))?;
        let node = Arc::new(RaftNode {
            store,
            pool: PeerPool::default(),
            groups: Arc::new(RwLock::new(HashMap::new())),
            hosted: RwLock::new(HashMap::new()),
            raft_config: Arc::new(raft_config),
            clock: Arc::new(LeaderClock::default()),
            server: RwLock::new(None),
            contact: Default::default(),
            config,
        });
        node.serve().await?;
        Ok(node)
    }

    async fn serve(self: &Arc<Self>) -> Result<(), NodeError> {
        let service = TransportService {
            contact: Arc::clone(&self.contact),
            node_id: self.config.id,
            addr: self.peer().addr,
            groups: Arc::clone(&self.groups),
            secret: Arc::from(self.config.secret.as_str()),
        };
        let shard = ShardService { node: Arc::downgrade(self), secret: Arc::from(self.config.secret.as_str()) };
        let listener = tokio::net::TcpListener::bind(self.config.listen).await?;
        // The builder's `tcp_nodelay` only reaches sockets tonic accepts
        // itself: set it here, or Nagle holds back the last frames of a
        // reply until the peer's delayed ACK (tens of milliseconds).
        let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
            s.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(
                RaftTransportServer::new(service)
                    .max_decoding_message_size(MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(MESSAGE_BYTES_MAX),
            )
            .add_service(
                ShardServer::new(shard)
                    .max_decoding_message_size(MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(MESSAGE_BYTES_MAX),
            )
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        let handle = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!("gRPC server stopped: {e}");
            }
        });
        *self.server.write().expect("server lock poisoned") = Some((stop_tx, handle));
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.config.id
    }

    /// The address peers reach this node at.
    pub fn peer(&self) -> PeerNode {
        PeerNode { addr: self.config.listen.to_string() }
    }

    /// Group-commit counters of this node's storage.
    pub fn flush_stats(&self) -> Arc<crate::FlushStats> {
        self.store.flush_stats()
    }

    /// Starts (or restarts, from its stored log and snapshot) this node's
    /// replica of `group`. A new replica stays empty until it is initialized
    /// or added to the group by its leader.
    pub async fn open_group(self: &Arc<Self>, group: GroupId) -> Result<(), NodeError> {
        if group == 0 || group == GroupId::MAX {
            return Err(NodeError::Config(format!("{group} is not a usable group id")));
        }
        if self.hosted.read().expect("hosted lock poisoned").contains_key(&group) {
            return Ok(());
        }
        let sm = ShardSm::new(self.store.clone(), group, self.config.limits);
        let state = sm.state();
        let network = NetworkFactory {
            pool: self.pool.clone(),
            group,
            from: self.config.id,
            secret: Arc::from(self.config.secret.as_str()),
        };
        let raft =
            ShardRaft::new(self.config.id, Arc::clone(&self.raft_config), network, self.store.log_store(group), sm)
                .await
                .map_err(|e| NodeError::Fatal { group, reason: e.to_string() })?;
        self.groups.write().expect("groups lock poisoned").insert(group, raft.clone());
        let proposer = Proposer::start(crate::batch::Task {
            group,
            raft: raft.clone(),
            state: state.clone(),
            clock: Arc::clone(&self.clock),
            batching: self.config.batching,
            timeout: Duration::from_millis(self.config.request_timeout_ms),
        });
        let sweeper = tokio::spawn(sweep_loop(Arc::downgrade(self), group, self.config.sweep_interval_ms));
        self.hosted.write().expect("hosted lock poisoned").insert(group, Group { raft, state, proposer, sweeper });
        Ok(())
    }

    /// Makes `members` the first membership of `group` (call on one member).
    /// Initializing an already initialized group is a no-op.
    pub async fn initialize(&self, group: GroupId, members: BTreeMap<u64, PeerNode>) -> Result<(), NodeError> {
        let raft = self.raft(group)?;
        match raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::errors::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(NodeError::Fatal { group, reason: e.to_string() }),
        }
    }

    fn raft(&self, group: GroupId) -> Result<ShardRaft, NodeError> {
        self.groups.read().expect("groups lock poisoned").get(&group).cloned().ok_or(NodeError::NoSuchGroup(group))
    }

    fn state(&self, group: GroupId) -> Result<ShardState, NodeError> {
        let hosted = self.hosted.read().expect("hosted lock poisoned");
        hosted.get(&group).map(|g| g.state.clone()).ok_or(NodeError::NoSuchGroup(group))
    }

    /// Proposes a command to `group` through this node, which must lead it,
    /// and returns its result once committed and applied.
    pub async fn propose(&self, group: GroupId, cmd: Command) -> Result<Applied, NodeError> {
        Ok(self.propose_indexed(group, cmd).await?.0)
    }

    /// [`RaftNode::propose`], also returning the command's state index (see
    /// [`crate::state_index`]: its entry's log index and its place there).
    pub async fn propose_indexed(&self, group: GroupId, cmd: Command) -> Result<(Applied, u64), NodeError> {
        if crate::debug::planted(crate::debug::Plant::SkipHoldConflict) {
            self.evict_conflicting_holds(group, &self.raft(group)?, &cmd).await;
        }
        let proposer = {
            let hosted = self.hosted.read().expect("hosted lock poisoned");
            hosted.get(&group).map(|g| g.proposer.clone()).ok_or(NodeError::NoSuchGroup(group))?
        };
        // The batching task bounds the entry's own wait; this bounds the
        // time in its queue too.
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        tokio::time::timeout(timeout, proposer.propose(group, cmd)).await.unwrap_or(Err(NodeError::Unknown(group)))
    }

    /// Reads `group`'s state linearizably: the read reflects every write
    /// acknowledged before it began. This node must lead the group; the read
    /// confirms that with a quorum (ReadIndex) before looking.
    pub async fn read<T>(&self, group: GroupId, f: impl FnOnce(&State, Millis) -> T) -> Result<T, NodeError> {
        let raft = self.raft(group)?;
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        if crate::debug::planted(crate::debug::Plant::StaleRead) {
            let state = self.state(group)?;
            let now = self.clock.stamp(state.read(State::clock_ms));
            return Ok(state.read(|s| f(s, now)));
        }
        self.caught_up(group, &raft, timeout).await?;
        let state = self.state(group)?;
        let now = self.clock.stamp(state.read(State::clock_ms));
        Ok(state.read(|s| f(s, now)))
    }

    /// Confirms with a quorum that this node leads `group` and waits until
    /// it has applied everything committed before the call (ReadIndex).
    async fn caught_up(&self, group: GroupId, raft: &ShardRaft, timeout: Duration) -> Result<(), NodeError> {
        let Ok(confirmed) = tokio::time::timeout(timeout, raft.ensure_linearizable(ReadPolicy::ReadIndex)).await else {
            return Err(NodeError::NoQuorum(group));
        };
        match confirmed {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(openraft::errors::LinearizableReadError::ForwardToLeader(f))) => {
                Err(NodeError::NotLeader { group, leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)) })
            }
            Err(RaftError::APIError(_)) => Err(NodeError::NoQuorum(group)),
            Err(RaftError::Fatal(e)) => Err(NodeError::Fatal { group, reason: e.to_string() }),
        }
    }

    /// The planted bug `SkipHoldConflict`: before a hold on explicit seats,
    /// release every live hold of another user on them (through the log,
    /// so replicas agree). Finds them by scanning hold ids, which is fine
    /// at test sizes only.
    async fn evict_conflicting_holds(&self, group: GroupId, raft: &ShardRaft, cmd: &Command) {
        let Op::Hold { event, user, selection: statemachine::Selection::Seats(seats) } = &cmd.op else { return };
        let victims: Vec<(statemachine::HoldId, String)> = match self.local_read(group, |s| {
            let now = s.clock_ms().max(wall_ms());
            (1..=s.last_id())
                .filter_map(|n| s.hold(statemachine::HoldId(n), now))
                .filter(|h| h.event == *event && h.user != *user && h.status == statemachine::HoldStatus::Active)
                .filter(|h| h.seats.iter().any(|x| seats.contains(x)))
                .map(|h| (h.id, h.user))
                .collect()
        }) {
            Ok(v) => v,
            Err(_) => return,
        };
        for (hold, owner) in victims {
            let release =
                Command::new(owner.clone(), format!("planted-evict-{}", hold.0), Op::ReleaseHold { hold, user: owner });
            let applied_ms = self.state(group).map(|s| s.read(State::clock_ms)).unwrap_or(0);
            let entry = LogCmd { time_ms: self.clock.stamp(applied_ms), cmds: vec![release] };
            let _ = raft.client_write(entry).await;
        }
    }

    /// Answers `query` linearizably (see [`RaftNode::read`]).
    pub async fn query(&self, group: GroupId, query: &Query) -> Result<ReadReply, NodeError> {
        self.read(group, |s, now| ReadReply {
            answer: answer(s, query, now),
            applied_index: s.last_index(),
            read_at_ms: now,
        })
        .await
    }

    /// Answers `query` from this follower's applied state, without a round
    /// trip, if it accepted an append from its leader within the last
    /// election timeout (`election_timeout_ms_min`) and has applied all but
    /// at most `lag_entries_max` of the entries it knows to be committed.
    /// So the answer is at most that many entries, and about an election
    /// timeout, behind the leader.
    pub fn follower_query(&self, group: GroupId, query: &Query, lag_entries_max: u64) -> Result<ReadReply, NodeError> {
        let status = self.status(group)?;
        let Some(leader) = status.leader else {
            return Err(NodeError::NoQuorum(group));
        };
        // The commit index this replica knows is only as fresh as its last
        // contact with the leader: beyond an election timeout, refuse. (A
        // leader answering for itself has just confirmed nothing either, so
        // it reads through ReadIndex instead.)
        if leader == self.config.id {
            return Err(NodeError::NotLeader { group, leader: None });
        }
        let fresh = self
            .contact
            .lock()
            .expect("contact lock poisoned")
            .get(&group)
            .is_some_and(|at| at.elapsed() < Duration::from_millis(self.config.election_timeout_ms_min));
        if !fresh {
            return Err(NodeError::NoQuorum(group));
        }
        if status.applied_index.saturating_add(lag_entries_max) < status.commit_index {
            let addr = status.members.iter().find(|(id, _)| *id == leader).map(|(_, a)| a.clone());
            return Err(NodeError::NotLeader { group, leader: addr.map(|a| (leader, a)) });
        }
        let state = self.state(group)?;
        let now = state.read(State::clock_ms).max(wall_ms());
        Ok(state.read(|s| ReadReply { answer: answer(s, query, now), applied_index: s.last_index(), read_at_ms: now }))
    }

    /// Reads this replica's applied state without asking anyone: possibly
    /// stale, never reverted. For follower reads and tests.
    pub fn local_read<T>(&self, group: GroupId, f: impl FnOnce(&State) -> T) -> Result<T, NodeError> {
        Ok(self.state(group)?.read(f))
    }

    /// The seat changes of `event` after `after` from this replica's feed.
    pub(crate) fn watch_seats(
        &self,
        group: GroupId,
        event: statemachine::EventId,
        after: u64,
    ) -> Result<crate::feed::Resume, NodeError> {
        Ok(self.state(group)?.feed().resume(event, after))
    }

    /// The notifiable events after `after` from this replica's feed.
    pub(crate) fn watch_events(&self, group: GroupId, after: u64) -> Result<crate::events::EventsResume, NodeError> {
        Ok(self.state(group)?.events().resume(after))
    }

    /// Index of the last entry this replica applied.
    pub fn applied_index(&self, group: GroupId) -> Result<u64, NodeError> {
        Ok(self.state(group)?.applied_index())
    }

    /// The leader this replica knows of, if any.
    pub fn leader(&self, group: GroupId) -> Result<Option<u64>, NodeError> {
        use openraft::async_runtime::WatchReceiver;
        let raft = self.raft(group)?;
        let metrics = raft.metrics();
        let leader = metrics.borrow_watched().current_leader;
        Ok(leader)
    }

    /// This replica's view of `group`.
    pub fn status(&self, group: GroupId) -> Result<GroupStatus, NodeError> {
        use openraft::async_runtime::WatchReceiver;
        let raft = self.raft(group)?;
        let retired = self.state(group)?.retired();
        let receiver = raft.metrics();
        let m = receiver.borrow_watched();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let learners: Vec<u64> = membership.learner_ids().collect();
        let members = membership.nodes().map(|(id, node)| (*id, node.addr.clone())).collect();
        Ok(GroupStatus {
            group,
            node: self.config.id,
            leader: m.current_leader,
            term: m.current_term,
            voters,
            learners,
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: m.local_committed.as_ref().map_or(0, |id| id.index),
            applied_index: m.last_applied.as_ref().map_or(0, |id| id.index),
            snapshot_index: m.snapshot.as_ref().map(|id| id.index),
            purged_index: m.purged.as_ref().map(|id| id.index),
            members,
            retired,
        })
    }

    /// Groups this node's storage holds data of (hosted before, including
    /// groups added at run time), to reopen on start.
    pub fn stored_groups(&self) -> Result<Vec<GroupId>, NodeError> {
        Ok(self.store.stored_groups()?)
    }

    /// Ids of the groups this node hosts, in order.
    pub fn group_ids(&self) -> Vec<GroupId> {
        let mut ids: Vec<GroupId> = self.hosted.read().expect("hosted lock poisoned").keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// [`RaftNode::status`] of every hosted group, in group order.
    pub fn statuses(&self) -> Vec<GroupStatus> {
        self.group_ids().into_iter().filter_map(|g| self.status(g).ok()).collect()
    }

    /// Adds `id` as a learner of `group` and waits until it has caught up.
    /// An id the group's membership has ever dropped is refused
    /// ([`NodeError::Retired`]): a node that was removed may come back with
    /// a stale log or without the vote it cast, and Raft's safety rests on
    /// neither happening under one id.
    ///
    /// Before anything is proposed, the node at `peer` must prove that it
    /// is node `id` of this cluster ([`NodeError::Unproven`], or
    /// [`NodeError::Unreachable`] if nothing answers there): the leader
    /// sends the cluster secret with every Raft message to a member, so it
    /// must never make a member of an address nobody vouched for. A learner
    /// this call adds that does not catch up within
    /// `learner_catch_up_ms_max` is dropped again ([`NodeError::NotCaughtUp`]),
    /// also if the caller gives up waiting first.
    pub async fn add_learner(&self, group: GroupId, id: u64, peer: PeerNode) -> Result<(), NodeError> {
        let raft = self.raft(group)?;
        // Every removal committed before this call is applied first, so
        // the retired set below includes it.
        self.caught_up(group, &raft, Duration::from_millis(self.config.request_timeout_ms)).await?;
        let retired = self.state(group)?.retired();
        if retired.binary_search(&id).is_ok() {
            return Err(NodeError::Retired { group, id });
        }
        // A learner that fails to catch up is dropped, which retires its
        // id: make sure there is room for that before adding it.
        retire_room(group, retired.len(), 1)?;
        let known = self.status(group)?.members.into_iter().find(|(m, _)| *m == id).map(|(_, addr)| addr);
        if let Some(addr) = known.as_ref().filter(|addr| **addr != peer.addr) {
            return Err(NodeError::Config(format!(
                "node {id} is a member of group {group} at {addr}, not at {}",
                peer
            )));
        }
        let addr = peer.addr.clone();
        match crate::network::prove_peer(&self.config.secret, id, &addr, Duration::from_millis(PROOF_WAIT_MS_MAX)).await
        {
            Ok(()) => {}
            Err(ProofFailure::Refused(reason)) => {
                return Err(NodeError::Unproven(Box::new(JoinRefused { group, id, addr, reason })))
            }
            Err(ProofFailure::Unreachable(reason)) => {
                return Err(NodeError::Unreachable(Box::new(JoinRefused { group, id, addr, reason })))
            }
        }
        let wait_ms = self.config.learner_catch_up_ms_max;
        let lag_max = self.raft_config.replication_lag_threshold;
        if known.is_some() {
            // Added before (this is a repeated call): wait for it, but
            // leave removing it to the call that added it.
            return match learner_caught_up(&raft, group, id, None, wait_ms, lag_max).await {
                Err(CatchUp::TimedOut) => Err(NodeError::NotCaughtUp { group, id, waited_ms: wait_ms, removed: false }),
                Err(CatchUp::Failed(e)) => Err(e),
                Ok(()) => Ok(()),
            };
        }
        // In a task of its own, so that the learner is dropped again even
        // if the caller stops waiting.
        let join = tokio::spawn(async move {
            let added = raft
                .add_learner(id, peer, false)
                .await
                .map_err(|e| NodeError::Fatal { group, reason: e.to_string() })?;
            match learner_caught_up(&raft, group, id, Some(added.log_id), wait_ms, lag_max).await {
                Ok(()) => return Ok(()),
                Err(CatchUp::Failed(e)) => return Err(e),
                Err(CatchUp::TimedOut) => {}
            }
            let removed = match raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(group, node = id, "a learner that did not catch up stays in the group: {e}");
                    false
                }
            };
            Err(NodeError::NotCaughtUp { group, id, waited_ms: wait_ms, removed })
        });
        join.await.map_err(|e| NodeError::Fatal { group, reason: format!("adding a learner stopped: {e}") })?
    }

    /// Drops learner `id` from `group` (its id is retired, as a removed
    /// voter's is). A voter is refused: change the voters instead. An id
    /// that is no member changes nothing.
    pub async fn remove_learner(&self, group: GroupId, id: u64) -> Result<(), NodeError> {
        let raft = self.raft(group)?;
        self.caught_up(group, &raft, Duration::from_millis(self.config.request_timeout_ms)).await?;
        let current = self.status(group)?;
        if current.voters.contains(&id) {
            return Err(NodeError::Config(format!("node {id} is a voter of group {group}, not a learner")));
        }
        if !current.learners.contains(&id) {
            return Ok(());
        }
        retire_room(group, self.state(group)?.retired().len(), 1)?;
        raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
            .await
            .map_err(|e| NodeError::Fatal { group, reason: e.to_string() })?;
        Ok(())
    }

    /// Makes `voters` the voting members of `group`; voters left out are
    /// removed from it (and retired). Learners stay: see
    /// [`RaftNode::remove_learner`].
    pub async fn change_voters(
        &self,
        group: GroupId,
        voters: std::collections::BTreeSet<u64>,
    ) -> Result<(), NodeError> {
        let raft = self.raft(group)?;
        self.caught_up(group, &raft, Duration::from_millis(self.config.request_timeout_ms)).await?;
        let retired = self.state(group)?.retired();
        if let Some(&id) = voters.iter().find(|id| retired.binary_search(id).is_ok()) {
            return Err(NodeError::Retired { group, id });
        }
        let current = self.status(group)?;
        let dropped = current.voters.iter().chain(&current.learners).filter(|id| !voters.contains(id)).count();
        retire_room(group, retired.len(), dropped)?;
        raft.change_membership(voters, false).await.map_err(|e| NodeError::Fatal { group, reason: e.to_string() })?;
        Ok(())
    }

    /// Asks the leader of `group` (this node) to hand leadership to `to`.
    pub async fn transfer_leader(&self, group: GroupId, to: u64) -> Result<(), NodeError> {
        self.raft(group)?
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| NodeError::Fatal { group, reason: e.to_string() })
    }

    /// Removes log entries up to `index` that a snapshot already covers.
    pub async fn purge_log(&self, group: GroupId, index: u64) -> Result<(), NodeError> {
        self.raft(group)?
            .trigger()
            .purge_log(index)
            .await
            .map_err(|e| NodeError::Fatal { group, reason: e.to_string() })
    }

    /// Asks the group to make a snapshot now.
    pub async fn trigger_snapshot(&self, group: GroupId) -> Result<(), NodeError> {
        self.raft(group)?.trigger().snapshot().await.map_err(|e| NodeError::Fatal { group, reason: e.to_string() })
    }

    /// Stops serving: the gRPC server first, then every group; returns once
    /// nothing but this handle uses the database (or after
    /// `STORE_RELEASE_MAX`), so dropping the last handle closes it and the
    /// data directory can be opened again.
    pub async fn shutdown(&self) {
        let server = self.server.write().expect("server lock poisoned").take();
        if let Some((stop, mut handle)) = server {
            let _ = stop.send(());
            // A graceful stop waits for calls in flight, and watch streams
            // never end by themselves: give calls a moment, then cut them.
            if tokio::time::timeout(SERVER_DRAIN, &mut handle).await.is_err() {
                handle.abort();
                let _ = handle.await;
            }
        }
        let hosted: Vec<Group> = self.hosted.write().expect("hosted lock poisoned").drain().map(|(_, g)| g).collect();
        self.groups.write().expect("groups lock poisoned").clear();
        for group in hosted {
            group.sweeper.abort();
            let _ = group.raft.shutdown().await;
        }
        // The stopped groups' tasks (openraft's workers, blocking writes,
        // snapshot builders) drop their handles on the database as they
        // wind down. Wait for them, so that dropping this node closes the
        // database at once and its directory can be opened again in the
        // same process.
        let deadline = std::time::Instant::now() + STORE_RELEASE_MAX;
        while self.store.handles() > 1 {
            if std::time::Instant::now() >= deadline {
                tracing::warn!(
                    node = self.config.id,
                    handles = self.store.handles(),
                    "storage still in use after shutdown"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Refuses a change that would retire `dropped` more ids than the group's
/// retired set has room for.
fn retire_room(group: GroupId, retired: usize, dropped: usize) -> Result<(), NodeError> {
    if retired + dropped > crate::snapshot::RETIRED_IDS_MAX {
        return Err(NodeError::Config(format!(
            "group {group} has retired {retired} node ids; removing {dropped} more would pass its limit of {}",
            crate::snapshot::RETIRED_IDS_MAX
        )));
    }
    Ok(())
}

/// Why a learner's catch-up wait ended without it.
enum CatchUp {
    TimedOut,
    Failed(NodeError),
}

/// Waits at most `wait_ms` until learner `id` has acknowledged the entry of
/// the group's current membership (which names it, so it does receive the
/// log) and lags the leader's log by at most `lag_max` entries (openraft's
/// own test for a learner ready to vote). `added` is the membership entry
/// that added it, when this call did: earlier memberships are not waited on.
async fn learner_caught_up(
    raft: &ShardRaft,
    group: GroupId,
    id: u64,
    added: Option<crate::types::LogId>,
    wait_ms: u64,
    lag_max: u64,
) -> Result<(), CatchUp> {
    let waited = raft
        .wait(Some(Duration::from_millis(wait_ms)))
        .metrics(
            |m| {
                // No longer the leader: nothing to wait for here.
                let Some(replication) = &m.replication else { return true };
                let Some(membership_at) = m.membership_config.log_id() else { return false };
                if added.as_ref().is_some_and(|added| membership_at < added) {
                    return false;
                }
                if m.membership_config.membership().get_node(&id).is_none() {
                    return true;
                }
                replication.get(&id).and_then(Option::as_ref).is_some_and(|matched| {
                    matched.index >= membership_at.index
                        && m.last_log_index.unwrap_or(0).saturating_sub(matched.index) <= lag_max
                })
            },
            "learner catch-up",
        )
        .await;
    match waited {
        Ok(m) if m.replication.is_none() => Err(CatchUp::Failed(NodeError::NotLeader { group, leader: None })),
        Ok(m) if m.membership_config.membership().get_node(&id).is_none() => {
            Err(CatchUp::Failed(NodeError::Config(format!("node {id} left group {group} while it was catching up"))))
        }
        Ok(_) => Ok(()),
        Err(openraft::metrics::WaitError::Timeout(..)) => Err(CatchUp::TimedOut),
        Err(e) => Err(CatchUp::Failed(NodeError::Fatal { group, reason: e.to_string() })),
    }
}

/// Proposes an expiry sweep now and then while this node leads the group,
/// so holds expire even on an event nobody touches.
async fn sweep_loop(node: std::sync::Weak<RaftNode>, group: GroupId, interval_ms: u64) {
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: u64 = 0;
    loop {
        ticker.tick().await;
        let Some(node) = node.upgrade() else { return };
        let Ok(raft) = node.raft(group) else { return };
        let _ = node.local_read(group, |s| crate::debug::record_digest(node.id(), group, s));
        if !raft.is_leader() {
            continue;
        }
        let (due, rooms_due) = node
            .local_read(group, |s| {
                let now = s.clock_ms().max(wall_ms());
                (s.has_due_holds(now), s.queues_due(now))
            })
            .unwrap_or((false, false));
        if due {
            round += 1;
            let cmd = Command::new(
                format!("node-{}", node.id()),
                format!("sweep-{round}"),
                Op::ExpireHolds { holds_max: 10_000 },
            );
            if let Err(e) = node.propose(group, cmd).await {
                tracing::debug!("expiry sweep of group {group} not applied: {e}");
            }
        }
        // Waiting rooms admit by entry time: after the sweep, so seats its
        // expiries freed count for admission.
        if rooms_due {
            round += 1;
            let cmd = Command::new(
                format!("node-{}", node.id()),
                format!("rooms-{round}"),
                Op::AdvanceQueues { events_max: 10_000 },
            );
            if let Err(e) = node.propose(group, cmd).await {
                tracing::debug!("waiting-room advance of group {group} not applied: {e}");
            }
        }
    }
}

/// The node's wall clock (skewable by the fault-injection suite).
fn wall_ms() -> Millis {
    crate::debug::wall_ms()
}

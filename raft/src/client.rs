//! The gateway's and operator's side of the `Shard` service: sends each call
//! to the group's leader, follows redirects, and retries within a time
//! budget.
//!
//! Retrying a proposal is safe because every command carries its client's
//! request id and the state machine applies a request id at most once: a
//! retry of a command whose first attempt did commit is answered from the
//! exactly-once table with the first result.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use proto::raft_v1::shard_client::ShardClient;
use proto::raft_v1::{
    AddLearnerRequest, ChangeVotersRequest, Empty, GroupRequest, InitializeRequest, Member, ProposeRequest,
    ReadConsistency, ReadRequest, RemoveLearnerRequest, TransferLeaderRequest, WatchEventsRequest, WatchSeatsRequest,
};
use statemachine::{Applied, Command};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::network::{MESSAGE_BYTES_MAX, SECRET_HEADER};
use crate::node::GroupStatus;
use crate::query::{Query, ReadReply};
use crate::service::{ERROR_KIND, LEADER_ADDR, LEADER_ID};
use crate::types::GroupId;

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read began (ReadIndex
    /// on the leader).
    Linearizable,
    /// Any replica that has applied all but at most `lag_entries_max` of the
    /// entries it knows to be committed.
    Follower {
        /// Staleness bound in log entries.
        lag_entries_max: u64,
    },
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No leader answered within the time budget (no quorum, partition,
    /// nodes down). For a proposal the outcome is unknown: retrying the same
    /// command later is safe.
    #[error("group {group} unavailable: {reason}")]
    Unavailable {
        /// The group.
        group: GroupId,
        /// The last failure seen.
        reason: String,
    },
    /// The node refused the call as malformed; retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// The cluster refused this client's secret.
    #[error("the cluster refused the secret")]
    Unauthenticated,
}

/// A node's answer to a status call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's id.
    pub node: u64,
    /// Its gRPC address.
    pub addr: String,
    /// Its view of every group it hosts.
    pub groups: Vec<GroupStatus>,
}

/// A client of a cluster's `Shard` service. Cheap to clone; clones share
/// connections and the leader cache.
#[derive(Clone)]
pub struct ClusterClient {
    inner: Arc<Inner>,
}

struct Inner {
    seeds: Vec<String>,
    secret: Arc<str>,
    attempt_timeout: Duration,
    budget: Duration,
    channels: Mutex<HashMap<String, Channel>>,
    leaders: RwLock<HashMap<GroupId, String>>,
}

/// Pause between attempts when no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

impl ClusterClient {
    /// A client that reaches the cluster through `seeds` (node gRPC
    /// addresses). A call tries for at most `budget`, each attempt for at
    /// most `attempt_timeout`.
    pub fn new(seeds: Vec<String>, secret: &str, attempt_timeout: Duration, budget: Duration) -> ClusterClient {
        assert!(!seeds.is_empty(), "a cluster client needs at least one address");
        ClusterClient {
            inner: Arc::new(Inner {
                seeds,
                secret: Arc::from(secret),
                attempt_timeout,
                budget,
                channels: Mutex::new(HashMap::new()),
                leaders: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The addresses this client was given.
    pub fn seeds(&self) -> &[String] {
        &self.inner.seeds
    }

    fn channel(&self, addr: &str) -> Result<Channel, ClientError> {
        let mut channels = self.inner.channels.lock().expect("channel lock poisoned");
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{}", crate::debug::dial(addr)))
            .map_err(|e| ClientError::Refused(format!("bad address {addr:?}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    fn client(&self, addr: &str) -> Result<ShardClient<Channel>, ClientError> {
        Ok(ShardClient::new(self.channel(addr)?)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX))
    }

    fn request<T>(&self, msg: T, timeout: Duration) -> Request<T> {
        let mut request = Request::new(msg);
        request.set_timeout(timeout);
        if let Ok(value) = MetadataValue::try_from(&*self.inner.secret) {
            request.metadata_mut().insert(SECRET_HEADER, value);
        }
        request
    }

    /// The leader address this client believes in for `group`.
    pub fn cached_leader(&self, group: GroupId) -> Option<String> {
        self.inner.leaders.read().expect("leader cache poisoned").get(&group).cloned()
    }

    fn set_leader(&self, group: GroupId, addr: Option<String>) {
        let mut leaders = self.inner.leaders.write().expect("leader cache poisoned");
        match addr {
            Some(a) => leaders.insert(group, a),
            None => leaders.remove(&group),
        };
    }

    /// Runs `call` against the group's leader until it succeeds, fails for
    /// good, or the budget runs out.
    async fn on_leader<T, F, Fut>(&self, group: GroupId, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(ShardClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.inner.budget;
        let seeds = &self.inner.seeds;
        let mut rotation = 0usize;
        let mut last = String::from("no attempt made");
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Unavailable { group, reason: last });
            }
            let addr = self.cached_leader(group).unwrap_or_else(|| seeds[rotation % seeds.len()].clone());
            let timeout = self.inner.attempt_timeout.min(deadline - now);
            let client = self.client(&addr)?;
            let attempt = tokio::time::timeout(timeout, call(client, timeout)).await;
            let status = match attempt {
                Ok(Ok(value)) => {
                    self.set_leader(group, Some(addr));
                    return Ok(value);
                }
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded("attempt timed out"),
            };
            last = format!("{addr}: {}", status.message());
            let kind = status.metadata().get(ERROR_KIND).and_then(|v| v.to_str().ok()).unwrap_or("");
            match (kind, status.code()) {
                ("bad_request", _) | (_, Code::InvalidArgument) => {
                    return Err(ClientError::Refused(status.message().to_string()))
                }
                (_, Code::Unauthenticated) => return Err(ClientError::Unauthenticated),
                ("not_leader", _) => {
                    let hint = status.metadata().get(LEADER_ADDR).and_then(|v| v.to_str().ok()).map(str::to_string);
                    let known = status.metadata().get(LEADER_ID).is_some();
                    match hint {
                        Some(leader) if known && leader != addr => {
                            self.set_leader(group, Some(leader));
                            continue;
                        }
                        _ => {
                            self.set_leader(group, None);
                            rotation += 1;
                        }
                    }
                }
                _ => {
                    // Unknown outcome, no quorum, no such group here, a
                    // node down or slow: look elsewhere after a pause.
                    self.set_leader(group, None);
                    rotation += 1;
                }
            }
            let pause = RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }

    /// Proposes `cmd` to `group` and returns its result and state index.
    pub async fn propose(&self, group: GroupId, cmd: &Command) -> Result<(Applied, u64), ClientError> {
        let bytes = postcard::to_allocvec(cmd).expect("encoding to memory cannot fail");
        let reply = self
            .on_leader(group, |mut c, timeout| {
                let request = self.request(ProposeRequest { group_id: group, command: bytes.clone() }, timeout);
                async move { c.propose(request).await }
            })
            .await?
            .into_inner();
        let applied = postcard::from_bytes(&reply.applied)
            .map_err(|e| ClientError::Refused(format!("undecodable result from the cluster: {e}")))?;
        Ok((applied, reply.index))
    }

    /// Reads `query` from `group`.
    pub async fn read(
        &self,
        group: GroupId,
        query: &Query,
        consistency: Consistency,
    ) -> Result<ReadReply, ClientError> {
        let bytes = postcard::to_allocvec(query).expect("encoding to memory cannot fail");
        let (mode, lag) = match consistency {
            Consistency::Linearizable => (ReadConsistency::Linearizable, 0),
            Consistency::Follower { lag_entries_max } => (ReadConsistency::Follower, lag_entries_max),
        };
        let reply = self
            .on_leader(group, |mut c, timeout| {
                let msg = ReadRequest {
                    group_id: group,
                    query: bytes.clone(),
                    consistency: mode as i32,
                    max_lag_entries: lag,
                };
                let request = self.request(msg, timeout);
                async move { c.read(request).await }
            })
            .await?
            .into_inner();
        postcard::from_bytes(&reply.reply)
            .map_err(|e| ClientError::Refused(format!("undecodable answer from the cluster: {e}")))
    }

    /// Asks the node at `addr` for its view of every group it hosts.
    pub async fn node_status(&self, addr: &str) -> Result<NodeStatus, ClientError> {
        let mut client = self.client(addr)?;
        let timeout = self.inner.attempt_timeout;
        let reply = client
            .node_status(self.request(Empty {}, timeout))
            .await
            .map_err(|s| match s.code() {
                Code::Unauthenticated => ClientError::Unauthenticated,
                _ => ClientError::Unavailable { group: 0, reason: format!("{addr}: {}", s.message()) },
            })?
            .into_inner();
        let node = reply.node_id;
        let groups = reply
            .groups
            .into_iter()
            .map(|g| GroupStatus {
                group: g.group_id,
                node,
                leader: (g.leader != 0).then_some(g.leader),
                term: g.term,
                voters: g.voters,
                learners: g.learners,
                last_log_index: g.last_log_index,
                commit_index: g.commit_index,
                applied_index: g.applied_index,
                snapshot_index: (g.snapshot_index != 0).then_some(g.snapshot_index),
                purged_index: (g.purged_index != 0).then_some(g.purged_index),
                members: g.members.into_iter().map(|m| (m.id, m.addr)).collect(),
                retired: g.retired,
            })
            .collect();
        Ok(NodeStatus { node, addr: reply.addr, groups })
    }

    /// Starts (or restarts) the replica of `group` on the node at `addr`.
    pub async fn open_group(&self, addr: &str, group: GroupId) -> Result<(), ClientError> {
        let mut client = self.client(addr)?;
        let request = self.request(GroupRequest { group_id: group }, self.inner.attempt_timeout);
        client.open_group(request).await.map_err(|s| one_shot_error(group, addr, s))?;
        Ok(())
    }

    /// Makes `members` (id → address) the first membership of `group`, on
    /// the node at `addr` (one of the members, with the group open).
    pub async fn initialize(
        &self,
        addr: &str,
        group: GroupId,
        members: &BTreeMap<u64, String>,
    ) -> Result<(), ClientError> {
        let mut client = self.client(addr)?;
        let members = members.iter().map(|(id, a)| Member { id: *id, addr: a.clone() }).collect();
        let request = self.request(InitializeRequest { group_id: group, members }, self.inner.attempt_timeout);
        client.initialize(request).await.map_err(|s| one_shot_error(group, addr, s))?;
        Ok(())
    }

    /// Adds node `id` at `addr` to `group` as a learner and waits until it
    /// has caught up (through the group's leader). The node must first prove
    /// to the leader that it is node `id` of this cluster: one that answers
    /// without such a proof is refused ([`ClientError::Refused`]), one that
    /// does not answer (not listening yet) is asked again within the budget
    /// ([`ClientError::Unavailable`]); either way the group is unchanged.
    pub async fn add_learner(&self, group: GroupId, id: u64, addr: &str) -> Result<(), ClientError> {
        let learner = Member { id, addr: addr.to_string() };
        self.on_leader(group, |mut c, timeout| {
            let request = self.request(AddLearnerRequest { group_id: group, learner: Some(learner.clone()) }, timeout);
            async move { c.add_learner(request).await }
        })
        .await?;
        Ok(())
    }

    /// Makes `voters` the voting members of `group` (through its leader).
    pub async fn change_voters(&self, group: GroupId, voters: &[u64]) -> Result<(), ClientError> {
        self.on_leader(group, |mut c, timeout| {
            let request = self.request(ChangeVotersRequest { group_id: group, voters: voters.to_vec() }, timeout);
            async move { c.change_voters(request).await }
        })
        .await?;
        Ok(())
    }

    /// Drops learner `id` from `group` (through its leader); a voter is
    /// refused, an id that is no member changes nothing.
    pub async fn remove_learner(&self, group: GroupId, id: u64) -> Result<(), ClientError> {
        self.on_leader(group, |mut c, timeout| {
            let request = self.request(RemoveLearnerRequest { group_id: group, id }, timeout);
            async move { c.remove_learner(request).await }
        })
        .await?;
        Ok(())
    }

    /// Asks the leader of `group` to hand leadership to node `to`.
    pub async fn transfer_leader(&self, group: GroupId, to: u64) -> Result<(), ClientError> {
        self.on_leader(group, |mut c, timeout| {
            let request = self.request(TransferLeaderRequest { group_id: group, to }, timeout);
            async move { c.transfer_leader(request).await }
        })
        .await?;
        self.set_leader(group, None);
        Ok(())
    }

    /// Asks the node at `addr` to snapshot its replica of `group` now.
    pub async fn trigger_snapshot(&self, addr: &str, group: GroupId) -> Result<(), ClientError> {
        let mut client = self.client(addr)?;
        let request = self.request(GroupRequest { group_id: group }, self.inner.attempt_timeout);
        client.trigger_snapshot(request).await.map_err(|s| one_shot_error(group, addr, s))?;
        Ok(())
    }
}

/// What a seat watch delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// Changes of whole log entries, in log order.
    Changes(Vec<crate::feed::SeatChange>),
    /// The changes after the requested index are gone: start over.
    Gap,
}

/// A stream of seat changes from one replica.
pub struct WatchStream {
    inner: tonic::Streaming<proto::raft_v1::SeatChanges>,
}

impl WatchStream {
    /// The next delivery, or `None` when the stream ended (reconnect after
    /// the last index seen).
    pub async fn next(&mut self) -> Option<Watch> {
        match self.inner.message().await {
            Ok(Some(m)) if m.gap => Some(Watch::Gap),
            Ok(Some(m)) => postcard::from_bytes(&m.changes).ok().map(Watch::Changes),
            Ok(None) | Err(_) => None,
        }
    }
}

impl ClusterClient {
    /// Watches the seat changes of `event` after `after` on the group's
    /// cached leader (any replica serves the same log in the same order).
    pub async fn watch_seats(
        &self,
        group: GroupId,
        event: statemachine::EventId,
        after: u64,
    ) -> Result<WatchStream, ClientError> {
        let seeds = &self.inner.seeds;
        let mut last = String::from("no replica tried");
        let start = self.cached_leader(group).into_iter();
        for addr in start.chain(seeds.iter().cloned()) {
            let mut client = self.client(&addr)?;
            let mut request = self.request(
                WatchSeatsRequest { group_id: group, event_id: event.0, after_index: after },
                self.inner.attempt_timeout,
            );
            // The call stays open for as long as the stream is read.
            request.metadata_mut().remove("grpc-timeout");
            match client.watch_seats(request).await {
                Ok(response) => return Ok(WatchStream { inner: response.into_inner() }),
                Err(s) if s.code() == Code::Unauthenticated => return Err(ClientError::Unauthenticated),
                Err(s) => last = format!("{addr}: {}", s.message()),
            }
        }
        Err(ClientError::Unavailable { group, reason: last })
    }
}

/// What an event watch delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventWatch {
    /// Entries' notifiable events, in log order: (index, events).
    Events(Vec<(u64, Vec<statemachine::DomainEvent>)>),
    /// The events after the requested index are gone.
    Gap,
}

/// A stream of notifiable events from one replica.
pub struct EventStream {
    inner: tonic::Streaming<proto::raft_v1::DomainEvents>,
}

impl EventStream {
    /// The next delivery, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<EventWatch> {
        match self.inner.message().await {
            Ok(Some(m)) if m.gap => Some(EventWatch::Gap),
            Ok(Some(m)) => postcard::from_bytes(&m.entries).ok().map(EventWatch::Events),
            Ok(None) | Err(_) => None,
        }
    }
}

impl ClusterClient {
    /// Watches the notifiable events of `group` after `after`.
    pub async fn watch_events(&self, group: GroupId, after: u64) -> Result<EventStream, ClientError> {
        let mut last = String::from("no replica tried");
        let start = self.cached_leader(group).into_iter();
        for addr in start.chain(self.inner.seeds.iter().cloned()) {
            let mut client = self.client(&addr)?;
            let mut request =
                self.request(WatchEventsRequest { group_id: group, after_index: after }, self.inner.attempt_timeout);
            request.metadata_mut().remove("grpc-timeout");
            match client.watch_events(request).await {
                Ok(response) => return Ok(EventStream { inner: response.into_inner() }),
                Err(s) if s.code() == Code::Unauthenticated => return Err(ClientError::Unauthenticated),
                Err(s) => last = format!("{addr}: {}", s.message()),
            }
        }
        Err(ClientError::Unavailable { group, reason: last })
    }
}

fn one_shot_error(group: GroupId, addr: &str, status: Status) -> ClientError {
    match status.code() {
        Code::Unauthenticated => ClientError::Unauthenticated,
        Code::InvalidArgument => ClientError::Refused(status.message().to_string()),
        _ => ClientError::Unavailable { group, reason: format!("{addr}: {}", status.message()) },
    }
}
